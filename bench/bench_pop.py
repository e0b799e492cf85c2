"""Pop latency: from the AMI event's last byte leaving the PBX simulator to
the pop frame arriving at the agent's WebSocket client (issue 4 item 10).

    .venv/bin/python bench/bench_pop.py --agents 2000 --rate 50 --seconds 60

Three processes, so none steals another's event loop (the machine has 2 cores):

* this one runs the service, exactly as ``serve`` wires it
  (:class:`screenpop.service.ScreenpopService`: AMI connection, tracker,
  orchestrator, lookup on the seeded demo SQLite databases with its
  in-process cache, interaction log on SQLite, aiohttp web app and hub), with
  default settings apart from the ports and file paths;
* ``bench_pop.py --role sim`` runs the PBX simulator (real AMI over TCP) with
  ``--agents`` agents in three ring-all queues, places calls at ``--rate``
  calls/s, and notes for every event the ``sent_at`` the simulator reports
  (``time.time()`` just before the bytes are handed to the service's socket;
  read after, it came 2 ms after a pop's arrival once, the simulator having
  lost the CPU between the write and the clock);
* ``bench/popclients.py`` holds one ``websockets`` client per agent and notes
  ``time.time()`` when each pop frame arrives.

Which AMI event makes a pop: the simulator process feeds every event it sends
to its own :class:`~telephony.tracker.CallTracker` (the service's code, same
agent rules), and a mirror of the orchestrator's pop rule (pop on ring: a
``call.ringing``, a ``call.transferred`` to an agent or a ``call.answered``
for an agent whose screen does not show the call yet; forgotten on miss,
answer elsewhere, transfer away, abandon) says which (call, agent) must get a
pop because of that very event.  In practice the trigger is ``AgentCalled``
for queue calls and ``DialBegin`` for direct calls and blind transfers
(``AttendedTransfer`` for attended ones).  Latency = arrival - sent_at of the
trigger; the k-th pop of a (call, agent) is matched with its k-th trigger (a
queue that rings the same agent again after a miss pops it again).

Traffic is continuous at ``--rate`` with the simulator's default scenario
mix: a short warm-up (callers never used again, not reported), then
``--seconds`` of *cold* callers (numbers of the seeded customers never seen
before: the pop waits for the phone index and the SQL fetches and the call
history), then ``--seconds`` of *warm* callers (other numbers, whose cards
the service's own lookup runtime put in its cache before the traffic began;
not the cold callers again, because the orchestrator forgets a caller's
cached card when the call ends).  Each phase draws the same scenario
sequence; each number is called once.

Writes a JSON report to ``--out`` (default ``var/bench/pop-<agents>x<rate>.json``).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import random
import shutil
import sqlite3
import sys
import time
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECRET = "bench-pop-secret"
PASSWORD = "bench-pop-password"
CLK_TCK = os.sysconf("SC_CLK_TCK")
log = logging.getLogger("bench_pop")


def say(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, every thread included."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds spent by every process on the machine (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / CLK_TCK


# =============================================================== simulator role

class PopMirror:
    """The orchestrator's pop rule (default timing, pop on ring), on call events:
    which agents get a pop because of this event."""

    def __init__(self):
        self.popped: dict[str, set[str]] = {}

    def apply(self, event) -> list[str]:
        from telephony.events import CallAbandoned, CallAnswered, CallEnded, CallMissed, CallRinging, CallTransferred

        shown = self.popped.setdefault(event.call_id, set())
        new: list[str] = []

        def pop(agent: str | None) -> None:
            if agent and agent not in shown:
                shown.add(agent)
                new.append(agent)

        if isinstance(event, CallRinging):
            pop(event.agent)
        elif isinstance(event, CallMissed):
            shown.discard(event.agent)
        elif isinstance(event, CallAnswered):
            pop(event.agent)
            shown.intersection_update({event.agent})
        elif isinstance(event, CallTransferred):
            if event.from_agent:
                shown.discard(event.from_agent)
            pop(event.to_agent)
        elif isinstance(event, CallAbandoned):
            shown.clear()
        elif isinstance(event, CallEnded):
            self.popped.pop(event.call_id, None)
        return new


async def run_sim(args) -> int:
    from telephony.agents import AgentResolver
    from telephony.simulator import DEFAULT_MIX, PbxSimulator, call_center
    from telephony.tracker import CallTracker

    people, queues = call_center(args.agents, seed=args.seed)
    sim = PbxSimulator(agents=people, queues=queues, seed=args.seed, secret=SECRET)
    tracker = CallTracker(AgentResolver())
    tracked = frozenset(getattr(tracker, "_handlers", {})) or None  # events the tracker reads; None: all
    mirror = PopMirror()
    triggers: list[tuple] = []  # (call_id, agent, sent_at, AMI event, call event type)
    unpops: list[tuple] = []  # (call_id, agent, sent_at): the call leaves that agent's screen (missed, ended...)
    calls: dict[str, tuple[str, str]] = {}  # linkedid -> (phase, scenario)

    def hook(event, sent_at: float) -> None:
        name = event.get("Event")
        if tracked is not None and name not in tracked:
            return
        for call_event in tracker.feed({key: str(value) for key, value in event.items()}):
            shown = set(mirror.popped.get(call_event.call_id, ()))
            for agent in mirror.apply(call_event):
                triggers.append((call_event.call_id, agent, sent_at, name, call_event.type))
            for agent in shown - mirror.popped.get(call_event.call_id, set()):
                unpops.append((call_event.call_id, agent, sent_at))

    sim.on_event_sent(hook)
    port = await sim.start()
    say({"port": port, "agents": len(people), "queues": {q.name: len(q.members) for q in queues.values()}})

    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    command = json.loads(line)
    with open(command["plan"]) as f:
        phases = json.load(f)
    quit_ = asyncio.Event()

    async def commands() -> None:
        """Commands while the calls run too: ``dump`` (``since``: only the
        triggers from that index on, ``unpops_since``: the same for the
        unpops, for a parent reading as it goes) and
        ``quit`` (stops placing calls and drops those in flight)."""
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            command = json.loads(line)
            if command["cmd"] == "dump":
                since = command.get("since")
                with open(command["path"], "w") as f:
                    if since is None:
                        json.dump({"triggers": triggers, "calls": calls, "unpops": unpops}, f)
                    else:
                        json.dump({"triggers": triggers[since:], "since": since,
                                   "unpops": unpops[command.get("unpops_since", 0):]}, f)
                say({"dumped": command["path"], "triggers": len(triggers)})
            elif command["cmd"] == "quit":
                break
        quit_.set()

    commander = asyncio.create_task(commands())
    names = [name for name, weight in DEFAULT_MIX.items() if weight > 0]
    weights = [DEFAULT_MIX[name] for name in names]
    sim.set_speed(1.0)
    in_flight: set[asyncio.Future] = set()
    placed: Counter = Counter()
    arrival = sim.clock.now() + 0.05
    late = 0.0
    for phase in phases:
        name, rate, seconds, numbers = phase["name"], phase["rate"], phase["seconds"], phase["callers"]
        rng = random.Random(args.seed)  # every phase draws the same scenario sequence
        end = arrival + seconds
        say({"phase": name, "t": time.time()})
        i = 0
        while arrival < end and not quit_.is_set():
            delay = sim.clock.wall_delay(arrival)
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                late = max(late, -delay)
            scenario = rng.choices(names, weights)[0]
            number = numbers[i % len(numbers)]
            i += 1
            plan, start = sim.prepare_call(scenario, number, None, start=arrival, like_captures=False)
            calls[plan.linkedid] = (name, plan.scenario)
            done = sim.playback.schedule(start, plan.events)
            in_flight.add(done)
            done.add_done_callback(in_flight.discard)
            placed[name] += 1
            arrival += 1.0 / rate
    say({"placing_done": True, "t": time.time(), "placed": placed, "max_late": round(late, 4)})
    if in_flight:
        calls_over = asyncio.ensure_future(asyncio.gather(*list(in_flight), return_exceptions=True))
        await asyncio.wait([calls_over, asyncio.ensure_future(quit_.wait())], return_when=asyncio.FIRST_COMPLETED)
    if not quit_.is_set():
        say({"done": True, "t": time.time(), "events_sent": sim.events_sent, "triggers": len(triggers)})
    await quit_.wait()
    await commander
    await sim.stop()
    return 0


# =============================================================== service role

class Child:
    """A child process speaking JSON lines on stdin/stdout (stderr: ours)."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process):
        self.name, self.proc = name, proc

    @classmethod
    async def spawn(cls, name: str, *argv: str) -> "Child":
        proc = await asyncio.create_subprocess_exec(sys.executable, *argv, stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE, limit=2**24)
        return cls(name, proc)

    async def read(self, timeout: float | None = None) -> dict:
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"{self.name} exited (rc={await self.proc.wait()})")
        return json.loads(line)

    def send(self, obj: dict) -> None:
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())

    async def finish(self) -> None:
        try:
            self.send({"cmd": "quit"})
            await asyncio.wait_for(self.proc.wait(), 30)
        except Exception:
            self.proc.kill()
            await self.proc.wait()


