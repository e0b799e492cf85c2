"""What the fault tests share on top of :mod:`tests.stack` (the
whole node in front of the PBX simulator, nothing mocked): an agent's
socket read in the background, waiting on a condition with a deadline, and
a record of every call event the node handled."""
from __future__ import annotations

import asyncio
import collections
import json
import time
from typing import Callable

from telephony.events import CallEvent


async def eventually(condition: Callable[[], object], timeout: float = 10.0, what: str = "condition", step: float = 0.02):
    """Poll ``condition`` until it is truthy (returns its value) or fail."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:g}s waiting for {what}"
        await asyncio.sleep(step)


class Inbox:
    """Every message an agent's WebSocket receives, read in the background,
    with the wall time it arrived."""

    def __init__(self, ws):
        self.ws = ws
        self.messages: list[dict] = []
        self.arrived: list[float] = []
        self.closed: BaseException | None = None
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.messages.append(json.loads(raw))
                self.arrived.append(time.time())
        except Exception as exc:  # the socket died: tests assert it did not
            self.closed = exc

    def of(self, call_id: str, kind: str | None = None, event: str | None = None) -> list[dict]:
        return [m for m in self.messages if m.get("call_id") == call_id
                and (kind is None or m["type"] == kind) and (event is None or m.get("event") == event)]

    def pops(self) -> list[dict]:
        return [m for m in self.messages if m["type"] == "pop"]

    async def close(self) -> None:
        await self.ws.close()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


class EventTap:
    """Every call event the node's orchestrator is handed, by call id (the
    node's own deliver callback looks ``orchestrator.handle`` up per event,
    so wrapping it on the instance sees all of them)."""

    def __init__(self, service):
        self.by_call: dict[str, list[CallEvent]] = collections.defaultdict(list)
        self.first_at: dict[tuple[str, str], float] = {}  # (call id, type) -> wall time first handed over
        self.agent_at: dict[tuple[str, str], float] = {}  # (call id, agent) -> first event putting it on that agent's screen
        orchestrator = service.orchestrator
        original = orchestrator.handle

        def handle(event: CallEvent):
            self.by_call[event.call_id].append(event)
            now = time.time()
            self.first_at.setdefault((event.call_id, event.type), now)
            agent = getattr(event, "to_agent", None) or getattr(event, "agent", None)
            if agent and event.type in ("call.ringing", "call.answered", "call.transferred"):
                self.agent_at.setdefault((event.call_id, agent), now)
            return original(event)

        orchestrator.handle = handle

    def types(self, call_id: str) -> list[str]:
        return [e.type for e in self.by_call.get(call_id, [])]

    def count(self, call_id: str, type_: str) -> int:
        return self.types(call_id).count(type_)

    def answered(self) -> list[str]:
        return [cid for cid, evs in self.by_call.items() if any(e.type == "call.answered" for e in evs)]

    def pop_delays(self, agent: str, inbox: "Inbox") -> list[tuple[str, float]]:
        """(call id, seconds) from the event that should pop the call on
        ``agent``'s screen reaching the orchestrator to the pop arriving."""
        out = []
        for message, arrived in zip(inbox.messages, inbox.arrived):
            at = self.agent_at.get((message.get("call_id"), agent))
            if message["type"] == "pop" and at is not None:
                out.append((message["call_id"], arrived - at))
        return out

    def ended(self) -> dict[str, CallEvent]:
        return {cid: evs[-1] for cid, evs in self.by_call.items() if evs and evs[-1].type == "call.ended"}


def start_call(simulator, scenario: str, number: str | None, name: str | None, **options) -> tuple[str, asyncio.Future]:
    """Place a call on the simulator without waiting for it: its Linkedid
    (the call id) at once, and a future done when its last event is sent
    (cancelled if the simulator stops first)."""
    plan, start = simulator.prepare_call(scenario, number, name, **options)
    return plan.linkedid, simulator.playback.schedule(start, plan.events)
