"""Customer lookup at a million customers: seed, index build, lookup latency.

For each backend (SQLite files, local PostgreSQL) the three demo business
databases (sales, billing, support) are seeded with N random customers by
the real seed code (or reused when a stamp file says they already hold
exactly that seed and the row counts still match), then the real lookup is
built by ``customer_lookup.plugin.build_lookup`` from the demo
``[[sources]]`` and measured:

* index build: ``rebuild_index()`` of all three sources at once (what
  ``start()`` does), into the in-process index and into the Redis index;
  wall time, phone rows read, distinct numbers indexed.
* lookup latency over ``--lookups`` caller numbers drawn from the data
  (known, shared switchboard numbers that match several people, and numbers
  nobody has), sent the way a PBX sends caller ID: Spanish numbers half
  national (``912345678``) and half E.164, foreign ones E.164 or ``00``.
  *cold*: before each lookup the number's cached card is invalidated and the
  phone normalization cache cleared, outside the timed region, so the timed
  call is the real miss path: cache miss, phone index, every matching source
  queried over SQL, merge, card stored.  Each source's ``fetch`` is wrapped
  in a counter and the run checks that every cold lookup of a number the
  index knows really queried a database.  *cached*: the same number looked
  up again right after (a cache hit, no source queried, checked the same way).
  Sequential (one lookup at a time, what the targets mean) and at a
  concurrency of ``--concurrency``.

The per-source deadline is raised to ``--deadline-ms`` (1000) so latency is
measured rather than cut off; lookups in which some source took longer than
the production default of 150 ms are counted.

    .venv/bin/python bench/bench_lookup.py --customers 20000 --lookups 500   # seconds: debug run
    .venv/bin/python bench/bench_lookup.py --customers 1000000 --backend both
    .venv/bin/python bench/bench_lookup.py --customers 20000 --cli 30        # 'screenpop lookup' processes, wall time

Data: SQLite under var/bench/, PostgreSQL in bench_sales, bench_billing and
bench_support on 127.0.0.1 (created by the seed).  Redis keys live under
``screenpop-bench:`` and are deleted at the end (``--keep-redis`` keeps them).
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import math
import os
import platform
import random
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

from adapters.demo import SeedError, demo_sources, seed_demo  # noqa: E402
from customer_lookup import phones as phone_module  # noqa: E402
from customer_lookup.index import members  # noqa: E402
from customer_lookup.plugin import build_lookup  # noqa: E402
from screenpop.commands.seed import ProgressLine  # noqa: E402
from screenpop.config import LookupSettings, Settings  # noqa: E402

BENCH_DIR = ROOT / "var" / "bench"
SYSTEMS = ("sales", "billing", "support")
MAIN_TABLE = {"sales": "customers", "billing": "accounts", "support": "contacts"}
PG = "postgresql+asyncpg://root@127.0.0.1:5432/bench_{}"
REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_PREFIX = "screenpop-bench:"
DEFAULT_DEADLINE_MS = 150
TARGET_COLD_P99_MS = 20.0
TARGET_CACHED_P99_MS = 1.0
TARGET_BUILD_S_PER_MILLION = 60.0


def say(text: str = "") -> None:
    print(text, file=sys.stderr, flush=True)


def dsns_for(backend: str) -> dict[str, str]:
    if backend == "sqlite":
        return {s: f"sqlite+aiosqlite:///{BENCH_DIR / f'{s}.sqlite3'}" for s in SYSTEMS}
    return {s: PG.format(s) for s in SYSTEMS}


# ------------------------------------------------------------------ seed


async def _count_rows(dsns: dict[str, str]) -> dict[str, int]:
    """Rows of each system's main table now; a missing table or database is -1."""
    from sqlalchemy import text

    from adapters.engine import make_engine

    counts = {}
    for system in SYSTEMS:
        engine = make_engine(dsns[system], read_only=True)
        try:
            async with engine.connect() as conn:
                counts[system] = (await conn.execute(text(f"SELECT count(*) FROM {MAIN_TABLE[system]}"))).scalar_one()
        except Exception:
            counts[system] = -1
        finally:
            await engine.dispose()
    return counts


