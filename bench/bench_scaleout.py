"""Scale-out: pop latency and throughput with one, two and three nodes at
rising call rates (issue 6 item 6).

    .venv/bin/python bench/bench_scaleout.py --nodes 1 2 3 --rates 10 25 50 --agents 1500 --seconds 20

For each node count: a private redis-server (restarted empty per run), a
scratch PostgreSQL database (interaction log, users, sessions), N real
``screenpop serve`` processes sharing them (one ingests AMI and publishes on
Redis Streams; every node delivers to the sockets it holds), the PBX
simulator of ``bench_pop.py --role sim`` (``--agents`` agents in three
ring-all queues), and one ``bench/popclients.py`` process per node holding
that node's share of the agents' sockets (round robin).  The simulator
places calls phase after phase at each rate; latency is measured exactly as
in ``bench_pop.py`` (AMI trigger event's ``sent_at`` in the simulator to the
pop frame's arrival at the ``websockets`` client), and CPU per process is
read from /proc for each phase.  Every caller is a seeded customer looked up
cold (Redis, and so the card cache, start empty for each node count).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_pop  # noqa: E402  (bench/ is not a package: its scripts import each other by path)
from bench_pop import ROOT, SECRET, PASSWORD, Child, analyse, cpu_seconds, known_numbers, machine_busy_seconds, seed_if_needed  # noqa: E402


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)



async def pops_settled(metrics_url: str, quiet: float = 3.0, limit: float = 300.0) -> float:
    """Wait until the ingester's ``screenpop_pops_sent_total`` stops moving.

    The simulator is done when it has *sent* its last event; an ingester with
    a backlog is still working through it, and tearing down 2 s later
    counted its late pops as lost (an undercount at the highest rates)."""
    import aiohttp

    last, still_since, deadline = -1.0, time.monotonic(), time.monotonic() + limit
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            async with http.get(metrics_url) as response:
                text = await response.text()
            sent = next((float(line.split()[-1]) for line in text.splitlines() if line.startswith("screenpop_pops_sent_total ")), 0.0)
            if sent != last:
                last, still_since = sent, time.monotonic()
            elif time.monotonic() - still_since >= quiet:
                return sent
            await asyncio.sleep(0.5)
    return last

async def agents_and_tokens(dsn: str, count: int) -> list[tuple[str, str]]:
    """The simulator's agents as users with open sessions, straight in the store
    (scrypt at a cheap cost: only the pop path is measured)."""
    from screenpop.auth.store import AccountStore
    from screenpop.db import create_engine

    engine = create_engine(dsn)
    try:
        store = AccountStore(engine, scrypt_n=2**4)
        ids = [str(2001 + n) for n in range(count)]
        users = []
        for i in range(0, count, 200):
            users += await asyncio.gather(*(store.create_user(f"agent{a}", PASSWORD, "agent", a, f"Agent {a}") for a in ids[i:i + 200]))
        return [(user.agent_id, (await store.create_session(user))[0]) for user in users]
    finally:
        await engine.dispose()


async def one_run(args, nodes: int, numbers: list[str], dsns: dict[str, str], redis) -> list[dict]:
    from adapters.demo import demo_sources
    from screenpop.config import load_settings
    from screenpop.interactions.migrate import migrate
    from tests.cluster.nodes import Cluster, write_config
    from tests.pg import scratch_database

    run = Path(args.dir).resolve() / f"nodes{nodes}"
    run.mkdir(parents=True, exist_ok=True)
    redis.stop()
    redis.start()  # empty: no index, no cards, no lease
    async with scratch_database("bench_scaleout") as dsn:
        await migrate(dsn)
        tokens = await agents_and_tokens(dsn, args.agents)
        sim = await Child.spawn("simulator", str(HERE / "bench_pop.py"), "--role", "sim", "--agents", str(args.agents),
                                "--seed", str(args.seed))
        hello = await sim.read(120)
        defaults = load_settings(None, env={})
        config = write_config(run / "node.toml", ami_port=hello["port"], storage_dsn=dsn, redis_url=redis.url,
                              prefix="screenpop:", sources=demo_sources(dsns), lease_seconds=5.0,
                              overrides={"lookup": {"deadline_ms": defaults.lookup.deadline_ms},
                                         "agents": {"patterns": defaults.agents.patterns},
                                         "auth": {"socket_recheck_seconds": defaults.auth.socket_recheck_seconds},
                                         "ami": {"ping_interval": defaults.ami.ping_interval,
                                                 "ping_timeout": defaults.ami.ping_timeout}})
        cluster = Cluster(config, run, secret=SECRET)
        clients: list[Child] = []
        try:
            started = time.monotonic()
            for k in range(nodes):
                cluster.start(f"node-{k + 1}")
            await cluster.wait_up(*cluster.nodes.values(), timeout=180)
            ingester = await cluster.ingester(timeout=60)
            say(f"{nodes} node(s) up in {time.monotonic() - started:.0f} s, ingester {ingester.name}")
            members = list(cluster.nodes.values())
            for k, node in enumerate(members):
                share = tokens[k::nodes]
                path = run / f"tokens-{node.name}.json"
                path.write_text(json.dumps(share))
                clients.append(await Child.spawn(f"clients-{node.name}", str(HERE / "popclients.py"), "--url",
                                                 f"ws://127.0.0.1:{node.port}", "--tokens", str(path)))
            for child in clients:
                ready = await child.read(600)
                if ready["failed"]:
                    raise SystemExit(f"{child.name}: {ready}")
            say(f"{args.agents} sockets open over {nodes} node(s)")
            await asyncio.sleep(3.0)  # let the connect storm settle

            phases, offset = [], 0
            for rate in args.rates:
                count = int(rate * args.seconds) + 1
                phases.append({"name": f"{rate:g}", "rate": rate, "seconds": args.seconds,
                               "callers": numbers[offset:offset + count]})
                offset += count
            (run / "plan.json").write_text(json.dumps(phases))
            pids = {node.name: node.process.pid for node in members}
            pids.update({"simulator": sim.proc.pid}, **{c.name: c.proc.pid for c in clients})
            marks: list[tuple[str, float, dict]] = []

            def mark(name: str) -> None:
                cpu = {k: cpu_seconds(pid) for k, pid in pids.items()}
                cpu["machine"] = machine_busy_seconds()
                marks.append((name, time.monotonic(), cpu))

            sim.send({"plan": str(run / "plan.json")})
            while True:
                line = await sim.read(args.seconds * len(phases) + 300)
                if "phase" in line:
                    mark(line["phase"])
                    say(f"  {nodes} node(s): {line['phase']} calls/s for {args.seconds:g} s")
                elif "placing_done" in line:
                    mark("end")
                elif "done" in line:
                    break
            sent = await pops_settled(f"{ingester.url}/metrics")
            say(f"  ingester done: {sent:,.0f} pops sent")
            await asyncio.sleep(2.0)  # the last pops travel the bus
            sim.send({"cmd": "dump", "path": str(run / "sim.json")})
            await sim.read(60)
            merged = {"pops": []}
            for child in clients:
                path = run / f"{child.name}.json"
                child.send({"cmd": "dump", "path": str(path)})
                await child.read(120)
                merged["pops"] += json.loads(path.read_text())["pops"]
            result = analyse(json.loads((run / "sim.json").read_text()), merged, [p["name"] for p in phases])
            rows = []
            for (name, t0, cpu0), (_, t1, cpu1) in zip(marks, marks[1:]):
                if name == "warmup" or name not in result:
                    continue
                wall = t1 - t0
                pct = {k: 100 * (cpu1[k] - cpu0[k]) / wall for k in cpu0}
                nodes_cpu = {n.name: pct[n.name] for n in members}
                ours = sum(pct.values()) - pct["machine"]
                rows.append({
                    "nodes": nodes, "rate": name, **{k: result[name][k] for k in ("expected", "received")},
                    "latency_ms": result[name]["latency_ms"], "ingester_cpu": nodes_cpu[ingester.name],
                    "other_nodes_cpu": sum(v for k, v in nodes_cpu.items() if k != ingester.name),
                    "simulator_cpu": pct["simulator"], "clients_cpu": sum(pct[c.name] for c in clients),
                    "machine_cpu": pct["machine"], "others_cpu": pct["machine"] - ours,
                })
            return rows
        finally:
            for child in clients:
                await child.finish()
            await sim.finish()
            await cluster.stop()


def table(rows: list[dict]) -> str:
    out = ["| nodes | calls/s | pops expected / received | p50 | p95 | p99 | CPU % ingester / other nodes / simulator / clients / Redis, PostgreSQL and the rest |",
           "|------:|--------:|-------------------------:|----:|----:|----:|------------------------------------------------------------------|"]
    for r in rows:
        lat = r["latency_ms"]
        out.append(f"| {r['nodes']} | {r['rate']} | {r['expected']:,} / {r['received']:,} | {lat.get('p50', 0):.1f} ms | "
                   f"{lat.get('p95', 0):.1f} ms | {lat.get('p99', 0):.1f} ms | {r['ingester_cpu']:.0f} / {r['other_nodes_cpu']:.0f} / "
                   f"{r['simulator_cpu']:.0f} / {r['clients_cpu']:.0f} / {r['others_cpu']:.0f} |")
    return "\n".join(out)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--rates", type=float, nargs="+", default=[10, 25, 50])
    parser.add_argument("--agents", type=int, default=1500)
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per rate")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", default=str(ROOT / "var" / "bench" / "scaleout"))
    args = parser.parse_args()
    from tests.cluster.nodes import PrivateRedis

    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    dsns = await seed_if_needed(folder, args.customers)
    numbers = known_numbers(folder, "ES")
    if sum(int(r * args.seconds) + 1 for r in args.rates) > len(numbers):
        raise SystemExit("not enough seeded callers: raise --customers")
    redis = PrivateRedis(folder)
    rows: list[dict] = []
    try:
        for nodes in args.nodes:
            rows += await one_run(args, nodes, numbers, dsns, redis)
            say(table(rows))
    finally:
        redis.stop()
    (folder / "result.json").write_text(json.dumps(rows, indent=1))
    print(table(rows))
    return 0


if __name__ == "__main__":
    bench_pop.logging.basicConfig(level="WARNING")
    sys.exit(asyncio.run(main()))
