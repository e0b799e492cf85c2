"""The screen pop: call events in, pops out.

For every customer call the orchestrator starts the lookup as soon as the
caller is known (``call.queued``, before any phone rings), so the card is
ready when an agent's phone rings; then it pops the card on the ringing
agent's screens, retracts it from the others when someone answers, follows
transfers, pushes late card data, and hands every event to the interaction
log, off the pop path.

Events of one call are handled in order; different calls never wait for each
other (a pop waiting on a slow lookup must not delay another call's pop).
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Protocol

from customer_lookup.card import CustomerCard, card_from_dict
from customer_lookup.display import CardDisplay
from screenpop.metrics import ServiceMetrics
from telephony.events import (
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallMissed,
    CallQueued,
    CallRinging,
    CallTransferred,
    NEVER_RANG,
)

log = logging.getLogger(__name__)

POP_ON_RING, POP_ON_ANSWER = "ring", "answer"


class Delivery(Protocol):
    """Where messages for agents go: the WebSocket hub, or the bus between nodes."""

    def send_to_agent(self, agent_id: str, message: dict[str, Any]) -> int: ...

    def send_to_supervisors(self, message: dict[str, Any]) -> int: ...


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(eq=False)
class ActiveCall:
    call_id: str
    caller_number: str | None
    caller_name: str | None
    queue: str | None = None
    lookup: asyncio.Task | None = None
    card: CustomerCard | None = None
    popped: set[str] = field(default_factory=set)  # agents whose screen shows the call
    # Of those, the ones whose ring ended unanswered while the caller still
    # waits in the queue: Asterisk rings them again (queues.conf retry), so
    # their card stays (ringing -> missed -> ringing), one per agent per call.
    missed: set[str] = field(default_factory=set)
    presentation: str = "allowed"  # "restricted": the caller's number and card are never shown
    answered_by: str | None = None
    answered_at: str | None = None  # so a reloaded desktop's call timer starts where it was
    transferred_from: str | None = None
    notes: list[dict[str, Any]] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    ended: bool = False
    restored: bool = False  # taken up from the last ingester's live state, not seen starting here

    def to_state(self) -> dict[str, Any]:
        """What another node needs to show or take up this call (see screenpop.cluster.livecalls)."""
        return {
            "call_id": self.call_id, "caller_number": self.caller_number, "caller_name": self.caller_name,
            "queue": self.queue, "card": self.card.to_dict() if self.card is not None else None,
            "popped": sorted(self.popped), "answered_by": self.answered_by, "answered_at": self.answered_at,
            "transferred_from": self.transferred_from, "notes": list(self.notes), "ended": self.ended,
            "missed": sorted(self.missed), "presentation": self.presentation,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ActiveCall:
        card = state.get("card")
        return cls(state["call_id"], state.get("caller_number"), state.get("caller_name"), state.get("queue"),
                   card=card_from_dict(card) if card else None, popped=set(state.get("popped") or ()),
                   answered_by=state.get("answered_by"), answered_at=state.get("answered_at"),
                   transferred_from=state.get("transferred_from"), notes=list(state.get("notes") or ()),
                   ended=bool(state.get("ended")), restored=True, missed=set(state.get("missed") or ()),
                   presentation=state.get("presentation") or "allowed")


class Orchestrator:
    def __init__(
        self,
        lookup,
        delivery: Delivery,
        writer=None,
        *,
        metrics: ServiceMetrics | None = None,
        pop_timing: dict[str, str] | None = None,
        default_timing: str = POP_ON_RING,
        on_card: Callable[[str, CustomerCard], None] | None = None,
        on_change: Callable[[ActiveCall], None] | None = None,
        display: CardDisplay | None = None,
    ):
        """``on_card(call_id, card)`` hears every card a call gets (the lookup,
        late data, a pushed balance): the supervisors' view names the caller.
        ``on_change(call)`` hears every change of a call's state once it is
        applied (the live call state other nodes read).  ``display``: how
        numbers and fields are written for the agents (default: the
        lookup's region, labels from the field names)."""
        self.lookup = lookup
        self.display = display or CardDisplay(region=getattr(lookup, "default_region", None) or "ES")
        self.on_card = on_card
        self.on_change = on_change
        self.delivery = delivery
        self.writer = writer
        self.pop_timing = pop_timing or {}
        self.default_timing = default_timing
        self.calls: dict[str, ActiveCall] = {}
        self.metrics = metrics or ServiceMetrics()
        self._tasks: set[asyncio.Task] = set()

    # ------------------------------------------------------------------ entry

    def handle(self, event: CallEvent) -> asyncio.Task:
        """Take one call event; returns the task handling it (tests await it)."""
        call = self.calls.get(event.call_id)
        if call is None:
            number = getattr(event, "caller_number", None)
            name = getattr(event, "caller_name", None)
            call = self.calls[event.call_id] = ActiveCall(event.call_id, number, name, getattr(event, "queue", None))
            self._start_lookup(call)
        if self.writer is not None:
            self.writer.submit(event)
        task = asyncio.create_task(self._in_order(call, event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def pops_for(self, agent_id: str) -> list[dict[str, Any]]:
        """The pops an agent's screen should show right now (reconnect replay)."""
        return [pop_message(c, agent_id, self.display) for c in self.calls.values() if agent_id in c.popped and not c.ended]

    def calls_snapshot(self) -> list[dict[str, Any]]:
        """Calls in progress, for the API: who is calling, where, whose screens show it."""
        return [call_summary(call) for call in self.calls.values() if not call.ended]

    async def card_changed(self, card: CustomerCard) -> int:
        """A card was patched outside a lookup (a pushed balance): update open pops."""
        sent = 0
        for call in self.calls.values():
            if call.card is not None and call.card.e164 and call.card.e164 == card.e164:
                call.card = card
                sent += self._send_card(call)
                self._tell_card(call.call_id, card)
                self._changed(call)
        return sent

    def add_note(self, call_id: str, note: dict[str, Any]) -> None:
        call = self.calls.get(call_id)
        if call is not None:
            call.notes.append(note)
            self._changed(call)

    # ------------------------------------------------------------- takeover

    def restore(self, states: list[dict[str, Any]]) -> int:
        """Take up the calls another ingester left (its live state): the
        screens they show are known, so nobody is popped twice."""
        restored = 0
        for state in states:
            if state.get("ended") or state["call_id"] in self.calls:
                continue
            self.calls[state["call_id"]] = ActiveCall.from_state(state)
            restored += 1
        return restored

    def reconcile(self, live_call_ids: set[str], ts: str | None = None) -> list[str]:
        """After the first resync: calls taken up from the last ingester that
        Asterisk no longer has ended while nobody was watching; end them once."""
        ended = []
        for call in list(self.calls.values()):
            if call.call_id in live_call_ids or call.ended or not call.restored:
                continue
            reason = "completed" if call.answered_by else "unanswered"
            self.handle(CallEnded(call.call_id, ts or utc_now(), call.answered_by, reason, 0.0))
            ended.append(call.call_id)
        if ended:
            log.info("calls ended while no node was ingesting count=%d call_ids=%s", len(ended), ",".join(ended[:20]))
        return ended

    # ---------------------------------------------------------------- private

    def _start_lookup(self, call: ActiveCall) -> None:
        async def on_late(card: CustomerCard) -> None:
            if call.lookup is not task:
                return  # a lookup given up (the caller turned out restricted)
            call.card = card
            self._log_card(call, card)
            self._send_card(call)
            self._changed(call)

        def looked_up(done: asyncio.Task) -> None:
            # Logged whether or not a phone ever rang: an abandoned call keeps its customer.
            if done is call.lookup and not done.cancelled() and done.exception() is None:
                card = done.result()
                for source, status in card.sources.items():
                    self.metrics.lookups.labels(source, status.status).inc()
                self._log_card(call, card)

        task = call.lookup = asyncio.create_task(self.lookup.lookup(call.caller_number, on_late=on_late))
        task.add_done_callback(looked_up)

    def _log_card(self, call: ActiveCall, card: CustomerCard) -> None:
        if self.writer is not None:
            self.writer.submit_lookup(call.call_id, card)
        self._tell_card(call.call_id, card)

    def _tell_card(self, call_id: str, card: CustomerCard) -> None:
        if self.on_card is None:
            return
        try:
            self.on_card(call_id, card)
        except Exception:
            log.exception("card observer failed call_id=%s", call_id)

    async def _in_order(self, call: ActiveCall, event: CallEvent) -> None:
        async with call.lock:
            try:
                await self._apply(call, event)
            except Exception:
                log.exception("pop handling failed type=%s call_id=%s", event.type, event.call_id)
            self._changed(call)

    def _changed(self, call: ActiveCall) -> None:
        if self.on_change is None:
            return
        try:
            self.on_change(call)
        except Exception:
            log.exception("call state observer failed call_id=%s", call.call_id)

    async def _apply(self, call: ActiveCall, event: CallEvent) -> None:
        if getattr(event, "presentation", None) == "restricted" and call.presentation != "restricted":
            await self._restrict(call)
        if isinstance(event, CallQueued):
            if call.queue != event.queue:
                for agent in sorted(call.missed):  # moved to another queue: the old one's rings are over
                    self._retract(call, agent, "left the queue")
            call.queue = event.queue
        elif isinstance(event, CallRinging):
            call.queue = event.queue or call.queue
            if event.agent in call.missed:  # rung again (queue retry): the card it kept rings again
                call.missed.discard(event.agent)
                self._send(event.agent, {"type": "call", "call_id": call.call_id, "event": "ringing", "ts": event.ts})
            elif self._timing(call) == POP_ON_RING:
                await self._pop(call, event.agent, event)
        elif isinstance(event, CallMissed):
            self._missed(call, event)
        elif isinstance(event, CallAnswered):
            if call.answered_by == event.agent and event.agent in call.popped:
                return  # what we knew, told again by a resync (a new ingester took over)
            call.answered_by, call.answered_at = event.agent, event.ts
            if event.agent not in call.popped:
                await self._pop(call, event.agent, event)
            self._send(event.agent, {"type": "call", "call_id": call.call_id, "event": "answered", "agent": event.agent, "ts": event.ts})
            for agent in sorted(call.popped - {event.agent}):
                self._retract(call, agent, "answered elsewhere")
        elif isinstance(event, CallTransferred):
            call.transferred_from = event.from_agent
            if event.from_agent:
                target = event.to_agent or event.to_queue or event.to_number
                self._send(event.from_agent, {"type": "call", "call_id": call.call_id, "event": "transferred", "to": target, "ts": event.ts})
                call.popped.discard(event.from_agent)
            if event.to_agent:
                await self._pop(call, event.to_agent, event)
        elif isinstance(event, CallAbandoned):
            for agent in sorted(call.popped):
                self._retract(call, agent, "abandoned")
        elif isinstance(event, CallEnded):
            call.ended = True
            for agent in sorted(call.popped):
                if agent == call.answered_by:
                    self._send(agent, {"type": "call", "call_id": call.call_id, "event": "ended", "reason": event.reason, "ts": event.ts})
                else:
                    self._retract(call, agent, event.reason)
            call.popped.clear()
            self.calls.pop(call.call_id, None)
            self._forget_card(call)
            if call.lookup is not None and not call.lookup.done():
                call.lookup.cancel()

    def _missed(self, call: ActiveCall, event: CallMissed) -> None:
        """A ring ended without this agent answering: say why, or keep the
        card while the caller still waits in the queue for another round."""
        if event.reason in NEVER_RANG:
            self._retract(call, event.agent, event.reason)  # busy / unavailable: the phone never rang
        elif event.reason == "answered-elsewhere":
            self._retract(call, event.agent, "answered elsewhere")
        elif event.reason == "abandoned":
            self._retract(call, event.agent, "abandoned")
        elif call.queue is not None and call.answered_by is None and event.agent in call.popped:
            call.missed.add(event.agent)
            self._send(event.agent, {"type": "call", "call_id": call.call_id, "event": "missed", "ts": event.ts})
        else:
            self._retract(call, event.agent, "not answered")

    async def _restrict(self, call: ActiveCall) -> None:
        """The caller hides their number (Asterisk says so on the agent legs,
        after ``call.queued`` started a lookup with it): forget the number
        and the card, look up nothing, and replace what screens already show."""
        call.presentation, call.caller_number, call.caller_name = "restricted", None, None
        if call.lookup is not None and not call.lookup.done():
            call.lookup.cancel()
        call.card = None
        self._start_lookup(call)  # a withheld card, at once
        if call.popped:
            try:
                call.card = await asyncio.shield(call.lookup)
            except Exception:
                log.exception("lookup failed call_id=%s", call.call_id)
        log.info("caller restricted: number and card withdrawn call_id=%s screens=%d", call.call_id, len(call.popped))
        for agent in sorted(call.popped):
            self._send(agent, pop_message(call, agent, self.display))

    def _forget_card(self, call: ActiveCall) -> None:
        """The call is now part of the caller's history: the next lookup must see it."""
        invalidate = getattr(self.lookup, "invalidate_number", None)
        if invalidate is None or not call.caller_number:
            return
        async def forget() -> None:
            try:
                await invalidate(call.caller_number)
            except Exception as exc:  # a stale card is refreshed by its TTL anyway
                log.warning("card cache invalidation failed call_id=%s error=%s", call.call_id, exc)

        task = asyncio.create_task(forget())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _timing(self, call: ActiveCall) -> str:
        return self.pop_timing.get(call.queue or "", self.default_timing)

    async def _pop(self, call: ActiveCall, agent: str, event: CallEvent) -> None:
        if agent in call.popped:
            return
        if call.card is None and call.lookup is not None:
            try:
                call.card = await asyncio.shield(call.lookup)
            except Exception:
                log.exception("lookup failed call_id=%s", call.call_id)
        call.popped.add(agent)
        self._send(agent, pop_message(call, agent, self.display))
        self.metrics.pops_sent.inc()
        self.metrics.pop_latency.observe(max(0.0, time.time() - _epoch(event.ts)))
        log.info("pop sent call_id=%s agent=%s customer=%s", call.call_id, agent, call.card.status if call.card else "none")

    def _retract(self, call: ActiveCall, agent: str, reason: str) -> None:
        if agent not in call.popped:
            return
        call.popped.discard(agent)
        call.missed.discard(agent)
        self._send(agent, {"type": "retract", "call_id": call.call_id, "reason": reason})
        self.metrics.retracts_sent.labels(reason).inc()

    def _send_card(self, call: ActiveCall) -> int:
        if call.card is None:
            return 0
        card = self.display.card(call.card.to_dict())
        for agent in sorted(call.popped):
            self._send(agent, {"type": "card", "call_id": call.call_id, "card": card})
            self.metrics.card_updates.inc()
        return len(call.popped)

    def _send(self, agent: str, message: dict[str, Any]) -> None:
        try:
            self.delivery.send_to_agent(agent, message)
        except Exception:
            log.exception("delivery failed agent=%s type=%s call_id=%s", agent, message.get("type"), message.get("call_id"))


def pop_message(call: ActiveCall, agent: str, display: CardDisplay | None = None) -> dict[str, Any]:
    """The pop for ``agent``; numbers and labels written as ``display`` says
    (the raw number and E.164 stay beside them)."""
    display = display or CardDisplay()
    return {
        "type": "pop",
        "call_id": call.call_id,
        "queue": call.queue,
        "caller": display.caller(call.caller_number, call.caller_name, call.card.e164 if call.card else None),
        "card": display.card(call.card.to_dict()) if call.card else None,
        "state": "answered" if call.answered_by == agent else "missed" if agent in call.missed else "ringing",
        "transferred_from": call.transferred_from,
        "answered_at": call.answered_at if call.answered_by == agent else None,
        "notes": list(call.notes),
        "sent_at": utc_now(),
    }


def call_summary(call: ActiveCall) -> dict[str, Any]:
    """One call in progress as the API lists it: who is calling, where, whose screens show it."""
    agents = set(call.popped) | ({call.answered_by} if call.answered_by else set())
    return {
        "call_id": call.call_id, "queue": call.queue,
        "caller": {"number": call.caller_number, "name": call.caller_name},
        "customer": _customer_name(call.card),
        "agents": sorted(agents), "answered_by": call.answered_by,
        "state": "answered" if call.answered_by else "waiting",
    }


def _customer_name(card: CustomerCard | None) -> str | None:
    if card is None or card.person is None:
        return None
    return card.person.name or card.person.company


def _epoch(ts: str) -> float:
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()
