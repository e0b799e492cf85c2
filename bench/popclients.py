"""The agents' side of bench_pop.py: thousands of WebSocket clients in their own process.

Started by ``bench/bench_pop.py``; not meant to be run by hand.  Opens one
``websockets`` connection per agent (an implementation independent of the
server's aiohttp), each authenticated by ``?token=``, waits for every
``hello``, then notes ``time.time()`` the moment each frame is handed to
the reader, before any parsing, and keeps the pops.  Browsers do not send
WebSocket pings, so neither do these clients (``ping_interval=None``); the
server's own heartbeat still runs.

Protocol with the parent, one JSON object per line:
stdout ``{"ready": n, "failed": k, "seconds": s}`` once connected;
stdin ``{"cmd": "dump", "path": P}`` writes what was received to P and
answers ``{"dumped": P, "pops": n}`` (``"since": i`` writes only the pops
from index i on, ``"reconnects_since": j`` the reconnects from j on);
``{"cmd": "storm", "share": s, "seed": k}`` drops that share of the sockets
at once and reconnects them (the answer, ``{"storm": n, "reconnected": m,
...}``, comes once they are all back; other commands are served meanwhile);
``{"cmd": "quit"}`` closes every socket and exits.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter

import websockets


class Clients:
    def __init__(self, url: str, tokens: list[tuple[str, str]], concurrency: int):
        self.url, self.tokens, self.concurrency = url, tokens, concurrency
        self.token_of = dict(tokens)
        self.sockets: dict[str, object] = {}  # agent -> open socket
        self.readers: dict[str, asyncio.Task] = {}
        # (call_id, agent, arrival time.time(), server sent_at, card status, card cached, missing sources, bytes,
        #  connection number of the agent: 0 first, 1 after the first reconnect, ...)
        self.pops: list[tuple] = []
        self.other: Counter = Counter()
        self.failed: list[str] = []
        self.closed_early = 0
        self.generation: Counter = Counter()  # agent -> connections opened after the first
        self.dropping: set[str] = set()  # sockets we are dropping on purpose (a storm)
        self.down: dict[str, float] = {}  # agent -> when its socket was dropped, until it is back
        # (agent, connection number, dropped at, hello received at or None), one per reconnect
        self.reconnects: list[tuple] = []

    async def connect(self, agent: str, gate: asyncio.Semaphore) -> float | None:
        """Open the agent's socket (3 attempts) and start reading it; the
        ``time.time()`` its hello arrived, None if it failed."""
        token = self.token_of[agent]
        async with gate:
            for attempt in range(3):
                try:
                    ws = await websockets.connect(f"{self.url}/ws?token={token}", ping_interval=None,
                                                  compression=None, max_size=2**22, open_timeout=60,
                                                  max_queue=None)
                    hello = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    hello_at = time.time()
                    if hello.get("type") != "hello":
                        raise RuntimeError(f"first message {hello.get('type')!r}")
                    break
                except Exception as exc:
                    if attempt == 2:
                        self.failed.append(f"{agent}: {type(exc).__name__}: {exc}")
                        return None
                    await asyncio.sleep(0.5)
        self.sockets[agent] = ws
        self.readers[agent] = asyncio.create_task(self.read(agent, ws, self.generation[agent]))
        return hello_at

    async def connect_all(self) -> None:
        gate = asyncio.Semaphore(self.concurrency)
        await asyncio.gather(*(self.connect(agent, gate) for agent, _ in self.tokens))

    async def storm(self, share: float, seed: int) -> dict:
        """A reconnect storm: ``share`` of the connected agents lose their
        sockets at once (TCP aborted, no close handshake, as when a network
        drops) and reconnect straight away, ``concurrency`` handshakes at a time."""
        agents = sorted(self.sockets)
        chosen = random.Random(seed).sample(agents, max(1, round(share * len(agents)))) if agents else []
        started = time.time()
        dropped_at = {}
        for agent in chosen:
            ws = self.sockets.pop(agent)
            self.dropping.add(agent)
            dropped_at[agent] = self.down[agent] = time.time()
            ws.transport.abort()
        await asyncio.gather(*(self.readers.pop(agent) for agent in chosen), return_exceptions=True)
        failed_before = len(self.failed)
        gate = asyncio.Semaphore(self.concurrency)

        async def back(agent: str) -> None:
            self.dropping.discard(agent)
            self.generation[agent] += 1
            hello_at = await self.connect(agent, gate)
            self.reconnects.append((agent, self.generation[agent], dropped_at[agent], hello_at))
            self.down.pop(agent, None)

        await asyncio.gather(*(back(agent) for agent in chosen))
        return {"storm": len(chosen), "reconnected": sum(1 for a in chosen if a in self.sockets),
                "failed": len(self.failed) - failed_before, "started": started,
                "seconds": round(time.time() - started, 2)}

    async def read(self, agent: str, ws, generation: int = 0) -> None:
        pops, other, now, loads = self.pops, self.other, time.time, json.loads
        try:
            async for raw in ws:
                arrival = now()
                message = loads(raw)
                kind = message.get("type")
                if kind == "pop":
                    card = message.get("card") or {}
                    pops.append((message.get("call_id"), agent, arrival, message.get("sent_at"), card.get("status"),
                                 bool(card.get("cached")), len(card.get("missing_sources") or ()), len(raw),
                                 generation))
                else:
                    other[kind] += 1
        except websockets.ConnectionClosed:
            pass
        if agent not in self.dropping:
            self.closed_early += 1

    def dump(self, path: str, since: int | None = None, reconnects_since: int = 0) -> int:
        with open(path, "w") as f:
            json.dump({"pops": self.pops if since is None else self.pops[since:], "since": since,
                       "reconnects": self.reconnects[reconnects_since:], "down": self.down, "other": dict(self.other),
                       "failed": self.failed, "connected": len(self.sockets), "closed": self.closed_early}, f)
        return len(self.pops)

    async def close(self) -> None:
        for task in self.readers.values():
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in self.sockets.values()), return_exceptions=True)
        await asyncio.gather(*self.readers.values(), return_exceptions=True)


def say(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="ws://host:port of the service")
    parser.add_argument("--tokens", required=True, help="JSON file: [[agent_id, token], ...]")
    parser.add_argument("--concurrency", type=int, default=64, help="handshakes in flight at once")
    args = parser.parse_args()
    with open(args.tokens) as f:
        tokens = [tuple(pair) for pair in json.load(f)]
    clients = Clients(args.url, tokens, args.concurrency)
    started = time.monotonic()
    await clients.connect_all()
    say({"ready": len(clients.sockets), "failed": len(clients.failed), "errors": clients.failed[:5],
         "seconds": round(time.monotonic() - started, 2)})
    loop = asyncio.get_running_loop()
    storms: set[asyncio.Task] = set()  # running storms (their answers come when they are over)
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        command = json.loads(line)
        if command["cmd"] == "dump":
            pops = clients.dump(command["path"], command.get("since"), command.get("reconnects_since", 0))
            say({"dumped": command["path"], "pops": pops, "reconnects": len(clients.reconnects)})
        elif command["cmd"] == "storm":
            async def storm(share: float, seed: int, ident) -> None:
                say({**await clients.storm(share, seed), "id": ident})

            storms.add(asyncio.create_task(storm(command["share"], command.get("seed", 0), command.get("id"))))
        elif command["cmd"] == "quit":
            break
    await clients.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
