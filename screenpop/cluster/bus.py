"""The bus between the parts of a node, and between nodes.

``publish`` never waits and never raises: the orchestrator calls it on the
pop path.  Handlers of this node run at once, inside ``publish``, on both
buses; so a node keeps popping its own agents while Redis is away.  The
Redis bus also queues the message for the other nodes (an outbox drained
by one writer task into pipelined ``XADD``\\ s, in order) and reads theirs
(one reader task, ``XREAD BLOCK`` from its own last-seen ids, so it catches
up after any disconnect).  Why streams: see :mod:`screenpop.cluster`.

Every entry carries its origin (node id plus a per-boot id) and a sequence
number: a batch re-sent after a pipeline broke half-way is recognised and
dropped by readers, so nobody gets a pop twice.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import socket
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], None]

AGENTS, SUPERVISORS, COMMANDS, EVENTS = "agents", "supervisors", "commands", "events"
CHANNELS = (AGENTS, SUPERVISORS, COMMANDS, EVENTS)


def default_node_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(slots=True)
class BusStats:
    published: int = 0
    received: int = 0  # from other nodes
    duplicates: int = 0
    dropped: int = 0  # outbox overflowed while Redis was away
    failures: int = 0
    backlog: int = 0


class LocalBus:
    """The embedded bus: one node, handlers called in order as messages are published."""

    def __init__(self, node_id: str = "local"):
        self.node_id = node_id
        self.stats = BusStats()
        self._handlers: dict[str, list[Handler]] = {}
        self._latest: dict[str, dict[str, dict[str, Any]]] = {}

    @property
    def connected(self) -> bool:
        return True

    def subscribe(self, channel: str, handler: Handler) -> None:
        self._handlers.setdefault(channel, []).append(handler)

    def read(self, channel: str) -> bool:
        """Would a message on ``channel`` reach anyone?  (Callers skip building one that would not.)"""
        return bool(self._handlers.get(channel))

    def publish(self, channel: str, payload: dict[str, Any], *, key: str | None = None) -> None:
        """``key``: the message replaces the previous one of that key (state,
        not news); :meth:`latest` gives the last of each."""
        self.stats.published += 1
        if key is not None:
            self._latest.setdefault(channel, {})[key] = payload
        self._dispatch(channel, payload)

    async def latest(self, channel: str) -> dict[str, dict[str, Any]]:
        return dict(self._latest.get(channel, {}))

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def status(self) -> dict[str, Any]:
        return {"ok": True, "kind": "in-process"}

    def _dispatch(self, channel: str, payload: dict[str, Any]) -> None:
        for handler in self._handlers.get(channel, ()):
            try:
                handler(payload)
            except Exception:
                log.exception("bus handler failed channel=%s type=%s call_id=%s", channel, payload.get("type"), payload.get("call_id"))


class RedisBus(LocalBus):
    """Streams on Redis: ``{prefix}bus:{channel}``, and ``…:latest`` hashes for keyed state."""

    def __init__(
        self,
        redis_url: str,
        *,
        node_id: str | None = None,
        prefix: str = "screenpop:",
        maxlen: int = 100_000,
        outbox_max: int = 50_000,
        block_ms: int = 1000,
        batch: int = 512,
    ):
        super().__init__(node_id or default_node_id())
        self.redis_url = redis_url
        self.prefix = prefix
        self.maxlen = maxlen
        self.outbox_max = outbox_max
        self.block_ms = block_ms
        self.batch = batch
        self.origin = f"{self.node_id}/{random.getrandbits(48):012x}"  # this boot of this node
        self._seq = 0
        self._outbox: deque[tuple[int, str, str, str | None]] = deque()
        self._wake = asyncio.Event()
        self._seen: dict[str, int] = {}  # origin -> last sequence number read
        self._last_ids: dict[str, str] | None = None
        self._ok = {"publish": True, "read": False}  # publishing is fine until it fails; reading, once it worked
        self._errors: dict[str, str] = {}
        self._tasks: list[asyncio.Task] = []
        self._writer = None
        self._reader = None

    # ------------------------------------------------------------- interface

    @property
    def connected(self) -> bool:
        return all(self._ok.values())

    def read(self, channel: str) -> bool:
        return True  # other nodes and integrations read every stream

    def publish(self, channel: str, payload: dict[str, Any], *, key: str | None = None) -> None:
        super().publish(channel, payload, key=key)
        if len(self._outbox) >= self.outbox_max:
            self._outbox.popleft()
            self.stats.dropped += 1
            if self.stats.dropped % 1000 == 1:
                log.error("bus outbox full, oldest messages dropped dropped_total=%d", self.stats.dropped)
        self._seq += 1
        self._outbox.append((self._seq, channel, json.dumps(payload, separators=(",", ":")), key))
        self.stats.backlog = len(self._outbox)
        self._wake.set()

    async def latest(self, channel: str) -> dict[str, dict[str, Any]]:
        """The last message of every key, as stored in Redis (raises when Redis is away)."""
        raw = await self._writer.hgetall(self._latest_key(channel))
        return {key: json.loads(value) for key, value in raw.items()}

    async def start(self) -> None:
        import redis.asyncio as aioredis

        self._writer = aioredis.from_url(self.redis_url, decode_responses=True, socket_connect_timeout=2.0,
                                         socket_timeout=2.0, health_check_interval=5)
        self._reader = aioredis.from_url(self.redis_url, decode_responses=True, socket_connect_timeout=2.0,
                                         socket_timeout=self.block_ms / 1000 + 5.0, health_check_interval=5)
        self._tasks = [asyncio.create_task(self._write_loop(), name="bus-writer"),
                       asyncio.create_task(self._read_loop(), name="bus-reader")]

    async def stop(self) -> None:
        """Gives the writer a moment to send what is queued, then closes."""
        for _ in range(20):
            if not self._outbox or not self._ok["publish"]:
                break
            await asyncio.sleep(0.05)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for client in (self._writer, self._reader):
            if client is not None:
                await client.aclose()

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.connected, "kind": "redis", "node": self.node_id, "backlog": len(self._outbox),
                               "dropped": self.stats.dropped}
        if self._errors:
            out["errors"] = dict(self._errors)
        return out

    # ---------------------------------------------------------------- loops

    def _stream(self, channel: str) -> str:
        return f"{self.prefix}bus:{channel}"

    def _latest_key(self, channel: str) -> str:
        return f"{self.prefix}bus:{channel}:latest"

    async def _write_loop(self) -> None:
        failures = 0
        while True:
            if not self._outbox:
                self._wake.clear()
                await self._wake.wait()
            batch = [self._outbox[i] for i in range(min(len(self._outbox), self.batch))]
            try:
                pipe = self._writer.pipeline(transaction=False)
                for seq, channel, data, key in batch:
                    pipe.xadd(self._stream(channel), {"o": self.origin, "s": seq, "m": data},
                              maxlen=self.maxlen, approximate=True)
                    if key is not None:
                        pipe.hset(self._latest_key(channel), key, data)
                await pipe.execute()
            except Exception as exc:  # redis errors, OSError, timeouts: all mean "not now"
                failures += 1
                self._failed("publish", exc, failures)
                await asyncio.sleep(_backoff(failures))
                continue
            last = batch[-1][0]
            while self._outbox and self._outbox[0][0] <= last:
                self._outbox.popleft()
            self.stats.backlog = len(self._outbox)
            failures = self._recovered("publish", failures)

    async def _read_loop(self) -> None:
        failures = 0
        while True:
            try:
                if self._last_ids is None:
                    self._last_ids = await self._stream_ends()
                reply = await self._reader.xread(self._last_ids, count=1000, block=self.block_ms)
            except Exception as exc:
                failures += 1
                self._failed("read", exc, failures)
                await asyncio.sleep(_backoff(failures))
                continue
            failures = self._recovered("read", failures)
            for stream, entries in reply or ():
                channel = stream[len(self.prefix) + len("bus:"):]
                for entry_id, fields in entries:
                    self._last_ids[stream] = entry_id
                    self._receive(channel, fields)

    async def _stream_ends(self) -> dict[str, str]:
        """Where this node starts reading: after the last entry now in each stream
        (what came before is state, and comes from the live call state)."""
        ends = {}
        for channel in CHANNELS:
            stream = self._stream(channel)
            last = await self._reader.xrevrange(stream, count=1)
            ends[stream] = last[0][0] if last else "0-0"
        return ends

    def _receive(self, channel: str, fields: dict[str, str]) -> None:
        origin = fields.get("o", "")
        if origin == self.origin:
            return
        try:
            seq = int(fields.get("s", 0))
            payload = json.loads(fields["m"])
        except (KeyError, ValueError) as exc:
            log.warning("bus entry unreadable channel=%s origin=%s error=%s", channel, origin, exc)
            return
        if seq <= self._seen.get(origin, 0):
            self.stats.duplicates += 1
            return
        self._seen[origin] = seq
        self.stats.received += 1
        self._dispatch(channel, payload)

    def _failed(self, what: str, exc: BaseException, failures: int) -> None:
        self.stats.failures += 1
        self._errors[what] = f"{type(exc).__name__}: {exc}"[:200]
        if self._ok[what] or failures == 1:
            log.warning("bus %s failed, retrying node=%s error=%s", what, self.node_id, self._errors[what])
        self._ok[what] = False

    def _recovered(self, what: str, failures: int) -> int:
        if not self._ok[what]:
            log.info("bus %s ok node=%s after_failures=%d", what, self.node_id, failures)
        self._ok[what] = True
        self._errors.pop(what, None)
        return 0


def _backoff(failures: int) -> float:
    return min(5.0, 0.1 * 2 ** min(failures, 6)) * (0.5 + random.random() / 2)