async def ensure_seed(backend: str, customers: int, seed: int, reseed: bool) -> dict:
    """Seed the backend's three databases unless the stamp says they hold this
    exact seed and the main tables still have the stamped row counts."""
    dsns = dsns_for(backend)
    stamp_path = BENCH_DIR / f"seed-{backend}.json"
    if not reseed and stamp_path.exists():
        stamp = json.loads(stamp_path.read_text())
        if stamp.get("customers") == customers and stamp.get("seed") == seed:
            counts = await _count_rows(dsns)
            expected = {s: stamp["rows"].get(f"{s}.{MAIN_TABLE[s]}") for s in SYSTEMS}
            if counts == expected:
                say(f"[{backend}] seed reused: {customers:,} customers already there ({stamp_path.name}, seeded in {stamp['seconds']:.1f} s)")
                return {**stamp, "reused": True}
            say(f"[{backend}] seed stamp does not match the databases ({counts} != {expected}): seeding again")
    say(f"[{backend}] seeding {customers:,} customers (seed {seed}) into {', '.join(dsns.values())}")
    started = time.perf_counter()
    try:
        result = await seed_demo(dsns, customers, seed, ProgressLine(sys.stderr), force=True)
    except SeedError as exc:
        raise SystemExit(f"[{backend}] seed failed: {exc}") from None
    seconds = time.perf_counter() - started
    stamp = {"backend": backend, "customers": customers, "seed": seed, "rows": result.rows,
             "seconds": round(seconds, 1), "seeded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    stamp_path.write_text(json.dumps(stamp, indent=1, sort_keys=True))
    say(f"[{backend}] seeded {customers:,} customers, {sum(result.rows.values()):,} rows in {seconds:.1f} s")
    return {**stamp, "reused": False}


# ------------------------------------------------------------------ lookup runtime


def make_settings(backend: str, deadline_ms: int) -> Settings:
    lookup = LookupSettings(
        default_region="ES",
        deadline_ms=deadline_ms,
        cache_fresh_seconds=86_400.0,  # no background refresh in the middle of a measurement
        cache_ttl_seconds=86_400.0,
        cache_max_entries=1_000_000,
        index_refresh_seconds=0,
        redis_prefix=REDIS_PREFIX,
    )
    return Settings(lookup=lookup, sources=demo_sources(dsns_for(backend)))


def count_fetches(runtime) -> Counter:
    """Wrap every source's fetch: how many record queries really ran."""
    fetches: Counter = Counter()
    for source in runtime.sources:
        original = source.fetch

        async def counted(key, _original=original, _name=source.name):
            fetches[_name] += 1
            return await _original(key)

        source.fetch = counted
    return fetches


async def build_index(runtime, label: str, expected_rows: dict[str, int] | None) -> dict:
    step = 250_000
    shown: dict[str, int] = {}
    started = time.perf_counter()

    def progress(source: str, rows: int) -> None:
        if rows // step > shown.get(source, 0) // step:
            total = f"/{expected_rows[source]:,}" if expected_rows and source in expected_rows else ""
            say(f"[{label}] index {source:<8} {rows:>10,}{total} rows  {time.perf_counter() - started:6.1f} s")
        shown[source] = rows

    outcomes = await runtime.rebuild_index(progress=progress)
    wall = time.perf_counter() - started
    failed = [o for o in outcomes if o.stats is None]
    if failed:
        raise SystemExit(f"[{label}] index build failed: {[(o.source, o.error or o.skipped) for o in failed]}")
    stats = await runtime.index.stats()
    per_source = {
        o.source: {"rows": o.stats.rows, "indexed": o.stats.indexed, "flagged": o.stats.flagged,
                   "skipped": o.stats.skipped, "seconds": round(o.stats.seconds, 2),
                   "numbers": stats["sources"][o.source]["numbers"], "entries": stats["sources"][o.source]["entries"]}
        for o in outcomes
    }
    rows = sum(s["rows"] for s in per_source.values())
    say(f"[{label}] index built: {rows:,} phone rows, {stats['numbers']:,} numbers "
        f"(summed over sources) in {wall:.1f} s = {wall / rows * 1e6:.1f} s per million rows")
    for name, s in per_source.items():
        say(f"[{label}]   {name:<8} rows {s['rows']:>9,}  valid {s['indexed']:>9,}  flagged {s['flagged']:>6,}  "
            f"numbers {s['numbers']:>9,}  {s['seconds']:.1f} s")
    return {"seconds": round(wall, 2), "rows": rows, "numbers": stats["numbers"], "entries": stats["entries"],
            "sources": per_source}


# ------------------------------------------------------------------ the numbers


def caller_form(key: str, rng: random.Random) -> str:
    """How a PBX would send this E.164 number as caller ID."""
    if key.startswith("+34"):
        return key[3:] if rng.random() < 0.5 else key
    return key if rng.random() < 0.6 else "00" + key[1:]


def draw_numbers(index, n: int, seed: int) -> list[tuple[str, str]]:
    """(kind, caller number): 70 % numbers one person has, 15 % numbers that
    match several records in one source (shared switchboards), 15 % numbers
    nobody has.  Drawn from the in-process index just built, deterministically."""
    rng = random.Random(f"bench-lookup-{seed}")
    tables = index._tables  # the benchmark may look inside: it needs the data's own numbers
    keys: set[str] = set()
    multi: set[str] = set()
    for table in tables.values():
        for key, records in table.by_key.items():
            if key.startswith("+"):
                keys.add(key)
                if len(list(members(records))) > 1:
                    multi.add(key)
    single = sorted(keys - multi)
    multi_list = sorted(multi)
    want_multi = min(len(multi_list), round(n * 0.15))
    want_unknown = round(n * 0.15)
    want_single = n - want_multi - want_unknown
    chosen = [("known", k) for k in rng.sample(single, min(want_single, len(single)))]
    chosen += [("multi", k) for k in rng.sample(multi_list, want_multi)]
    unknown = set()
    while len(unknown) < want_unknown:
        key = f"+349{rng.choice('1356')}{rng.randrange(10**7):07d}" if rng.random() < 0.6 else f"+346{rng.randrange(10**8):08d}"
        if key not in keys and phone_module.normalize(key, "ES").valid:
            unknown.add(key)
    chosen += [("unknown", k) for k in sorted(unknown)]
    rng.shuffle(chosen)
    return [(kind, caller_form(key, rng)) for kind, key in chosen]


# ------------------------------------------------------------------ measuring


def pct(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def summarize(ms: list[float]) -> dict:
    s = sorted(ms)
    return {"n": len(s), "p50": pct(s, 0.50), "p90": pct(s, 0.90), "p99": pct(s, 0.99), "max": s[-1] if s else float("nan"),
            "mean": sum(s) / len(s) if s else float("nan")}


async def one_cold(runtime, number: str) -> tuple[float, object]:
    await runtime.invalidate_number(number)
    phone_module.clear_cache()
    started = time.perf_counter()
    card = await runtime.lookup(number)
    return (time.perf_counter() - started) * 1000, card


async def one_cached(runtime, number: str) -> tuple[float, object]:
    started = time.perf_counter()
    card = await runtime.lookup(number)
    return (time.perf_counter() - started) * 1000, card


class GcPauses:
    """Collector pauses while measuring: a big in-process index makes a full
    collection long, and every lookup running then waits for it."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._start = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.pauses.append((info["generation"], (time.perf_counter() - self._start) * 1000))

    def __enter__(self) -> "GcPauses":
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc) -> None:
        gc.callbacks.remove(self)

    def summary(self) -> dict:
        full = [ms for gen, ms in self.pauses if gen == 2]
        return {"collections": len(self.pauses), "full": len(full), "max_ms": round(max((ms for _, ms in self.pauses), default=0.0), 2),
                "full_max_ms": round(max(full, default=0.0), 2)}


def slow_sources(card, limit_ms: float) -> bool:
    return any((s.elapsed_ms or 0) > limit_ms for s in card.sources.values())


async def measure(runtime, numbers: list[tuple[str, str]], fetches: Counter, concurrency: int, label: str) -> dict:
    """Cold then cached lookup of each number; ``concurrency`` numbers in flight."""
    cold_ms: list[float] = []
    cached_ms: list[float] = []
    statuses: Counter = Counter()
    over_default = 0
    cold_without_query = 0
    cached_with_query = 0
    not_cached = 0
    queue = list(reversed(numbers))
    started = time.perf_counter()

    async def worker() -> None:
        nonlocal over_default, cold_without_query, cached_with_query, not_cached
        while queue:
            kind, number = queue.pop()
            before = sum(fetches.values())
            ms, card = await one_cold(runtime, number)
            queried = sum(fetches.values()) - before
            cold_ms.append(ms)
            statuses[(kind, card.status)] += 1
            if slow_sources(card, DEFAULT_DEADLINE_MS):
                over_default += 1
            if card.status != "unknown" and concurrency == 1 and queried == 0:
                cold_without_query += 1
            before = sum(fetches.values())
            ms, again = await one_cached(runtime, number)
            cached_ms.append(ms)
            if concurrency == 1 and sum(fetches.values()) != before:
                cached_with_query += 1
            if not again.cached:
                not_cached += 1

    total_before = sum(fetches.values())
    with GcPauses() as pauses:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    bad = {k: v for k, v in statuses.items() if k[0] == "unknown" and k[1] != "unknown"}
    result = {
        "concurrency": concurrency,
        "lookups": len(numbers),
        "cold": summarize(cold_ms),
        "cached": summarize(cached_ms),
        "cold_over_150ms": over_default,
        "record_queries": sum(fetches.values()) - total_before,
        "cold_known_without_query": cold_without_query,
        "cached_with_query": cached_with_query,
        "cached_misses": not_cached,
        "statuses": {f"{kind}->{status}": n for (kind, status), n in sorted(statuses.items())},
        "gc": pauses.summary(),
        "wall_seconds": round(wall, 2),
        "lookups_per_second": round(2 * len(numbers) / wall, 1),
    }
    c, h = result["cold"], result["cached"]
    say(f"[{label}] c={concurrency}: cold p50 {c['p50']:.2f} p99 {c['p99']:.2f} max {c['max']:.2f} ms | "
        f"cached p50 {h['p50']:.3f} p99 {h['p99']:.3f} max {h['max']:.3f} ms | "
        f"{result['record_queries']:,} record queries, {over_default} cold lookups with a source over 150 ms | gc {result['gc']}"
        + (f" | CHECK: {cold_without_query} known cold lookups queried nothing" if cold_without_query else "")
        + (f" | CHECK: {cached_with_query} cached lookups queried a source" if cached_with_query else "")
        + (f" | CHECK: {not_cached} second lookups were not cache hits" if not_cached else "")
        + (f" | CHECK: unknown numbers found someone: {bad}" if bad else ""))
    return result


async def run_index_kind(backend: str, kind: str, args, seed_info: dict, numbers_holder: dict) -> dict:
    label = f"{backend}/{kind}"
    settings = make_settings(backend, args.deadline_ms)
    redis = None
    if kind == "redis":
        import redis.asyncio as aioredis

        redis = aioredis.from_url(REDIS_URL)
        await drop_redis(redis)
    options = {"pool_size": args.pool_size} if args.pool_size else None
    runtime = await build_lookup(settings, redis=redis, source_options=options)
    fetches = count_fetches(runtime)
    out: dict = {"backend": backend, "index": kind}
    try:
        expected = numbers_holder.get("rows")
        out["build"] = await build_index(runtime, label, expected)
        started = time.perf_counter()
        gc.collect()
        out["full_gc_ms"] = round((time.perf_counter() - started) * 1000, 1)
        say(f"[{label}] one full garbage collection with this index in memory: {out['full_gc_ms']:.0f} ms")
        numbers_holder.setdefault("rows", {n: s["rows"] for n, s in out["build"]["sources"].items()})
        if "numbers" not in numbers_holder:
            if kind != "memory":
                raise SystemExit("the numbers are drawn from the in-process index: run --index memory first")
            numbers_holder["numbers"] = draw_numbers(runtime.index, args.lookups + args.warmup, args.seed)
        numbers = numbers_holder["numbers"]
        warm, measured = numbers[: args.warmup], numbers[args.warmup:]
        say(f"[{label}] warm-up: {len(warm)} lookups")
        for _kind, number in warm:
            await one_cold(runtime, number)
            await one_cached(runtime, number)
        gc.collect()
        out["sequential"] = await measure(runtime, measured, fetches, 1, label)
        if args.concurrency > 1:
            gc.collect()
            out["concurrent"] = await measure(runtime, measured, fetches, args.concurrency, label)
    finally:
        await runtime.close()
        if redis is not None:
            if args.keep_redis:
                await redis.aclose()
            else:
                say(f"[{label}] deleting the benchmark's Redis keys")
                await drop_redis(redis)
                await redis.aclose()
    return out


async def drop_redis(redis) -> None:
    batch = []
    async for name in redis.scan_iter(match=REDIS_PREFIX + "*", count=10_000):
        batch.append(name)
        if len(batch) >= 10_000:
            await redis.unlink(*batch)
            batch = []
    if batch:
        await redis.unlink(*batch)


# ------------------------------------------------------------------ report


def table(results: list[dict], seeds: dict[str, dict]) -> str:
    lines = []
    lines.append("seed (rows per source = main table rows; phone rows = what phones_query returns):")
    for backend, s in seeds.items():
        rows = s["rows"]
        how = "reused, seeded earlier" if s["reused"] else "seeded now"
        lines.append(f"  {backend:<8} {s['customers']:,} customers, {sum(rows.values()):,} rows in all, {s['seconds']:.1f} s ({how}); "
                     + ", ".join(f"{sys_}.{MAIN_TABLE[sys_]} {rows.get(f'{sys_}.{MAIN_TABLE[sys_]}', 0):,}" for sys_ in SYSTEMS))
    lines.append("")
    lines.append("index build (three sources at once):")
    lines.append(f"  {'backend/index':<16} {'phone rows':>11} {'numbers':>11} {'seconds':>8} {'s/million rows':>15}   per source: rows / numbers / s")
    for r in results:
        b = r["build"]
        per = "; ".join(f"{n} {s['rows']:,} / {s['numbers']:,} / {s['seconds']:.1f}" for n, s in b["sources"].items())
        lines.append(f"  {r['backend'] + '/' + r['index']:<16} {b['rows']:>11,} {b['numbers']:>11,} {b['seconds']:>8.1f} "
                     f"{b['seconds'] / b['rows'] * 1e6:>15.1f}   {per}")
    lines.append("")
    lines.append("lookup latency, ms (cold: cache invalidated and every matching source queried; cached: same number again):")
    lines.append(f"  {'backend/index':<16} {'conc':>4} {'n':>6} {'cold p50':>9} {'p99':>8} {'max':>8} "
                 f"{'cached p50':>11} {'p99':>8} {'max':>8} {'>150ms':>7} {'lookups/s':>10}")
    for r in results:
        for key in ("sequential", "concurrent"):
            m = r.get(key)
            if not m:
                continue
            c, h = m["cold"], m["cached"]
            lines.append(f"  {r['backend'] + '/' + r['index']:<16} {m['concurrency']:>4} {m['lookups']:>6} {c['p50']:>9.2f} {c['p99']:>8.2f} "
                         f"{c['max']:>8.2f} {h['p50']:>11.3f} {h['p99']:>8.3f} {h['max']:>8.3f} {m['cold_over_150ms']:>7} "
                         f"{m['lookups_per_second']:>10.0f}")
    statuses = next((r["sequential"]["statuses"] for r in results if "sequential" in r), {})
    lines.append("")
    lines.append("drawn numbers -> card status (sequential, first run): " + ", ".join(f"{k} {v}" for k, v in statuses.items()))
    return "\n".join(lines)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--index", choices=("memory", "redis", "both"), default="both")
    parser.add_argument("--lookups", type=int, default=3000, help="measured numbers (each looked up cold then cached)")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=10, help="second pass with this many lookups in flight (1: skip)")
    parser.add_argument("--deadline-ms", type=int, default=1000)
    parser.add_argument("--pool-size", type=int, default=0,
                        help="SQL sources' connection pool size (default: the adapter's, 4 plus 4 overflow)")
    parser.add_argument("--reseed", action="store_true", help="seed again even if the stamp matches")
    parser.add_argument("--seed-only", action="store_true")
    parser.add_argument("--keep-redis", action="store_true")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    parser.add_argument("--cli", type=int, metavar="RUNS", default=0,
                        help="instead: time RUNS 'screenpop lookup' processes on the SQLite demo data (--customers)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    if args.cli:
        return await cli_bench(args)
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    kinds = ("memory", "redis") if args.index == "both" else (args.index,)
    say(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC, python {platform.python_version()} on {os.cpu_count()} cores; {' '.join(sys.argv)}")
    results, seeds = [], {}
    for backend in backends:
        seeds[backend] = await ensure_seed(backend, args.customers, args.seed, args.reseed)
        if args.seed_only:
            continue
        holder: dict = {}
        # The numbers are drawn from the in-process index: it is always built first.
        for kind in ("memory",) + tuple(k for k in kinds if k != "memory"):
            result = await run_index_kind(backend, kind, args, seeds[backend], holder)
            if kind in kinds:
                results.append(result)
            if args.json:  # what is done so far survives a later failure or a stop
                Path(args.json).write_text(json.dumps({"argv": sys.argv, "seeds": seeds, "results": results}, indent=1))
    report = table(results, seeds)
    print(report, flush=True)
    if results:
        verdicts = targets(results)
        print("\n" + "\n".join(verdicts), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"argv": sys.argv, "seeds": seeds, "results": results}, indent=1))
    return 0


async def cli_bench(args) -> int:
    """``screenpop lookup NUMBER`` as a user runs it: a new process each time,
    the demo's config/demo.toml pointed at the bench's SQLite files.  First
    with no saved index (the process builds and saves it), then RUNS known
    numbers reading the saved index, as next to a running service."""
    import resource
    import sqlite3
    import statistics
    import subprocess

    await ensure_seed("sqlite", args.customers, args.seed, args.reseed)
    config = BENCH_DIR / "cli.toml"
    config.write_text((ROOT / "config" / "demo.toml").read_text().replace("sqlite+aiosqlite:///var/demo/", f"sqlite+aiosqlite:///{BENCH_DIR}/"))
    (BENCH_DIR / "phone-index.sqlite3").unlink(missing_ok=True)
    with sqlite3.connect(BENCH_DIR / "sales.sqlite3") as db:
        numbers = [r[0] for r in db.execute("SELECT phone FROM customers WHERE phone IS NOT NULL ORDER BY random() LIMIT ?", (args.cli,))]
    screenpop = str(Path(sys.executable).with_name("screenpop"))

    def once(number: str) -> tuple[float, float, str]:
        cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        out = subprocess.run([screenpop, "lookup", number, "--config", str(config)], capture_output=True, text=True, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.perf_counter() - started, after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime, out.stdout

    wall, cpu, _ = once(numbers[0])
    say(f"no saved index (built and saved by this process): {wall:.2f} s wall, {cpu:.2f} s CPU")
    runs = [once(n) for n in numbers]
    known = sum(1 for *_, out in runs if not out.startswith("Unknown"))
    walls, cpus = sorted(r[0] for r in runs), sorted(r[1] for r in runs)
    say(f"saved index, {len(runs)} numbers ({known} known): wall min {walls[0]:.2f} / median {statistics.median(walls):.2f} / "
        f"max {walls[-1]:.2f} s; CPU median {statistics.median(cpus):.2f} s")
    return 0


def targets(results: list[dict]) -> list[str]:
    out = []
    for r in results:
        name = f"{r['backend']}/{r['index']}"
        seq = r.get("sequential")
        if seq:
            cold, cached = seq["cold"]["p99"], seq["cached"]["p99"]
            out.append(f"{name}: cold p99 {cold:.2f} ms ({'met' if cold < TARGET_COLD_P99_MS else 'NOT met'} < {TARGET_COLD_P99_MS:g}); "
                       f"cached p99 {cached:.3f} ms ({'met' if cached < TARGET_CACHED_P99_MS else 'NOT met'} < {TARGET_CACHED_P99_MS:g})")
        b = r["build"]
        per_million = b["seconds"] / b["rows"] * 1e6
        out.append(f"{name}: index build {per_million:.1f} s per million phone rows "
                   f"({'met' if per_million < TARGET_BUILD_S_PER_MILLION else 'NOT met'} < {TARGET_BUILD_S_PER_MILLION:g})")
    return out


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
