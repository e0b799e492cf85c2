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
answers ``{"dumped": P, "pops": n}``; ``{"cmd": "quit"}`` closes every
socket and exits.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter

import websockets


class Clients:
    def __init__(self, url: str, tokens: list[tuple[str, str]], concurrency: int):
        self.url, self.tokens, self.concurrency = url, tokens, concurrency
        self.sockets: list = []
        self.readers: list[asyncio.Task] = []
        # (call_id, agent, arrival time.time(), server sent_at, card status, card cached, missing sources, bytes)
        self.pops: list[tuple] = []
        self.other: Counter = Counter()
        self.failed: list[str] = []
        self.closed_early = 0

    async def connect_all(self) -> None:
        gate = asyncio.Semaphore(self.concurrency)

        async def one(agent: str, token: str) -> None:
            async with gate:
                for attempt in range(3):
                    try:
                        ws = await websockets.connect(f"{self.url}/ws?token={token}", ping_interval=None,
                                                      compression=None, max_size=2**22, open_timeout=60,
                                                      max_queue=None)
                        hello = json.loads(await asyncio.wait_for(ws.recv(), 30))
                        if hello.get("type") != "hello":
                            raise RuntimeError(f"first message {hello.get('type')!r}")
                        break
                    except Exception as exc:
                        if attempt == 2:
                            self.failed.append(f"{agent}: {type(exc).__name__}: {exc}")
                            return
                        await asyncio.sleep(0.5)
            self.sockets.append(ws)
            self.readers.append(asyncio.create_task(self.read(agent, ws)))

        await asyncio.gather(*(one(agent, token) for agent, token in self.tokens))

    async def read(self, agent: str, ws) -> None:
        pops, other, now, loads = self.pops, self.other, time.time, json.loads
        try:
            async for raw in ws:
                arrival = now()
                message = loads(raw)
                kind = message.get("type")
                if kind == "pop":
                    card = message.get("card") or {}
                    pops.append((message.get("call_id"), agent, arrival, message.get("sent_at"), card.get("status"),
                                 bool(card.get("cached")), len(card.get("missing_sources") or ()), len(raw)))
                else:
                    other[kind] += 1
        except websockets.ConnectionClosed:
            pass
        self.closed_early += 1

    def dump(self, path: str) -> int:
        with open(path, "w") as f:
            json.dump({"pops": self.pops, "other": dict(self.other), "failed": self.failed,
                       "connected": len(self.sockets), "closed": self.closed_early}, f)
        return len(self.pops)

    async def close(self) -> None:
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        await asyncio.gather(*self.readers, return_exceptions=True)


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
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        command = json.loads(line)
        if command["cmd"] == "dump":
            say({"dumped": command["path"], "pops": clients.dump(command["path"])})
        elif command["cmd"] == "quit":
            break
    await clients.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
