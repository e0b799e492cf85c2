"""Soak: pops, memory and latency over a bounded run with reconnect storms (issue 7).

    .venv/bin/python bench/bench_soak.py --minutes 10 --rate 50 --agents 2000 --storm-every 120

bench_pop.py's machinery in four processes (the machine has 2 cores):

* the service (``bench_soak.py --role service``): ``ScreenpopService`` wired
  as in bench_pop (:func:`bench_pop.service_settings`, the seeded demo SQLite
  sources, interaction log on SQLite, default settings apart from ports and
  paths), alone in its process, so its RSS (``VmRSS`` in
  ``/proc/PID/status``), open sockets (``/proc/PID/fd``) and CPU are its own;
  it answers ``stats`` (GC counts and pauses, event-loop lag, the lengths of
  the containers hanging off the service's objects), ``objects`` (tracked
  objects by type) and, with ``--tracemalloc``, ``snapshot``;
* the PBX simulator (``bench_pop.py --role sim``): ``--agents`` agents in
  three ring-all queues, calls at ``--rate`` calls/s for ``--minutes`` after
  a short warm-up, the default scenario mix, callers cycling over the seeded
  customers' numbers (the orchestrator forgets a card when its call ends, so
  they are mostly cold lookups); it notes every pop-triggering AMI event and
  its ``sent_at`` (see bench_pop's docstring);
* ``bench/popclients.py``: one ``websockets`` client per agent; every
  ``--storm-every`` seconds (at ``k * storm_every + storm_offset`` s, k >= 1)
  a share of them (``--storm-share``, a list cycled over the storms: 25 %,
  then all, ...) lose their sockets at once (TCP aborted, no close
  handshake) and reconnect straight away;
* this process, the controller: every minute it reads the service's RSS
  (and its highest 1-s sample), sockets and CPU, the other processes' CPU and
  the machine's, asks the service for its stats, reads the new triggers and
  pops and prints a line; at the end it matches everything again and writes
  the JSON report and a markdown table.

Pop accounting, per minute of the trigger's ``sent_at``: a trigger is
*live* when a pop answers it on the socket that was open (latency = arrival
- sent_at, as in bench_pop; the latency columns are these only), *replayed*
when the agent's socket was down and the reconnect's replay brought the pop
(the first pop for the call on the new socket, its trigger sent before the
new socket's hello, no trigger between the hello and its arrival), *offline*
when the agent was disconnected (from 1 s before the drop to its new hello)
and no replay brought it because the call no longer showed on that agent's
screen by then (the simulator's mirror of the pop rule notes when a call
leaves an agent's screen: missed, answered elsewhere, ended), and *lost*
otherwise, *not replayed* among them: the call still showed on the agent's
screen at the new hello, yet no replay brought it.  A replay of
a pop the agent already had is counted as a replayed pop too (the brief:
calls in progress replayed), apart from the delivered ones.
"""
from __future__ import annotations

import argparse
import asyncio
import ctypes
import dataclasses
import functools
import gc
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_pop import (ROOT, Child, cpu_seconds, known_numbers, machine_busy_seconds, open_sessions,  # noqa: E402
                       say, seed_if_needed, service_settings, summary)

MiB = 1024 * 1024
OUR_PACKAGES = ("screenpop", "agent_ui", "telephony", "customer_lookup", "adapters")


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def open_sockets(pid: int) -> int:
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return count


# =============================================================== service role

class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


@functools.cache
def _native_libs() -> tuple:
    """libsqlite3 and libc through ctypes, loaded once (None where missing)."""
    try:
        sqlite = ctypes.CDLL("libsqlite3.so.0")
        sqlite.sqlite3_memory_used.restype = ctypes.c_int64
    except (OSError, AttributeError):
        sqlite = None
    try:
        libc = ctypes.CDLL(None)
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        libc = None
    return sqlite, libc


PYMALLOC_LINES = {  # sys._debugmallocstats() line -> our key
    "# arenas allocated current": "arenas",
    "# bytes in allocated blocks": "in_blocks_mib",
    "# bytes in available blocks": "free_blocks_mib",
    "unused pools": "unused_pools_mib",
    "Total": "total_mib",
}


