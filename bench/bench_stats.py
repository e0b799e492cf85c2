"""What the supervisors' day figures cost as the day's calls pile up.

The supervision plugin re-reads the interaction log every 2 s while calls
move (an incremental read: rows whose events were written in the last
seconds), and the whole day at start and at a day change (every 10 minutes
until migration 0005).  Both run inside the service beside the pops, so a
read whose cost grows with the day's calls slows every pop by the evening.
This seeds a day at 50 calls/s into a fresh log (the real store, migrations
included; each call stamped as written when its last event came, as a
writer keeping up leaves it), then at each size times both reads and the
process's memory around repeated whole-day reads (each a fresh cache's
first read, as at a start).

    .venv/bin/python bench/bench_stats.py --sizes 30000,90000,270000
    .venv/bin/python bench/bench_stats.py --postgres postgresql+asyncpg://root@127.0.0.1:5432/test

``--postgres``: the server's admin database; the bench makes (and leaves
for a look) a database ``bench_stats`` beside it, dropped at the next run.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text, update  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from screenpop.db import create_engine  # noqa: E402
from screenpop.interactions.models import interactions  # noqa: E402
from screenpop.interactions.service import InteractionLog  # noqa: E402
from screenpop.supervision.stats import StatsCache  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from log_rows import answered_call  # noqa: E402

RATE = 50  # calls a second, the soak's
QUEUES = ("sales", "billing", "support")
DAY = datetime(2026, 11, 24, tzinfo=timezone.utc)


def call(n: int):
    """The n-th call of the day: queued, rung, answered, 90 s of talk."""
    start = DAY.timestamp() + n / RATE
    return answered_call(f"{int(start)}.{n}", f"+3491{n:07d}", start, f"agent{n % 2000:04d}", QUEUES[n % 3],
                         wait=8.0, talk=90.0)


async def seed(log: InteractionLog, have: int, want: int) -> None:
    batch = 2000
    for first in range(have, want, batch):
        await log.store.upsert([call(n) for n in range(first, min(first + batch, want))])
        print(f"\rseeding: {min(first + batch, want):,}/{want:,} calls", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    # one bench upsert stamps 2,000 calls with one instant of today's clock:
    # stamp each as written when its last event came, on the bench's day
    async with log.engine.begin() as conn:
        await conn.execute(update(interactions).values(events_written_at=interactions.c.last_event_at))


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def measure(log: InteractionLog, calls: int, repeats: int) -> dict:
    # the clock stands 2 minutes after the day's last call began: its last
    # few hundred calls are still moving, as at 50 calls/s
    now = (DAY + timedelta(seconds=calls / RATE + 120)).timestamp()
    gc.collect()
    rss = [rss_mib()]
    full = []
    for _ in range(repeats):
        stats = StatsCache(log.engine, lambda queue: 20.0, clock=lambda: now)  # its first refresh reads the whole day
        started = time.perf_counter()
        await stats.refresh()
        full.append(time.perf_counter() - started)
        gc.collect()
        rss.append(rss_mib())
    incremental = []
    for _ in range(repeats * 4):
        started = time.perf_counter()
        await stats.refresh()
        incremental.append(time.perf_counter() - started)
    offered = sum(stats.queue(q)["offered"] for q in QUEUES)
    assert offered == calls, f"figures count {offered} calls of {calls}"
    return {"calls": calls, "full_s": min(full), "incremental_ms": 1000 * sorted(incremental)[len(incremental) // 2],
            "rss": rss}


async def fresh_postgres(admin_dsn: str, name: str = "bench_stats") -> str:
    engine = create_engine(admin_dsn, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            await conn.execute(text(f"CREATE DATABASE {name}"))
    finally:
        await engine.dispose()
    return make_url(admin_dsn).set(database=name).render_as_string(hide_password=False)


async def main(args) -> None:
    sizes = sorted(int(s) for s in args.sizes.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        if args.postgres:
            dsn = await fresh_postgres(args.postgres)
        else:
            dsn = f"sqlite+aiosqlite:///{tmp}/interactions.sqlite3"
        log = await InteractionLog.open(dsn, spill_path=f"{tmp}/spill.jsonl")
        try:
            rows, have = [], 0
            for size in sizes:
                await seed(log, have, size)
                have = size
                if not dsn.startswith("sqlite"):
                    async with log.engine.connect() as conn:
                        await conn.execute(text("ANALYZE interactions"))
                result = await measure(log, size, args.repeats)
                rows.append(result)
                print(f"{size:,} calls: whole day {result['full_s']:.2f} s, incremental {result['incremental_ms']:.1f} ms,"
                      f" RSS around {args.repeats} whole-day reads {' -> '.join(f'{r:.1f}' for r in result['rss'])} MiB",
                      file=sys.stderr)
        finally:
            await log.close()
    print(f"\n`{' '.join(sys.argv)}` ({dsn.split(':')[0]})\n")
    print("| calls of the day | whole-day read | incremental read (median) | RSS around the whole-day reads, MiB |")
    print("|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['calls']:,} | {r['full_s']:.2f} s | {r['incremental_ms']:.1f} ms | {' -> '.join(f'{x:.1f}' for x in r['rss'])} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="30000,90000,270000", help="calls of the day at which to measure")
    parser.add_argument("--repeats", type=int, default=3, help="whole-day reads per size")
    parser.add_argument("--postgres", metavar="ADMIN_DSN", help="a PostgreSQL server's admin database (default: SQLite)")
    asyncio.run(main(parser.parse_args()))