async def seed_if_needed(folder: Path, customers: int) -> dict[str, str]:
    from adapters.demo import seed_demo

    dsns = {name: f"sqlite+aiosqlite:///{folder}/{name}.sqlite3" for name in ("sales", "billing", "support")}
    marker = folder / "seeded.json"
    if marker.is_file() and json.loads(marker.read_text()).get("customers") == customers:
        return dsns
    started = time.monotonic()
    await seed_demo(dsns, customers=customers, seed=1, force=True)
    marker.write_text(json.dumps({"customers": customers, "seconds": round(time.monotonic() - started, 1)}))
    print(f"seeded {customers:,} customers in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return dsns


def known_numbers(folder: Path, region: str) -> list[str]:
    """E.164 numbers of the seeded customers (every phone column of the three
    systems, normalized as the phone index does), shuffled with a fixed seed."""
    from customer_lookup.index import phone_keys

    cache = folder / "callers.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    raw: list[str] = []
    for system, sql in (("sales", "SELECT phone, mobile FROM customers"),
                        ("billing", "SELECT phone, phone_alt FROM accounts"),
                        ("support", "SELECT phone, phone_alt FROM contacts")):
        with sqlite3.connect(folder / f"{system}.sqlite3") as db:
            for row in db.execute(sql):
                raw.extend(p for p in row if p)
    numbers = sorted(set(phone_keys(raw, region)))
    random.Random(20261123).shuffle(numbers)
    cache.write_text(json.dumps(numbers))
    return numbers


class Stalls:
    """What blocks the service's event loop (``--diagnose``): callbacks that ran
    longer than ``threshold_ms`` (named by their task's coroutine) and garbage
    collector pauses, each with its wall time."""

    def __init__(self, threshold_ms: float):
        import gc
        from asyncio import events

        self.threshold = threshold_ms / 1000
        self.slow: list[tuple[float, float, str]] = []
        self.gc: list[tuple[float, float, int, int]] = []  # (wall, ms, generation, objects collected)
        original = events.Handle._run
        stalls = self

        def _run(handle):
            started = time.perf_counter()
            original(handle)
            spent = time.perf_counter() - started
            if spent > stalls.threshold:
                stalls.slow.append((time.time(), spent * 1000, stalls.describe(handle)))

        events.Handle._run = _run
        self._gc_started = 0.0

        def on_gc(phase: str, info: dict) -> None:
            if phase == "start":
                self._gc_started = time.perf_counter()
            else:
                self.gc.append((time.time(), (time.perf_counter() - self._gc_started) * 1000, info["generation"],
                                info.get("collected", 0)))

        gc.callbacks.append(on_gc)

    @staticmethod
    def describe(handle) -> str:
        callback = getattr(handle, "_callback", None)
        owner = getattr(callback, "__self__", None)
        if isinstance(owner, asyncio.Task):
            coro = owner.get_coro()
            return f"task {getattr(coro, '__qualname__', coro)}"
        return getattr(callback, "__qualname__", repr(callback))[:120]

    def window(self, t0: float, t1: float) -> dict:
        slow = [(ms, what) for t, ms, what in self.slow if t0 <= t < t1]
        by: dict[str, list[float]] = defaultdict(list)
        for ms, what in slow:
            by[what].append(ms)
        gcs = [(ms, gen, n) for t, ms, gen, n in self.gc if t0 <= t < t1]
        return {
            "slow_callbacks": {what: {"count": len(v), "total_ms": round(sum(v), 1), "max_ms": round(max(v), 1)}
                               for what, v in sorted(by.items(), key=lambda kv: -sum(kv[1]))[:15]},
            "gc": {f"gen{g}": {"count": sum(1 for _, x, _ in gcs if x == g),
                               "total_ms": round(sum(ms for ms, x, _ in gcs if x == g), 1),
                               "max_ms": round(max([ms for ms, x, _ in gcs if x == g] or [0]), 1),
                               "collected": sum(n for _, x, n in gcs if x == g)} for g in (0, 1, 2)},
        }


def time_lookup_parts(service, parts: dict) -> None:
    """``--diagnose``: time each part of a lookup (the whole lookup, each
    source's fetch, the call history query) by wrapping them on the running
    instances of this process; the service's code is not changed."""
    def timed(name: str, function):
        async def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                parts[name].append((time.time(), (time.perf_counter() - started) * 1000))
        return wrapper

    runtime = service.lookup

    class TimedRuntime:  # the runtime is a slotted dataclass: wrap it where the orchestrator holds it
        lookup = staticmethod(timed("lookup (whole)", runtime.lookup))

        def __getattr__(self, name):
            return getattr(runtime, name)

    service.orchestrator.lookup = TimedRuntime()
    inner = runtime.service
    for name, source in inner.sources.items():
        source.fetch = timed(f"fetch {name}", source.fetch)
    if inner.history is not None:
        inner.history = timed("history", inner.history)


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50": quantile(values, 0.50), "p95": quantile(values, 0.95),
            "p99": quantile(values, 0.99), "max": max(values) if values else float("nan")}


