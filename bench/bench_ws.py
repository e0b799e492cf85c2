"""Memory per idle agent socket and pop fan-out time of the /ws hub.

The hub runs in a child process of its own (aiohttp, the real ``agent_ui.ws``
handler and ``Hub``, heartbeat on, compression off), so its RSS is measured
alone; this process opens the sockets with the ``websockets`` package, each
authenticated as a different agent, and waits for every ``hello`` (by then
the hub has registered the socket and replayed its open pops).

Per N: RSS of the server after a warm-up of 50 sockets, then with N idle
sockets, (RSS delta) / N; then rounds of fan-out: the server offers one pop
(a pop of about 1.8 KB) to every agent, either a pop of its own per agent (N
encodes, like N calls at once) or one message to all (``broadcast``, one
encode); timed are the offers themselves (the cost
the orchestrator pays, a json.dumps per message plus a queue append per
socket) and the time until the last client has read its pop.

    .venv/bin/python bench/bench_ws.py --sockets 2000 10000
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CARD = {
    "status": "known",
    "caller_number": "+34912345678",
    "e164": "+34912345678",
    "persons": [
        {
            "name": "José García Fernández",
            "company": "Acme Ibérica S.L.",
            "email": "jose.garcia@acme.example",
            "vip": True,
            "flags": ["overdue"],
            "keys": {"sales": ["C-1042"], "billing": ["AC-17"], "support": ["U-88"]},
            "sales": {"lifetime_value": "18250.00", "orders": [{"id": f"SO-{i}", "total": "412.50", "date": "2026-10-0{i}"} for i in range(1, 6)]},
            "billing": {"account": "AC-17", "balance": "-42.10", "currency": "EUR", "overdue_amount": "42.10", "balance_as_of": "2026-11-22T08:00:00Z"},
            "support": {"open_tickets": [{"id": "T-901", "subject": "Invoice shows the wrong VAT number", "status": "open"}], "last_contact": "2026-11-20"},
            "extra": {},
            "history": [{"call_id": f"17000000{i}.1", "ts": "2026-11-1{i}T10:00:00Z", "agent": "1001", "disposition": "resolved"} for i in range(3)],
        }
    ],
    "sources": {name: {"status": "ok", "detail": None, "elapsed_ms": 12.5, "records": 1} for name in ("sales", "billing", "support")},
    "generated_at": "2026-11-23T10:00:00.000000Z",
    "cached": False,
    "number_kind": "national",
    "missing_sources": [],
}


def raise_fd_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


# ------------------------------------------------------------------ the server (child process)


@dataclass(frozen=True, slots=True)
class BenchUser:
    username: str
    role: str
    agent_id: str


async def serve(heartbeat: float, queue_size: int) -> None:
    from aiohttp import web

    from agent_ui import protocol, ws
    from agent_ui.connections import SocketSettings
    from agent_ui.hub import Hub

    hub = Hub(settings=SocketSettings(heartbeat=heartbeat, queue_size=queue_size))

    async def authenticate(request: web.Request) -> BenchUser | None:
        """Stand-in for the session check: ``?token=agent-N`` is agent N."""
        token = request.query.get("token", "")
        return BenchUser(token, "agent", token.removeprefix("agent-")) if token.startswith("agent-") else None

    async def fan_out(request: web.Request) -> web.Response:
        agents = sorted(hub.connected_agents())
        caller = {"number": "912345678", "name": None, "e164": "+34912345678"}
        started = time.perf_counter()
        if request.query.get("mode") == "broadcast":  # one message, encoded once, offered to every socket
            sent = hub.broadcast(protocol.Pop("bench-all", "sales", caller, CARD))
        else:  # a pop of its own per agent: one encode per agent, as for N simultaneous calls
            sent = sum(hub.send_to_agent(agent, protocol.Pop("bench-" + agent, "sales", caller, CARD)) for agent in agents)
        elapsed = time.perf_counter() - started
        return web.json_response({"agents": len(agents), "sent": sent, "seconds": elapsed})

    async def stats(request: web.Request) -> web.Response:
        gc.collect()
        return web.json_response({"sockets": len(hub), "rss": rss_bytes(os.getpid())})

    app = web.Application()
    ws.setup(app, hub, authenticate)
    app.router.add_post("/bench/fanout", fan_out)
    app.router.add_get("/bench/stats", stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


# ------------------------------------------------------------------ the clients (this process)


class Clients:
    def __init__(self, port: int):
        self.port = port
        self.sockets: list = []
        self.received: list[asyncio.Future] = []

    async def open(self, first: int, count: int, concurrency: int = 200) -> None:
        from websockets.asyncio.client import connect

        gate = asyncio.Semaphore(concurrency)

        async def one(n: int) -> None:
            async with gate:
                client = await connect(f"ws://127.0.0.1:{self.port}/ws?token=agent-{n}", open_timeout=60, compression=None, max_queue=4)
                hello = json.loads(await client.recv())
                assert hello["type"] == "hello", hello
                self.sockets.append(client)

        await asyncio.gather(*(one(n) for n in range(first, first + count)))

    async def fan_out_round(self, session, mode: str, timeout: float = 120.0) -> dict:
        """Every client waits for one pop; returns the server's offer time and the time until the last read."""
        loop = asyncio.get_running_loop()
        done: list[float] = []

        async def wait_pop(client) -> None:
            msg = json.loads(await client.recv())
            assert msg["type"] == "pop", msg
            done.append(loop.time())

        waiters = [asyncio.create_task(wait_pop(c)) for c in self.sockets]
        await asyncio.sleep(0.2)  # every waiter is parked in recv()
        started = loop.time()
        async with session.post(f"http://127.0.0.1:{self.port}/bench/fanout?mode={mode}") as resp:
            server = await resp.json()
        await asyncio.wait_for(asyncio.gather(*waiters), timeout)
        return {"mode": mode, "offers_s": server["seconds"], "sent": server["sent"], "last_read_s": max(done) - started, "median_read_s": statistics.median(done) - started}

    async def close(self) -> None:
        for client in self.sockets:
            client.transport.abort()
        self.sockets.clear()


