"""The live call state in Redis, written by the ingester, read by every node.

``{prefix}live:calls`` holds one JSON state per call in progress (what the
orchestrator knows: caller, card, whose screens show it, notes), and
``{prefix}live:agent:{id}`` the calls on one agent's screen, so a browser
reconnecting to any node gets its pops back with two round trips, and the
next ingester takes the calls up where the last one left them.

Writes never wait on the pop path: ``changed`` only records the newest state
of a call; a flusher task writes what changed in one pipeline per tick, so a
burst of events on one call costs one write.  While Redis is away the newest
states stay in memory and are written when it returns.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Callable

log = logging.getLogger(__name__)

State = dict[str, Any]


class LiveCalls:
    def __init__(self, redis, prefix: str = "screenpop:", *, tick: float = 0.01):
        """``current``, when set (by the ingester), gives the states of every
        call in progress: written again in full after an outage, because a
        Redis that restarted has forgotten them."""
        self.redis = redis
        self.current: Callable[[], list[State]] | None = None
        self.calls_key = f"{prefix}live:calls"
        self.agent_prefix = f"{prefix}live:agent:"
        self.tick = tick
        self.ok = True
        self._dirty: dict[str, State] = {}
        self._written_popped: dict[str, frozenset[str]] = {}  # what the agent sets hold, per call
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    # ------------------------------------------------------------ the ingester

    def changed(self, state: State) -> None:
        """The call's newest state (``ended`` true: forget it)."""
        self._dirty[state["call_id"]] = state
        self._wake.set()

    def adopt(self, states: list[State]) -> None:
        """States read back at a takeover: what the agent sets already hold."""
        for state in states:
            self._written_popped[state["call_id"]] = frozenset(state.get("popped", ()))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._flush_loop(), name="live-calls")

    async def stop(self) -> None:
        """Writes what is pending (if Redis answers within a second), then stops."""
        if self._task is None:
            return
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        if self._dirty:
            try:
                await asyncio.wait_for(self._flush(), 1.0)
            except Exception as exc:
                log.warning("live call state not written at stop calls=%d error=%s", len(self._dirty), exc)

    async def _flush_loop(self) -> None:
        failures = 0
        while True:
            await self._wake.wait()
            await asyncio.sleep(self.tick)  # let a burst of events coalesce
            try:
                await self._flush()
            except Exception as exc:
                failures += 1
                if self.ok:
                    log.warning("live call state write failed, keeping it in memory calls=%d error=%s", len(self._dirty), exc)
                self.ok = False
                await asyncio.sleep(min(5.0, 0.1 * 2 ** min(failures, 6)))
                continue
            if not self.ok:
                self.rewrite_all()
                log.info("live call state written again after_failures=%d calls=%d", failures, len(self._dirty))
            self.ok, failures = True, 0

    def rewrite_all(self) -> None:
        """Write every call in progress again (Redis may have lost them all)."""
        if self.current is None:
            return
        self._written_popped.clear()
        for state in self.current():
            self._dirty.setdefault(state["call_id"], state)
        self._wake.set()

    async def _flush(self) -> None:
        self._wake.clear()
        batch, self._dirty = self._dirty, {}
        if not batch:
            return
        pipe = self.redis.pipeline(transaction=False)
        popped_after: dict[str, frozenset[str]] = {}
        for call_id, state in batch.items():
            before = self._written_popped.get(call_id, frozenset())
            now = frozenset() if state.get("ended") else frozenset(state.get("popped", ()))
            if state.get("ended"):
                pipe.hdel(self.calls_key, call_id)
            else:
                pipe.hset(self.calls_key, call_id, json.dumps(state, separators=(",", ":")))
            for agent in now - before:
                pipe.sadd(self.agent_prefix + agent, call_id)
            for agent in before - now:
                pipe.srem(self.agent_prefix + agent, call_id)
            popped_after[call_id] = now
        try:
            await pipe.execute()
        except BaseException:
            for call_id, state in batch.items():  # newer states that came meanwhile win
                self._dirty.setdefault(call_id, state)
            self._wake.set()
            raise
        for call_id, popped in popped_after.items():
            if popped or not batch[call_id].get("ended"):
                self._written_popped[call_id] = popped
            else:
                self._written_popped.pop(call_id, None)

    # ------------------------------------------------------------ every node

    async def all(self) -> list[State]:
        raw = await self.redis.hgetall(self.calls_key)
        return [_load(value) for value in raw.values() if value]

    async def for_agent(self, agent_id: str) -> list[State]:
        call_ids = sorted(_text(c) for c in await self.redis.smembers(self.agent_prefix + agent_id))
        if not call_ids:
            return []
        values = await self.redis.hmget(self.calls_key, call_ids)
        states = [_load(v) for v in values if v]
        return [s for s in states if agent_id in s.get("popped", ()) and not s.get("ended")]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _load(value) -> State:
    return json.loads(_text(value))