def parse_sent_at(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def analyse(sim_dump: dict, client_dump: dict, phases: list[str]) -> dict:
    calls = sim_dump["calls"]
    rings: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for call_id, agent, sent_at, ami_event, call_event in sim_dump["triggers"]:
        rings[(call_id, agent)].append((sent_at, ami_event, call_event))
    pops: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for pop in client_dump["pops"]:
        pops[(pop[0], pop[1])].append(pop)
    out: dict = {}
    per_phase: dict[str, dict] = {p: {"all": [], "first": [], "server": [], "wire": [], "expected": 0, "received": 0,
                                      "statuses": Counter(), "cached": 0, "missing": 0, "triggers": Counter(),
                                      "by_scenario": defaultdict(list), "per_call": defaultdict(list), "bytes": []}
                                  for p in phases}
    unmatched_pops = 0
    for key in set(rings) | set(pops):
        phase = calls.get(key[0], ["?", "?"])[0]
        scenario = calls.get(key[0], ["?", "?"])[1]
        r = sorted(rings.get(key, []))
        p = sorted(pops.get(key, []), key=lambda x: x[2])
        if phase not in per_phase:
            unmatched_pops += len(p)
            continue
        bucket = per_phase[phase]
        bucket["expected"] += len(r)
        for k, (sent_at, ami_event, call_event) in enumerate(r):
            bucket["triggers"][f"{ami_event}->{call_event}"] += 1
            if k >= len(p):
                continue
            pop = p[k]
            bucket["received"] += 1
            latency = (pop[2] - sent_at) * 1000
            bucket["all"].append(latency)
            bucket["by_scenario"][scenario].append(latency)
            bucket["per_call"][key[0]].append((sent_at, latency))
            server_sent = parse_sent_at(pop[3])
            if server_sent is not None:
                bucket["server"].append((server_sent - sent_at) * 1000)
                bucket["wire"].append((pop[2] - server_sent) * 1000)
            bucket["statuses"][pop[4]] += 1
            bucket["cached"] += pop[5]
            bucket["missing"] += pop[6] > 0
            bucket["bytes"].append(pop[7])
        unmatched_pops += max(0, len(p) - len(r))
    for phase, bucket in per_phase.items():
        # the first pop of each call: the one that waited for the lookup
        firsts = [min(pairs)[1] for pairs in bucket["per_call"].values()]
        out[phase] = {
            "expected": bucket["expected"], "received": bucket["received"],
            "latency_ms": summary(bucket["all"]), "first_pop_of_call_ms": summary(firsts),
            "server_ms": summary(bucket["server"]), "delivery_ms": summary(bucket["wire"]),
            "card_status": dict(bucket["statuses"]), "cards_from_cache": bucket["cached"],
            "cards_missing_a_source": bucket["missing"], "triggers": dict(bucket["triggers"]),
            "by_scenario": {s: summary(v) for s, v in sorted(bucket["by_scenario"].items())},
            "pop_bytes_p50": quantile(bucket["bytes"], 0.5),
        }
    out["unmatched_pops"] = unmatched_pops
    return out


def service_settings(base, ami_port: int, dsns: dict[str, str], run: Path, fresh_seconds: float | None = None):
    """The service's settings in a bench: defaults apart from the simulator's
    AMI port, the seeded demo sources, an interaction log and spill file in
    ``run`` and an ephemeral web port."""
    from adapters.demo import demo_sources

    settings = replace(
        base,
        ami=replace(base.ami, host="127.0.0.1", port=ami_port, secret=SECRET),
        sources=demo_sources(dsns),
        storage=replace(base.storage, dsn=f"sqlite+aiosqlite:///{run}/interactions.sqlite3"),
        interactions=replace(base.interactions, spill_path=str(run / "spill.jsonl")),
        web=replace(base.web, host="127.0.0.1", port=0),
    )
    if fresh_seconds is not None:
        settings = replace(settings, lookup=replace(settings.lookup, cache_fresh_seconds=fresh_seconds))
    return settings


async def open_sessions(service, url: str, count: int) -> list[tuple[str, str]]:
    """Agents 2001.. as users with open sessions: [(agent_id, token), ...].

    Accounts: scrypt at the production cost is ~50 ms a user, so the agents
    are created through a second store on the same engine with a cheap
    scrypt cost, and their sessions opened directly in the service's store;
    one agent logs in through the real HTTP API as a check of that path."""
    import aiohttp

    from screenpop.auth.store import AccountStore

    cheap = AccountStore(service.interactions.engine, scrypt_n=2**4)
    agent_ids = [str(2001 + n) for n in range(count)]
    users = []
    for i in range(0, len(agent_ids), 200):
        users += await asyncio.gather(*(cheap.create_user(f"agent{a}", PASSWORD, "agent", a, f"Agent {a}")
                                        for a in agent_ids[i:i + 200]))
    tokens = []
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/api/v1/session", json={"username": users[0].username, "password": PASSWORD,
                                                           "return_token": True}) as r:
            assert r.status == 200, await r.text()
            tokens.append((users[0].agent_id, (await r.json())["token"]))
    for user in users[1:]:
        token, _ = await service.accounts.create_session(user)
        tokens.append((user.agent_id, token))
    return tokens