async def measure(n: int, rounds: int, heartbeat: float, queue_size: int) -> dict:
    import aiohttp

    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve", "--heartbeat", str(heartbeat), "--queue-size", str(queue_size), stdout=asyncio.subprocess.PIPE
    )
    try:
        port = int(await asyncio.wait_for(proc.stdout.readline(), 30))
        clients = Clients(port)
        async with aiohttp.ClientSession() as session:

            async def server_stats() -> dict:
                async with session.get(f"http://127.0.0.1:{port}/bench/stats") as resp:
                    return await resp.json()

            await clients.open(0, 50)  # warm-up: imports, caches, first allocations
            await clients.close()
            await asyncio.sleep(1.0)
            before = await server_stats()
            started = time.perf_counter()
            await clients.open(0, n)
            open_s = time.perf_counter() - started
            await asyncio.sleep(2.0)  # idle: heartbeats running, nothing to send
            after = await server_stats()
            assert after["sockets"] == n, after
            fanouts = [await clients.fan_out_round(session, mode) for mode in ("per-agent", "broadcast") for _ in range(rounds)]
            await clients.close()
    finally:
        proc.terminate()
        await proc.wait()
    return {
        "sockets": n,
        "open_s": open_s,
        "rss_before": before["rss"],
        "rss_after": after["rss"],
        "per_socket": (after["rss"] - before["rss"]) / n,
        "fanouts": fanouts,
    }


def report(r: dict) -> None:
    mib = 1024 * 1024
    print(
        f"sockets={r['sockets']} opened_in={r['open_s']:.1f}s rss_before={r['rss_before'] / mib:.1f}MiB "
        f"rss_after={r['rss_after'] / mib:.1f}MiB per_socket={r['per_socket'] / 1024:.1f}KiB "
        f"projected_10k={r['per_socket'] * 10_000 / mib + r['rss_before'] / mib:.0f}MiB"
    )
    for f in r["fanouts"]:
        print(
            f"  fan-out {f['mode']:>9}: pops_offered={f['sent']} offer_loop={f['offers_s'] * 1000:.1f}ms "
            f"({f['offers_s'] / max(1, f['sent']) * 1e6:.1f}us/socket) median_read={f['median_read_s'] * 1000:.0f}ms last_read={f['last_read_s'] * 1000:.0f}ms"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, nargs="+", default=[2000, 10_000], help="idle sockets per run (one fresh server each)")
    parser.add_argument("--rounds", type=int, default=3, help="fan-out rounds per run")
    parser.add_argument("--heartbeat", type=float, default=20.0)
    parser.add_argument("--queue-size", type=int, default=256)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    limit = raise_fd_limit(max(args.sockets) + 1000)
    if args.serve:
        asyncio.run(serve(args.heartbeat, args.queue_size))
        return 0
    print(f"python={sys.version.split()[0]} cpus={os.cpu_count()} fd_limit={limit} heartbeat={args.heartbeat}s queue_size={args.queue_size}")
    for n in args.sockets:
        if n + 200 > limit:
            print(f"sockets={n} skipped: the file-descriptor limit is {limit}")
            continue
        report(asyncio.run(measure(n, args.rounds, args.heartbeat, args.queue_size)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