def pymalloc_split() -> dict:
    """Python's small-object allocator: its arenas, the bytes in live blocks,
    and what it holds free inside them (free blocks in used pools, unused
    pools): the fragmentation glibc's figures cannot see.  Read by pointing
    the process's stderr at a file for the one call that prints them."""
    out: dict = {}
    with tempfile.TemporaryFile("w+") as dump:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(dump.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        dump.seek(0)
        for line in dump:  # the first "Total" is the arenas' (the next, the arena map's)
            label, _, value = line.rpartition("=")
            for start, key in PYMALLOC_LINES.items():
                if key not in out and (label.strip().startswith(start) or (start == "unused pools" and start in label)):
                    number = int(value.strip().replace(",", ""))
                    out[key] = number if key == "arenas" else round(number / MiB, 1)
    return out


def memory_split() -> dict:
    """Where the resident memory is, beyond Python's own accounting: what
    SQLite holds (its page caches), glibc's heap in use and free (free inside
    the heap = fragmentation), pymalloc's arenas and the free space in them,
    Python's allocated blocks, threads."""
    out: dict = {"py_blocks": sys.getallocatedblocks(), "pymalloc": pymalloc_split()}
    sqlite, libc = _native_libs()
    out["sqlite_mib"] = round(sqlite.sqlite3_memory_used() / MiB, 1) if sqlite else None
    if libc is not None:
        info = libc.mallinfo2()
        out["heap_in_use_mib"] = round((info.uordblks + info.hblkhd) / MiB, 1)
        out["heap_free_mib"] = round(info.fordblks / MiB, 1)
    else:
        out["heap_in_use_mib"] = out["heap_free_mib"] = None
    with open("/proc/self/status") as f:
        out["threads"] = next((int(line.split()[1]) for line in f if line.startswith("Threads:")), None)
    return out


def container_sizes(root, depth: int = 5, limit: int = 5000) -> dict[str, int]:
    """Lengths of the dicts, lists, sets and deques hanging off the service's
    objects (attributes of instances of our packages' classes, ``depth``
    levels down): the place to look when memory grows."""
    sizes: dict[str, int] = {}
    seen: set[int] = set()
    frontier = [("service", root)]
    for _ in range(depth):
        nxt = []
        for path, obj in frontier:
            if id(obj) in seen or len(seen) > limit:
                continue
            seen.add(id(obj))
            try:
                attrs = dict(vars(obj))
            except TypeError:
                attrs = {}
            for slot in getattr(type(obj), "__slots__", ()):
                if isinstance(slot, str) and hasattr(obj, slot):
                    attrs[slot] = getattr(obj, slot)
            for name, value in attrs.items():
                where = f"{path}.{name}"
                if isinstance(value, (dict, list, set, frozenset, tuple)) or type(value).__name__ in ("deque", "OrderedDict", "WeakSet", "WeakValueDictionary", "WeakKeyDictionary"):
                    try:
                        sizes[where] = len(value)
                    except TypeError:
                        pass
                elif type(value).__module__.split(".")[0] in OUR_PACKAGES:
                    nxt.append((where, value))
        frontier = nxt
    return sizes


async def fill_history(service, numbers: list[str], per_caller: int, batch: int = 5000) -> None:
    """``per_caller`` answered calls of earlier days for each caller (no
    outcomes: the writer's upsert does not write them), written
    before the traffic: a center's log already holds its callers' earlier
    calls, and every card shows the last five.  Without them the cards grow
    by one history entry per round of the callers (every 8.8 minutes at 50
    calls/s over 26,000 numbers), and so does everything that holds cards
    for a while: growth a soak would take for a leak."""
    from log_rows import answered_call

    if per_caller <= 0:
        return
    day = 86400.0
    now = time.time() // day * day  # midnight UTC: earlier days only, out of today's figures
    started, written, total = time.monotonic(), 0, len(numbers) * per_caller
    records = []
    for i, number in enumerate(numbers):
        for k in range(per_caller):
            begin, agent = now - (k + 1) * day - (i % 600) * 60.0, str(2001 + (i + k) % 2000)
            records.append(answered_call(
                f"history-{i}-{k}", number, begin, agent, ("sales", "support", "billing")[(i + k) % 3],
                wait=12.5, talk=177.5, caller_e164=number, card_status="known"))
            if len(records) >= batch:
                written += await service.interactions.store.upsert(records)
                records = []
                print(f"history: {written:,} of {total:,} earlier calls written", file=sys.stderr, flush=True)
    if records:
        written += await service.interactions.store.upsert(records)
    print(f"history: {written:,} earlier calls in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)


async def run_service_role(args) -> int:
    import tracemalloc

    from screenpop.config import load_settings
    from screenpop.service import ScreenpopService

    if args.tracemalloc:
        tracemalloc.start(args.tracemalloc)
    folder = Path(args.dir).resolve()
    run = Path(args.run).resolve()
    dsns = await seed_if_needed(folder, args.customers)
    settings = service_settings(load_settings(None, env={}), args.ami_port, dsns, run)
    if args.index_refresh is not None:
        settings = dataclasses.replace(settings, lookup=dataclasses.replace(settings.lookup, index_refresh_seconds=args.index_refresh))
    service = ScreenpopService(settings)
    url = await service.start()
    await fill_history(service, known_numbers(folder, settings.lookup.default_region), args.history)
    await asyncio.wait_for(service.connection.connected_event.wait(), 30)
    tokens = await open_sessions(service, url, args.agents)
    (run / "tokens.json").write_text(json.dumps(tokens))

    pauses: list[tuple[int, float]] = []  # (generation, ms) since the last stats
    started = [0.0]

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append((info["generation"], (time.perf_counter() - started[0]) * 1000))

    gc.callbacks.append(on_gc)
    lags: list[float] = []  # event-loop lag (ms), sampled every 10 ms, since the last stats

    async def lag_monitor() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append((time.perf_counter() - before - 0.01) * 1000)

    monitor = asyncio.create_task(lag_monitor())
    built_at: dict[str, float] = {}  # per source, the phone-index build last reported

    async def index_rebuilt() -> list[str]:
        sources = (await service.lookup.index.stats())["sources"]
        fresh = sorted(name for name, s in sources.items() if built_at.get(name) != s["built_at"])
        built_at.update((name, s["built_at"]) for name, s in sources.items())
        return fresh

    await index_rebuilt()  # the start's build is not a rebuild
    say({"url": url, "tokens": str(run / "tokens.json"), "pid": os.getpid()})
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            command = json.loads(line)
            if command["cmd"] == "stats":
                gcs = {f"gen{g}": {"count": sum(1 for x, _ in pauses if x == g),
                                   "total_ms": round(sum(ms for x, ms in pauses if x == g), 1),
                                   "max_ms": round(max([ms for x, ms in pauses if x == g] or [0]), 1)} for g in (0, 1, 2)}
                lag = summary(lags)
                pauses.clear()
                lags.clear()
                say({"stats": {"gc": gcs, "gc_count": gc.get_count(), "gc_tuning": dataclasses.asdict(service.gc_tuning.stats),
                               "loop_lag_ms": lag, "sockets_in_hub": len(service.hub) if hasattr(service.hub, "__len__") else None,
                               "sizes": container_sizes(service), "index_rebuilt": await index_rebuilt(), "memory": memory_split(),
                               "tracemalloc_mib": round(tracemalloc.get_traced_memory()[0] / MiB, 1) if args.tracemalloc else None}})
            elif command["cmd"] == "settle":
                service.gc_tuning.settle()
                say({"settled": dataclasses.asdict(service.gc_tuning.stats)})
            elif command["cmd"] == "objects":  # the unfrozen ones only (see screenpop.gc_tuning)
                began = time.perf_counter()
                counts = Counter(type(o).__qualname__ for o in gc.get_objects())
                say({"objects": dict(counts), "total": sum(counts.values()),
                     "ms": round((time.perf_counter() - began) * 1000, 1)})
            elif command["cmd"] == "snapshot":
                tracemalloc.take_snapshot().dump(command["path"])
                say({"snapshot": command["path"]})
            elif command["cmd"] == "garbage":  # what only a full collection frees, by type (at the end)
                gc.unfreeze()
                gc.set_debug(gc.DEBUG_SAVEALL)
                gc.collect()
                kinds = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage)
                frames = Counter(o.f_code.co_qualname for o in gc.garbage if type(o).__name__ == "frame")
                total = len(gc.garbage)
                gc.garbage.clear()
                gc.set_debug(0)
                gc.freeze()
                say({"garbage": {"total": total, "types": dict(kinds.most_common(30)), "frames": dict(frames.most_common(20))}})
            elif command["cmd"] == "quit":
                break
    finally:
        monitor.cancel()
        await service.stop()
    return 0


# =============================================================== controller

class Routed:
    """A child whose answers are read aside and sorted by kind, so a storm's
    late answer does not get in the way of a dump's."""

    def __init__(self, child: Child, kinds: tuple[str, ...]):
        self.child, self.kinds = child, kinds
        self.queues: dict[str, asyncio.Queue] = defaultdict(asyncio.Queue)
        self.pump = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        while True:
            try:
                message = await self.child.read()
            except Exception as exc:  # the child exited
                for kind in self.kinds:
                    self.queues[kind].put_nowait({"error": str(exc)})
                return
            kind = next((k for k in self.kinds if k in message), "other")
            self.queues[kind].put_nowait(message)

    async def get(self, kind: str, timeout: float | None = None) -> dict:
        message = await asyncio.wait_for(self.queues[kind].get(), timeout)
        if "error" in message:
            raise RuntimeError(f"{self.child.name}: {message['error']}")
        return message

    async def ask(self, command: dict, kind: str, timeout: float | None = 120) -> dict:
        self.child.send(command)
        return await self.get(kind, timeout)


def account(triggers: list, pops: list, reconnects: list, t0: float, minutes: int, down: dict | None = None,
            unpops: list | None = None) -> dict:
    """Match triggers and pops (see the module docstring); per minute of the
    trigger: expected, live, replayed, offline, lost and the live latencies."""
    hello = {(agent, gen): hello_at for agent, gen, _, hello_at in reconnects}
    dropped = {(agent, gen): dropped_at for agent, gen, dropped_at, _ in reconnects}
    offline: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for agent, _, dropped_at, hello_at in reconnects:
        offline[agent].append((dropped_at - 1.0, hello_at if hello_at is not None else float("inf")))
    for agent, dropped_at in (down or {}).items():  # dropped and not back yet (a storm still going on)
        offline[agent].append((dropped_at - 1.0, float("inf")))
    rings: dict[tuple, list[float]] = defaultdict(list)
    kinds: dict[tuple, str] = {}  # (call, agent, sent_at) -> "AMI event/call event", for the lost ones' details
    for call_id, agent, sent_at, ami_event, call_event in triggers:
        rings[(call_id, agent)].append(sent_at)
        kinds[(call_id, agent, sent_at)] = f"{ami_event}/{call_event}"
    left: dict[tuple, list[float]] = defaultdict(list)  # (call, agent) -> when the call left the agent's screen
    for call_id, agent, sent_at in unpops or ():
        left[(call_id, agent)].append(sent_at)
    got: dict[tuple, list] = defaultdict(list)
    for pop in pops:
        got[(pop[0], pop[1])].append(pop)

    def minute(t: float) -> int:
        return int((t - t0) // 60) + 1  # 0: the warm-up

    rows: dict[int, dict] = {m: {"expected": 0, "live": 0, "replayed": 0, "offline": 0, "lost": 0, "not_replayed": 0, "latency": []}
                             for m in range(0, minutes + 2)}
    replay_pops = Counter()  # minute of arrival -> replayed pops (delivering or repeating)
    replay_arrivals: list[float] = []
    replay_delays: list[float] = []  # drop -> replayed pop, for pops that were due while offline
    unmatched = 0
    details: dict[str, list] = {"lost": [], "unmatched": []}  # the first few of each, to tell a miss from a miscount
    for key in set(rings) | set(got):
        agent = key[1]
        ts = sorted(rings.get(key, []))
        matched: list = [None] * len(ts)
        gens_seen: set[int] = set()
        for pop in sorted(got.get(key, []), key=lambda p: p[2]):
            arrival, gen = pop[2], (pop[8] if len(pop) > 8 else 0)
            first_on_gen = gen not in gens_seen
            gens_seen.add(gen)
            h = hello.get((agent, gen))
            if gen > 0 and first_on_gen and h is not None:
                before = [i for i, t in enumerate(ts) if t < h]
                if before and not any(h <= t <= arrival for t in ts):
                    replay_pops[minute(arrival)] += 1
                    replay_arrivals.append(arrival)
                    i = before[-1]
                    if matched[i] is None:
                        matched[i] = "replayed"
                        replay_delays.append((arrival - dropped[(agent, gen)]) * 1000)
                    continue
            floor = dropped.get((agent, gen), 0.0) - 1.0 if gen > 0 else 0.0
            i = next((i for i, t in enumerate(ts) if matched[i] is None and floor <= t <= arrival + 0.001), None)
            if i is None:
                unmatched += 1
                if len(details["unmatched"]) < 20:
                    details["unmatched"].append({"call_id": key[0], "agent": agent, "arrival": arrival, "gen": gen,
                                                 "server_sent_at": pop[3], "rings": ts})
                continue
            matched[i] = (arrival - ts[i]) * 1000
        for t, m in zip(ts, matched):
            row = rows.setdefault(minute(t), {"expected": 0, "live": 0, "replayed": 0, "offline": 0, "lost": 0, "not_replayed": 0, "latency": []})
            row["expected"] += 1
            if m is None:
                window = next(((a, b) for a, b in offline.get(agent, ()) if a <= t <= b), None)
                if window is None:
                    row["lost"] += 1
                    if len(details["lost"]) < 20:
                        details["lost"].append({"call_id": key[0], "agent": agent, "sent_at": t, "trigger": kinds.get((*key, t)),
                                                "pops": [p[2] for p in got.get(key, [])]})
                elif unpops is not None and window[1] != float("inf") and not any(t <= u <= window[1] for u in left.get(key, ())):
                    row["not_replayed"] += 1  # still on the agent's screen at the new hello, yet no replay brought it
                    row["lost"] += 1
                else:
                    row["offline"] += 1
            elif m == "replayed":
                row["replayed"] += 1
            else:
                row["live"] += 1
                row["latency"].append(m)
    return {"rows": rows, "replay_pops": replay_pops, "replay_delays": replay_delays, "unmatched_pops": unmatched, "details": details,
            "replay_arrivals": replay_arrivals}


def storm_replays(storms: list[dict], arrivals: list[float]) -> None:
    """Replayed pops per storm: those arriving from its start to 5 s after its last socket was back."""
    for storm in storms:
        start, end = storm["started"], storm["started"] + storm["seconds"] + 5.0
        storm["replay_pops"] = sum(1 for t in arrivals if start <= t <= end)


async def run_controller(args) -> int:
    from screenpop.config import load_settings

    folder = Path(args.dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    await seed_if_needed(folder, args.customers)
    numbers = known_numbers(folder, load_settings(None, env={}).lookup.default_region)
    warmup_n = max(1, int(args.rate * args.warmup))
    run = Path(args.run).resolve()
    shutil.rmtree(run, ignore_errors=True)  # our own scratch folder
    run.mkdir(parents=True)
    plan = [{"name": "warmup", "rate": args.rate, "seconds": args.warmup, "callers": numbers[:warmup_n]},
            {"name": "soak", "rate": args.rate, "seconds": args.minutes * 60, "callers": numbers[warmup_n:]}]
    (run / "plan.json").write_text(json.dumps(plan))
    shares = [float(s) for s in args.storm_share.split(",")]
    storm_at = []
    k = 1
    while args.storm_every > 0 and k * args.storm_every + args.storm_offset < args.minutes * 60 - 5:
        storm_at.append(k * args.storm_every + args.storm_offset)
        k += 1

    sim = await Child.spawn("simulator", str(HERE / "bench_pop.py"), "--role", "sim", "--agents", str(args.agents),
                            "--seed", str(args.seed))
    hello = await sim.read(120)
    svc_argv = [str(Path(__file__).resolve()), "--role", "service", "--ami-port", str(hello["port"]), "--agents",
                str(args.agents), "--dir", str(folder), "--run", str(run), "--customers", str(args.customers)]
    if args.tracemalloc:
        svc_argv += ["--tracemalloc", str(args.tracemalloc)]
    if args.index_refresh is not None:
        svc_argv += ["--index-refresh", str(args.index_refresh)]
    if args.history:
        svc_argv += ["--history", str(args.history)]
    service = await Child.spawn("service", *svc_argv)
    clients = None
    routed: dict[str, Routed] = {}
    report: dict = {"args": vars(args), "storm_at_seconds": storm_at, "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    try:
        up = await service.read(600)
        pids = {"service": up["pid"], "simulator": sim.proc.pid}
        note(f"service pid={up['pid']} {up['url']}; simulator pid={sim.proc.pid} queues={hello['queues']}")
        clients = await Child.spawn("clients", str(HERE / "popclients.py"), "--url", up["url"].replace("http", "ws"),
                                    "--tokens", up["tokens"])
        ready = await clients.read(600)
        pids["clients"] = clients.proc.pid
        pids["controller"] = os.getpid()
        note(f"clients pid={clients.proc.pid}: {ready}")
        report["clients_ready"] = ready
        if ready["ready"] != args.agents:
            raise SystemExit(f"only {ready['ready']} of {args.agents} sockets opened")
        routed = {"sim": Routed(sim, ("phase", "placing_done", "done", "dumped")),
                  "service": Routed(service, ("stats", "objects", "snapshot", "settled", "garbage")),
                  "clients": Routed(clients, ("dumped", "storm"))}
        await asyncio.sleep(2.0)  # let the connect storm settle
        # The sockets grew the service's memory past its GC tuning's thaw threshold:
        # the thaw it would do at its next tick (as a shift logs in) is done now,
        # before the minutes we measure (bench_pop does the same).
        report["gc_settle"] = (await routed["service"].ask({"cmd": "settle"}, "settled"))["settled"]
        note(f"gc settled: {report['gc_settle']}")
        await routed["service"].ask({"cmd": "stats"}, "stats")  # resets the service's since-last figures
        before_rss = rss_bytes(pids["service"])
        note(f"other benchmarks running now: {busy_benchmarks() or 'none'}; load average {os.getloadavg()}")
        routed["sim"].child.send({"cmd": "run", "plan": str(run / "plan.json")})
        await routed["sim"].get("phase", 60)  # warm-up
        t0 = (await routed["sim"].get("phase", args.warmup + 60))["t"]
        note(f"soak started: {args.minutes} min at {args.rate:g} calls/s, {args.agents} agents, "
             f"storms at {storm_at} s (shares {shares}); RSS before traffic {before_rss / MiB:.1f} MiB")

        def meters() -> dict:
            cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
            cpu["machine"] = machine_busy_seconds()
            return {"t": time.time(), "cpu": cpu, "rss": rss_bytes(pids["service"]),
                    "sockets": open_sockets(pids["service"]), "load": os.getloadavg()}

        marks = [meters()]
        rss_peak: dict[int, int] = defaultdict(int)
        storms: list[dict] = []

        async def sampler() -> None:
            while True:
                m = int((time.time() - t0) // 60) + 1
                rss_peak[m] = max(rss_peak[m], rss_bytes(pids["service"]))
                await asyncio.sleep(1.0)

        async def storm_runner() -> None:
            """Each storm at its time, whether the one before is over or not."""
            asked: dict[int, dict] = {}

            async def one(n: int, at: float) -> None:
                await asyncio.sleep(max(0.0, t0 + at - time.time()))
                share = shares[n % len(shares)]
                asked[n] = {"at_seconds": at, "share": share, "minute": int(at // 60) + 1,
                            "began_seconds": round(time.time() - t0, 1)}
                routed["clients"].child.send({"cmd": "storm", "share": share, "seed": args.seed + n, "id": n})

            starts = [asyncio.create_task(one(n, at)) for n, at in enumerate(storm_at)]
            for _ in storm_at:
                answer = await routed["clients"].get("storm")
                answer.update(asked[answer["id"]])
                storms.append(answer)
                note(f"  storm at {answer['began_seconds']} s: {answer['storm']} sockets dropped, {answer['reconnected']} "
                     f"back in {answer['seconds']} s, {answer['failed']} failed")
            await asyncio.gather(*starts)

        tasks = [asyncio.create_task(sampler()), asyncio.create_task(storm_runner())]
        triggers: list = []
        pops: list = []
        reconnects: list = []
        down: dict[str, float] = {}
        unpops: list = []

        async def collect() -> None:
            path_t, path_p = run / "triggers-part.json", run / "pops-part.json"
            await routed["sim"].ask({"cmd": "dump", "path": str(path_t), "since": len(triggers),
                                     "unpops_since": len(unpops)}, "dumped")
            await routed["clients"].ask({"cmd": "dump", "path": str(path_p), "since": len(pops),
                                         "reconnects_since": len(reconnects)}, "dumped")
            part = json.loads(path_t.read_text())
            triggers.extend(part["triggers"])
            unpops.extend(part.get("unpops") or [])
            part = json.loads(path_p.read_text())
            pops.extend(part["pops"])
            reconnects.extend(part["reconnects"])
            down.clear()
            down.update(part.get("down") or {})

        minutes: list[dict] = []
        service_stats: list[dict] = []
        objects: dict[int, dict] = {}
        for m in range(1, args.minutes + 1):
            await asyncio.sleep(max(0.0, t0 + 60 * m - time.time()))
            marks.append(meters())
            service_stats.append((await routed["service"].ask({"cmd": "stats"}, "stats"))["stats"])
            if args.objects and m in (2, args.minutes):
                objects[m] = await routed["service"].ask({"cmd": "objects"}, "objects")
            if args.tracemalloc and m in snapshot_minutes(args):
                await routed["service"].ask({"cmd": "snapshot", "path": str(run / f"tracemalloc-{m}.snap")}, "snapshot", 300)
            await asyncio.sleep(max(0.0, t0 + 60 * m + args.grace - time.time()))
            await collect()
            acc = account(triggers, pops, reconnects, t0, args.minutes, down, unpops)
            storm_replays(storms, acc["replay_arrivals"])
            row = minute_row(m, acc, marks[m - 1], marks[m], rss_peak[m], service_stats[-1], pids, storms)
            minutes.append(row)
            note(progress_line(row))
        placing = await routed["sim"].get("placing_done", 120)
        done = await routed["sim"].get("done", 600)
        note(f"all calls placed {placing.get('placed')} (late at most {placing.get('max_late')} s); all calls ended")
        await asyncio.sleep(2.0)  # the last pops on the wire
        report["cyclic_garbage_at_end"] = (await routed["service"].ask({"cmd": "garbage"}, "garbage"))["garbage"]
        note(f"cyclic garbage at the end: {report['cyclic_garbage_at_end']}")
        for task in tasks:
            task.cancel()
        await collect()
        report["storms_unfinished_at_end"] = len(storm_at) - len(storms)
        report["sockets_still_down_at_end"] = len(down)
        end_marks = meters()
        acc = account(triggers, pops, reconnects, t0, args.minutes, down, unpops)
        storm_replays(storms, acc["replay_arrivals"])
        minutes = [minute_row(m, acc, marks[m - 1], marks[m], rss_peak[m], service_stats[m - 1], pids, storms)
                   for m in range(1, args.minutes + 1)]
        report.update({"pids": pids, "rss_before_traffic_mib": round(before_rss / MiB, 1), "minutes": minutes,
                       "storms": storms, "events_sent": done.get("events_sent"), "placed": placing.get("placed"),
                       "unmatched_pops": acc["unmatched_pops"], "lost_and_unmatched": acc["details"], "sockets_closed_early_unasked": None,
                       "rss_after_calls_ended_mib": round(end_marks["rss"] / MiB, 1),
                       "sockets_after_calls_ended": end_marks["sockets"]})
        tail = acc["rows"].get(args.minutes + 1, {})
        report["after_last_minute"] = {k: v for k, v in tail.items() if k != "latency"}
        report["replay_delay_ms"] = summary(acc["replay_delays"])
        report["replay_pops_total"] = sum(acc["replay_pops"].values())
        report["service_stats"] = service_stats
        report["growth"] = growth(service_stats, objects, run, args)
        report["verdict"] = verdict(minutes, report)
        final = json.loads((run / "pops-part.json").read_text())
        report["sockets_closed_early_unasked"] = final["closed"]
        report["client_failures"] = final["failed"][:10]
        report["other_messages"] = final["other"]
    finally:
        for r in routed.values():
            r.pump.cancel()
        if clients is not None:
            await clients.finish()
        await sim.finish()
        await service.finish()

    out = Path(args.out or ROOT / "var" / "bench" / f"soak-{args.agents}x{args.rate:g}x{args.minutes}m.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str))
    print(markdown(report))
    print(f"\nreport: {out}")
    return 0


def busy_benchmarks() -> list[str]:
    mine = {os.getpid(), os.getppid()}
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) in mine:
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "bench_" in cmd and "bench_soak" not in cmd and "--role sim" not in cmd:
            found.append(f"{pid} {cmd[:100]}")
    return found


def minute_row(m: int, acc: dict, before: dict, after: dict, peak: int, stats: dict, pids: dict, storms: list) -> dict:
    row = acc["rows"].get(m, {"expected": 0, "live": 0, "replayed": 0, "offline": 0, "lost": 0, "not_replayed": 0, "latency": []})
    wall = after["t"] - before["t"]
    cpu = {k: round(100 * (after["cpu"][k] - before["cpu"][k]) / wall, 1) for k in after["cpu"]}
    cpu["others"] = round(cpu["machine"] - sum(cpu[k] for k in pids), 1)
    return {
        "minute": m, "expected": row["expected"], "received": row["live"] + row["replayed"], "live": row["live"],
        "replayed": row["replayed"], "offline": row["offline"], "lost": row["lost"],
        "not_replayed": row.get("not_replayed", 0),
        "replay_pops": acc["replay_pops"].get(m, 0),
        "latency_ms": summary(row["latency"]),
        "rss_mib": round(after["rss"] / MiB, 1), "rss_peak_mib": round(max(peak, after["rss"]) / MiB, 1),
        "sockets": after["sockets"], "cpu_percent": cpu, "load_average": after["load"],
        "gc": stats.get("gc"), "loop_lag_ms": stats.get("loop_lag_ms"), "sockets_in_hub": stats.get("sockets_in_hub"),
        "storms": [s for s in storms if s.get("minute") == m],
        "index_rebuilt": stats.get("index_rebuilt") or [],
        "memory": stats.get("memory") or {},
    }


def progress_line(r: dict) -> str:
    s = r["latency_ms"]
    storm = "".join(f"  [storm {100 * x['share']:.0f}%: {x['storm']} sockets back in {x['seconds']} s, "
                    f"{x.get('replay_pops')} pops replayed]" for x in r["storms"])
    return (f"min {r['minute']:3d}  pops {r['received']:,}/{r['expected']:,} (replayed {r['replayed']}, offline "
            f"{r['offline']}, lost {r['lost']} of which not replayed {r['not_replayed']}; replay pops {r['replay_pops']})  p50 {s['p50']:.1f} p95 {s['p95']:.0f} "
            f"p99 {s['p99']:.0f} max {s['max']:.0f} ms  RSS {r['rss_mib']:.1f} MiB (peak {r['rss_peak_mib']:.1f})  "
            f"sockets {r['sockets']}  CPU svc {r['cpu_percent']['service']:.0f}% others {r['cpu_percent']['others']:.0f}%"
            f"  gen2 {r['gc']['gen2']['count']}x max {r['gc']['gen2']['max_ms']:.0f} ms{storm}"
            + (f"  [{rebuilt_note(r)}]" if r.get("index_rebuilt") else "") + memory_note(r.get("memory")))


def snapshot_minutes(args) -> set[int]:
    """When to snapshot the traced allocations: compare two of them with
    ``tracemalloc.Snapshot.load(a).compare_to(load(b), "traceback")``."""
    if args.snapshot_at:
        return {int(m) for m in args.snapshot_at.split(",")}
    return {2, args.minutes}


def memory_note(m: dict | None) -> str:
    if not m:
        return ""
    p = m.get("pymalloc") or {}
    return (f"  [sqlite {m['sqlite_mib']} MiB, heap in use {m['heap_in_use_mib']} free {m['heap_free_mib']} MiB, "
            f"pymalloc {p.get('arenas')} arenas: blocks {p.get('in_blocks_mib')} free {p.get('free_blocks_mib')}"
            f" unused pools {p.get('unused_pools_mib')} MiB, py blocks {m['py_blocks']:,}, threads {m['threads']}]")


def rebuilt_note(r: dict) -> str:
    """The phone-index sources whose periodic rebuild ended in this minute."""
    return f"index rebuilt: {', '.join(r['index_rebuilt'])}" if r.get("index_rebuilt") else ""


def growth(stats: list[dict], objects: dict, run: Path, args) -> dict:
    """What grew from minute 2 to the last minute: containers off the
    service's objects, tracked objects by type, tracemalloc lines."""
    out: dict = {}
    if len(stats) >= 2:
        a, b = stats[1]["sizes"], stats[-1]["sizes"]
        grown = {k: (a.get(k, 0), b[k]) for k in b if b[k] - a.get(k, 0) >= 50}
        out["containers_grown"] = dict(sorted(grown.items(), key=lambda kv: -(kv[1][1] - kv[1][0]))[:25])
        out["containers_largest_at_end"] = dict(sorted(b.items(), key=lambda kv: -kv[1])[:15])
    if 2 in objects and args.minutes in objects and args.minutes != 2:
        a, b = objects[2]["objects"], objects[args.minutes]["objects"]
        diff = {k: b.get(k, 0) - a.get(k, 0) for k in set(a) | set(b)}
        out["objects_total"] = (objects[2]["total"], objects[args.minutes]["total"])
        out["objects_grown"] = dict(sorted(((k, v) for k, v in diff.items() if v > 0), key=lambda kv: -kv[1])[:25])
        out["objects_ms"] = (objects[2]["ms"], objects[args.minutes]["ms"])
    if args.tracemalloc and args.minutes != 2:
        import tracemalloc

        first = tracemalloc.Snapshot.load(str(run / "tracemalloc-2.snap"))
        last = tracemalloc.Snapshot.load(str(run / f"tracemalloc-{args.minutes}.snap"))
        out["tracemalloc_grown"] = [{"where": str(s.traceback), "kib": round(s.size_diff / 1024, 1), "count": s.count_diff}
                                    for s in last.compare_to(first, "traceback" if args.tracemalloc > 1 else "lineno")[:25]]
    return out


def verdict(minutes: list[dict], report: dict) -> dict:
    base = minutes[1] if len(minutes) > 1 else minutes[0]
    last, first = minutes[-1], minutes[0]
    grow = last["rss_mib"] - base["rss_mib"]
    tail = report.get("after_last_minute") or {}
    expected = sum(r["expected"] for r in minutes) + tail.get("expected", 0)
    lost = sum(r["lost"] for r in minutes) + tail.get("lost", 0)
    not_replayed = sum(r.get("not_replayed", 0) for r in minutes) + tail.get("not_replayed", 0)
    text = (f"RSS minute {base['minute']} -> {last['minute']}: {base['rss_mib']:.1f} -> {last['rss_mib']:.1f} MiB "
            f"({grow:+.1f} MiB, {100 * grow / base['rss_mib']:+.1f} %); latency p50 {first['latency_ms']['p50']:.1f} -> "
            f"{last['latency_ms']['p50']:.1f} ms, p99 {first['latency_ms']['p99']:.0f} -> {last['latency_ms']['p99']:.0f} ms "
            f"(minute 1 -> {last['minute']}); pops lost {lost} of {expected:,} (triggers after the last minute included; "
            f"{not_replayed} of them not replayed though still on the agent's screen at the reconnect) "
            f"(replayed after a drop {sum(r['replayed'] for r in minutes)}, offline and not due at reconnect "
            f"{sum(r['offline'] for r in minutes)}, replayed pops in all {report.get('replay_pops_total')}); "
            f"open sockets {base['sockets']} -> {last['sockets']}")
    return {"rss_base_mib": base["rss_mib"], "rss_last_mib": last["rss_mib"], "rss_growth_mib": round(grow, 1),
            "rss_growth_percent": round(100 * grow / base["rss_mib"], 1),
            "p50_first_last": (first["latency_ms"]["p50"], last["latency_ms"]["p50"]),
            "p99_first_last": (first["latency_ms"]["p99"], last["latency_ms"]["p99"]),
            "pops_expected": expected, "pops_lost": lost, "pops_not_replayed": not_replayed, "text": text}


def markdown(report: dict) -> str:
    def ms(v: float) -> str:
        return f"{v:,.0f} ms" if v >= 100 else f"{v:.1f} ms"

    lines = ["| min | pops expected / received | replayed / offline / lost | p50 | p95 | p99 | max | RSS MiB (peak) | sockets | CPU % service / others | storm, index rebuild |",
             "|----:|---------------------:|------:|----:|----:|----:|----:|------:|------:|------:|-------|"]
    for r in report["minutes"]:
        s = r["latency_ms"]
        storm = "; ".join(f"{100 * x['share']:.0f} % ({x['storm']}) at {x.get('began_seconds', x['at_seconds'])} s, back in {x['seconds']} s, "
                          f"{x.get('replay_pops')} pops replayed" for x in r["storms"])
        storm = "; ".join(part for part in (storm, rebuilt_note(r)) if part)
        lines.append(f"| {r['minute']} | {r['expected']:,} / {r['received']:,} | {r['replayed']} / {r['offline']} / {r['lost']} | "
                     f"{ms(s['p50'])} | {ms(s['p95'])} | {ms(s['p99'])} | {ms(s['max'])} | {r['rss_mib']:.1f} ({r['rss_peak_mib']:.1f}) | "
                     f"{r['sockets']} | {r['cpu_percent']['service']:.0f} / {r['cpu_percent']['others']:.0f} | {storm} |")
    lines.append("")
    lines.append("Verdict: " + report["verdict"]["text"])
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="soak: pops, memory and latency over minutes, with reconnect storms")
    parser.add_argument("--role", choices=["controller", "service"], default="controller", help=argparse.SUPPRESS)
    parser.add_argument("--ami-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--run", default=str(ROOT / "var" / "bench" / "soak"), help="run files (recreated)")
    parser.add_argument("--minutes", type=int, default=10, help="minutes of traffic (default 10)")
    parser.add_argument("--rate", type=float, default=50.0, help="new calls per second (default 50)")
    parser.add_argument("--agents", type=int, default=2000, help="agents connected, one socket each (default 2000)")
    parser.add_argument("--storm-every", type=float, default=120.0, help="seconds between reconnect storms (0: none)")
    parser.add_argument("--storm-offset", type=float, default=30.0,
                        help="storms at k * storm_every + offset s, k >= 1 (default 30: mid-minute)")
    parser.add_argument("--storm-share", default="0.25,1.0",
                        help="share of the sockets dropped, a comma list cycled over the storms (default 0.25,1.0)")
    parser.add_argument("--grace", type=float, default=5.0, help="seconds after a minute before its pops are counted")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of throw-away traffic first (default 5)")
    parser.add_argument("--customers", type=int, default=20_000, help="customers seeded in the demo databases")
    parser.add_argument("--no-objects", dest="objects", action="store_false",
                        help="skip the tracked-objects-by-type count in minute 2 and the last (a ~0.3 s pause each at 2,000 sockets)")
    parser.add_argument("--tracemalloc", type=int, default=0, metavar="FRAMES",
                        help="trace the service's allocations (slows it, and its snapshots inflate the RSS figures); "
                             "snapshots at --snapshot-at minutes")
    parser.add_argument("--snapshot-at", default="", metavar="M,M",
                        help="minutes after which the service's allocations are snapshotted (default: 2 and the last)")
    parser.add_argument("--index-refresh", type=float, metavar="SECONDS",
                        help="[lookup] index_refresh_seconds (default: the service's, 900): shorter to see many "
                             "phone-index rebuilds in one run")
    parser.add_argument("--history", type=int, default=0, metavar="N",
                        help="N answered calls of earlier days per caller in the interaction log before the traffic, "
                             "as in a center's log (the cards show the last 5); default 0: an empty log")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", default=str(ROOT / "var" / "bench" / "pop"), help="demo databases (bench_pop's)")
    parser.add_argument("--out", help="JSON report path")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.role == "service":
        return asyncio.run(run_service_role(args))
    return asyncio.run(run_controller(args))


if __name__ == "__main__":
    sys.exit(main())