async def run_service(args) -> int:
    from screenpop.config import load_settings
    from screenpop.service import ScreenpopService

    folder = Path(args.dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    dsns = await seed_if_needed(folder, args.customers)
    base = load_settings(None, env={})
    numbers = known_numbers(folder, base.lookup.default_region)
    warmup_n = max(1, int(args.rate * args.warmup))
    cold_n = int(args.rate * args.seconds) + 1
    if warmup_n + 2 * cold_n > len(numbers):
        raise SystemExit(f"only {len(numbers)} known numbers; need {warmup_n + 2 * cold_n} (seed more --customers)")
    run = folder / "run"
    shutil.rmtree(run, ignore_errors=True)  # our own scratch folder: the last run's interaction log and dumps
    run.mkdir()
    plan_phases = [{"name": "warmup", "rate": args.rate, "seconds": args.warmup, "callers": numbers[:warmup_n]},
                   {"name": "cold", "rate": args.rate, "seconds": args.seconds,
                    "callers": numbers[warmup_n:warmup_n + cold_n]}]
    if not args.cold_only:
        plan_phases.append({"name": "warm", "rate": args.rate, "seconds": args.seconds,
                            "callers": numbers[warmup_n + cold_n:warmup_n + 2 * cold_n]})
    (run / "plan.json").write_text(json.dumps(plan_phases))

    here = str(Path(__file__).resolve())
    sim = await Child.spawn("simulator", here, "--role", "sim", "--agents", str(args.agents), "--seed", str(args.seed))
    hello = await sim.read(120)
    print(f"simulator pid={sim.proc.pid} port={hello['port']} queues={hello['queues']}", file=sys.stderr)

    settings = service_settings(base, hello["port"], dsns, run, args.fresh_seconds)
    service = ScreenpopService(settings)
    clients = None
    report: dict = {"args": vars(args), "pid": os.getpid()}
    try:
        started = time.monotonic()
        url = await service.start()
        await asyncio.wait_for(service.connection.connected_event.wait(), 30)
        print(f"service up {url} in {time.monotonic() - started:.1f} s (index built)", file=sys.stderr)

        # Accounts: see open_sessions (cheap scrypt, one login over HTTP).
        started = time.monotonic()
        tokens = await open_sessions(service, url, args.agents)
        (run / "tokens.json").write_text(json.dumps(tokens))
        print(f"{len(tokens)} agents and sessions in {time.monotonic() - started:.1f} s", file=sys.stderr)

        clients = await Child.spawn("clients", str(ROOT / "bench" / "popclients.py"), "--url",
                                    url.replace("http", "ws"), "--tokens", str(run / "tokens.json"))
        ready = await clients.read(600)
        print(f"clients pid={clients.proc.pid}: {ready}", file=sys.stderr)
        report["clients_ready"] = ready
        if ready["ready"] != args.agents:
            raise SystemExit(f"only {ready['ready']} of {args.agents} sockets opened")
        if not args.cold_only:
            # Warm callers: their cards are put in the service's cache by its own
            # lookup runtime before any traffic.  (Calling them in an earlier
            # phase would not do: the orchestrator forgets a caller's cached card
            # when the call ends, so the history is fresh for the next lookup.)
            # A few at a time, once the connect storm has settled: the first
            # lookups right after 2,000 handshakes missed the 150 ms deadline
            # often enough to open breakers, and half the warm cards were then
            # cached with a source missing.  Cards that still come out with a
            # gap are looked up again (up to twice) once the breakers closed:
            # the warm phase is about complete cached cards.
            await asyncio.sleep(2.0)
            started = time.monotonic()
            warm = plan_phases[-1]["callers"]
            inner = service.lookup.service

            async def prime(numbers: list[str]) -> list[str]:
                gaps = []
                for i in range(0, len(numbers), 4):
                    batch = numbers[i:i + 4]
                    for number, card in zip(batch, await asyncio.gather(*(inner.lookup(n, use_cache=False) for n in batch))):
                        if card.missing_sources:
                            gaps.append(number)
                return gaps

            gaps = await prime(warm)
            report["warm_cards_with_a_gap_first_pass"] = len(gaps)
            for _ in range(2):
                if not gaps:
                    break
                while any(b.state == "open" for b in inner.breakers.values()):
                    await asyncio.sleep(0.5)
                gaps = await prime(gaps)
            from customer_lookup.phones import normalize

            primed: Counter = Counter()
            for number in warm:  # what the cache now holds (read directly: a hit may start a refresh)
                entry = await inner.cache.get(normalize(number, inner.default_region).key)
                card = entry.card if entry is not None else None
                primed["not cached" if card is None else card.status + (" (missing a source)" if card.missing_sources else "")] += 1
            report["warm_cards_primed"] = dict(primed)
            print(f"{len(warm)} warm callers' cards cached in {time.monotonic() - started:.1f} s: {dict(primed)} "
                  f"(gaps in the first pass: {report['warm_cards_with_a_gap_first_pass']})", file=sys.stderr)
            if any("missing" in k for k in primed):
                await asyncio.sleep(16)  # let any open circuit breaker close before the traffic
        await asyncio.sleep(2.0)  # let the connect storm settle
        # The 2,000 sockets grew the service's memory by more than its GC tuning's
        # thaw threshold: it thaws once at its next tick.  In a call center that
        # happens as the shift logs in, long before the traffic we time; here it
        # is done now, so the one pause is not inside a phase.
        service.gc_tuning.settle()
        report["gc_settle"] = {"thaws": service.gc_tuning.stats.thaws, "pause_ms": round(service.gc_tuning.stats.last_thaw_ms, 1),
                               "frozen": service.gc_tuning.stats.frozen}
        print(f"gc settled: {report['gc_settle']}", file=sys.stderr)

        # The service's event loop lag, sampled every 10 ms, by phase.
        lags: list[tuple[float, float]] = []

        async def lag_monitor():
            while True:
                before = time.perf_counter()
                await asyncio.sleep(0.01)
                lags.append((time.time(), (time.perf_counter() - before - 0.01) * 1000))

        monitor = asyncio.create_task(lag_monitor())
        stalls = Stalls(args.diagnose) if args.diagnose else None
        parts: dict[str, list[tuple[float, float]]] = defaultdict(list)  # part of a lookup -> (wall, ms)
        if args.diagnose:
            time_lookup_parts(service, parts)
        pids = {"service": os.getpid(), "simulator": sim.proc.pid, "clients": clients.proc.pid}
        marks: list[tuple[str, float, dict]] = []  # (phase, wall, cpu by process)

        def mark(name: str) -> None:
            cpu = {k: cpu_seconds(pid) for k, pid in pids.items()}
            cpu["machine"] = machine_busy_seconds()
            if args.diagnose:
                import gc

                from collections import Counter

                objects = gc.get_objects()
                top = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in objects).most_common(12)
                tracked, objects = len(objects), None
                if name == "end":  # what only the cyclic GC can free: garbage in reference cycles, by type
                    gc.unfreeze()
                    gc.set_debug(gc.DEBUG_SAVEALL)
                    gc.collect()
                    cycles = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage).most_common(15)
                    print(f"cyclic garbage at the end: {len(gc.garbage):,} objects; {cycles}", file=sys.stderr)
                    gc.garbage.clear()
                    gc.set_debug(0)
                print(f"{name}: gc tuning {service.gc_tuning.stats}", file=sys.stderr)
                print(f"{name}: gc tracked objects {tracked:,}, frozen {gc.get_freeze_count():,};"
                      f" most: {', '.join(f'{t} {n:,}' for t, n in top)}", file=sys.stderr)
            marks.append((name, time.time(), cpu))

        profiler = None
        sim.send({"cmd": "run", "plan": str(run / "plan.json")})
        while True:
            message = await sim.read()
            if "phase" in message:
                mark(message["phase"])
                print(f"phase {message['phase']} started", file=sys.stderr)
                if args.profile:
                    if profiler is not None:
                        profiler.disable()
                        profiler.dump_stats(str(run / f"profile-{marks[-2][0]}.pstats"))
                        profiler = None
                    if message["phase"] == args.profile:
                        import cProfile

                        profiler = cProfile.Profile()
                        profiler.enable()
            elif "placing_done" in message:
                mark("tail")
                if profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(str(run / f"profile-{marks[-2][0]}.pstats"))
                    profiler = None
                print(f"all calls placed: {message}", file=sys.stderr)
            elif "done" in message:
                mark("end")
                print(f"all calls ended: {message}", file=sys.stderr)
                break
        await asyncio.sleep(1.0)  # the last pops on the wire
        monitor.cancel()
        clients.send({"cmd": "dump", "path": str(run / "pops.json")})
        await clients.read(120)
        sim.send({"cmd": "dump", "path": str(run / "triggers.json")})
        await sim.read(120)
        sim_dump = json.loads((run / "triggers.json").read_text())
        client_dump = json.loads((run / "pops.json").read_text())

        phases = [p["name"] for p in plan_phases]
        result = analyse(sim_dump, client_dump, phases)
        for (name, t0, cpu0), (_, t1, cpu1) in zip(marks, marks[1:]):
            if name not in result:
                result[name] = {}
            wall = t1 - t0
            result[name]["window_seconds"] = round(wall, 2)
            result[name]["cpu_percent"] = {k: round(100 * (cpu1[k] - cpu0[k]) / wall, 1) for k in cpu0}
            # what other people's processes took from the 2 cores meanwhile
            result[name]["cpu_percent"]["others"] = round(
                result[name]["cpu_percent"]["machine"] - sum(result[name]["cpu_percent"][k] for k in pids), 1)
            window = [lag for t, lag in lags if t0 <= t < t1]
            result[name]["loop_lag_ms"] = summary(window)
            if stalls is not None:
                result[name]["stalls"] = stalls.window(t0, t1)
                result[name]["lookup_parts_ms"] = {part: summary([ms for t, ms in v if t0 <= t < t1])
                                                   for part, v in sorted(parts.items())}
        result["other_messages"] = client_dump["other"]
        result["sockets_closed_early"] = client_dump["closed"]
        report["result"] = result
    finally:
        if clients is not None:
            await clients.finish()
        await sim.finish()
        await service.stop()

    out = Path(args.out or ROOT / "var" / "bench" / f"pop-{args.agents}x{args.rate:g}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str))
    print_report(report["result"], [p["name"] for p in plan_phases])
    print(f"\nreport: {out}")
    return 0


def print_report(result: dict, phases: list[str]) -> None:
    def fmt(s: dict) -> str:
        return f"p50 {s['p50']:6.1f}  p95 {s['p95']:6.1f}  p99 {s['p99']:6.1f}  max {s['max']:7.1f} ms  (n={s['n']})"

    for phase in phases:
        r = result.get(phase, {})
        if "latency_ms" not in r:
            continue
        print(f"\n== {phase}: pops expected {r['expected']}, received {r['received']}")
        print(f"  AMI event -> client       {fmt(r['latency_ms'])}")
        print(f"  first pop of each call    {fmt(r['first_pop_of_call_ms'])}")
        print(f"  AMI event -> server send  {fmt(r['server_ms'])}")
        print(f"  server send -> client     {fmt(r['delivery_ms'])}")
        print(f"  cpu %: {r.get('cpu_percent')}  loop lag: {fmt(r['loop_lag_ms']) if 'loop_lag_ms' in r else '-'}")
        print(f"  cards: {r['card_status']} from cache {r['cards_from_cache']}, missing a source {r['cards_missing_a_source']}")
        print(f"  triggers: {r['triggers']}")
        for scenario, s in r["by_scenario"].items():
            print(f"    {scenario:20s} {fmt(s)}")
        for part, v in r.get("lookup_parts_ms", {}).items():
            print(f"    lookup part {part:16s} {fmt(v)}")
        if "stalls" in r:
            print(f"  gc: {r['stalls']['gc']}")
            for what, v in r["stalls"]["slow_callbacks"].items():
                print(f"    slow: {v['count']:5d} x, {v['total_ms']:8.1f} ms total, max {v['max_ms']:6.1f} ms  {what}")
    print(f"\nunmatched pops: {result.get('unmatched_pops')}  other messages: {result.get('other_messages')}")


def main() -> int:
    parser = argparse.ArgumentParser(description="pop latency: AMI event sent -> pop frame at the agent's WebSocket")
    parser.add_argument("--role", choices=["service", "sim"], default="service", help=argparse.SUPPRESS)
    parser.add_argument("--agents", type=int, default=2000, help="agents connected, one socket each (default 2000)")
    parser.add_argument("--rate", type=float, default=50.0, help="new calls per second (default 50)")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of cold callers, then of warm ones (default 60)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of throw-away traffic first (default 5)")
    parser.add_argument("--customers", type=int, default=20_000, help="customers seeded in the demo databases")
    parser.add_argument("--cold-only", action="store_true", help="no warm phase")
    parser.add_argument("--fresh-seconds", type=float, default=None,
                        help="override [lookup] cache_fresh_seconds (default: the service's default)")
    parser.add_argument("--profile", choices=["cold", "warm"], help="cProfile the service's thread in this phase")
    parser.add_argument("--diagnose", type=float, metavar="MS",
                        help="record event-loop callbacks longer than MS and GC pauses in the service")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", default=str(ROOT / "var" / "bench" / "pop"), help="demo databases and run files")
    parser.add_argument("--out", help="JSON report path")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.role == "sim":
        return asyncio.run(run_sim(args))
    return asyncio.run(run_service(args))


if __name__ == "__main__":
    sys.exit(main())
