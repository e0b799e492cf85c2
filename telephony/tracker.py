"""The call tracker: AMI events in, call events out.  Pure code, no I/O.

A customer call in Asterisk is a tree of channels: the caller's channel (a
trunk, or in the captures the ``;2`` half of a Local pair whose ``;1`` half is
the customer), the agent legs it dials (``Local/1001@agents-…;1`` and its
``;2``, or ``PJSIP/1001-…``), consultation legs of attended transfers.  The
tracker gives every channel a *role* in one call:

* ``customer`` — the caller's side.  The call ends when the last one hangs up.
* ``agent`` — a leg that rang (or reached) an agent, with that agent's id.
* ``consult`` — a leg an agent dialed while on the call (attended transfer).
* ``external`` — where a transferred-out caller went.

A call starts when a channel that is not an agent joins a queue or dials an
agent; the call id is that channel's Linkedid, stable across queue, agents and
transfers.  Everything else (internal calls between agents, outbound calls,
the dialplan's own chatter) produces nothing.  Each handler is idempotent, so
duplicated events, and the state replayed after a reconnect, do no harm.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Callable

from telephony.agents import AgentResolver
from telephony.events import (
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallMissed,
    CallQueued,
    CallRinging,
    CallTransferred,
    iso_utc,
)
from telephony.link import Snapshot
from telephony.protocol import AmiMessage

log = logging.getLogger(__name__)

WITHHELD = frozenset({"", "<unknown>", "unknown", "anonymous", "restricted", "private", "withheld", "unavailable", "<unavailable>"})
MAX_UPSTREAM_HOPS = 16
# DialEnd statuses other than ANSWER and CANCEL -> CallMissed.reason
DIAL_STATUS_REASONS = {"NOANSWER": "no-answer", "BUSY": "busy", "CHANUNAVAIL": "unavailable", "CONGESTION": "unavailable"}


def _withheld(value: str | None) -> bool:
    return value is None or value.strip().lower() in WITHHELD


def _restricted(presentation: str) -> bool:
    """``CID-CallingPres: 32 (Presentation Prohibited, …)``: bits 0x60 say
    prohibited (0x20) or unavailable (0x40)."""
    code = presentation.split(" ", 1)[0]
    return code.isdigit() and int(code) & 0x60 != 0


@dataclass(slots=True)
class _Transfer:
    from_agent: str | None
    target: str | None  # the extension dialed, for to_number when it leaves
    ts: float


@dataclass(slots=True)
class _Ring:
    agent: str
    queue: str | None


@dataclass(slots=True, eq=False)
class _Call:
    call_id: str
    caller_number: str | None
    caller_name: str | None
    started: float
    waiting_since: float
    touched: float
    queue: str | None = None  # the queue the caller waits in right now
    was_queued: bool = False
    rings: dict[str, _Ring] = field(default_factory=dict)  # agent leg uid -> ring
    agent: str | None = None  # the agent the caller talks (or last talked) to
    first_answer: float | None = None
    abandoned: bool = False
    gave_up_ringing: bool = False  # a ring ended by the caller (DialEnd CANCEL)
    transfer: _Transfer | None = None  # a blind transfer not yet resolved
    transferred_out: bool = False
    customer_legs: set[str] = field(default_factory=set)
    ended: bool = False
    presentation: str = "allowed"  # PRESENTATIONS: "restricted" once any leg says so
    hidden: tuple[str | None, str | None] = (None, None)  # a restricted caller's number and name, if kept
    caller_leaving: bool = False  # a customer leg hung up or was asked to: rings it cancels are abandoned


@dataclass(slots=True, eq=False)
class _Channel:
    uid: str
    name: str
    linkedid: str
    seen: int  # event sequence number of the last event about it (resync)
    created: float
    restricted: bool = False
    upstream: str | None = None  # who created it: the dialer, or the ;1 of a Local pair
    peer: str | None = None  # the other half of a Local pair
    role: str | None = None
    agent: str | None = None
    call: _Call | None = None
    bridge: str | None = None


class CallTracker:
    """Feed AMI events in stream order with :meth:`feed`; get call events back.

    ``clock`` is used only for events without a ``Timestamp`` header and for
    resync; tests pass a fake one."""

    def __init__(
        self,
        agents: AgentResolver | None = None,
        *,
        clock: Callable[[], float] | None = None,
        max_call_age: float = 6 * 3600.0,
        honor_presentation: bool = True,
        keep_restricted: bool = False,
    ):
        import time

        self._agents = agents or AgentResolver()
        self._honor_presentation = honor_presentation
        self._keep_restricted = keep_restricted
        self._clock = clock or time.time
        self._max_call_age = max_call_age
        self._channels: dict[str, _Channel] = {}
        self._calls: dict[str, _Call] = {}
        self._member_of: dict[str, str] = {}  # agent leg uid -> queue member interface (AgentCalled)
        self._seq = 0
        self._last_ts = 0.0  # the newest AMI Timestamp seen
        self._outage_from: float | None = None  # when the link was lost, at the resync after it
        self._down_at: float | None = None  # the clock when the link was seen to drop
        self._resync_from: int | None = None
        self._out: list[CallEvent] = []
        self._handlers: dict[str, Callable[[AmiMessage, float], None]] = {
            "Newchannel": self._on_newchannel,
            "NewCallerid": self._on_newcallerid,
            "LocalBridge": self._on_localbridge,
            "Rename": self._on_rename,
            "QueueCallerJoin": self._on_queue_join,
            "QueueCallerLeave": self._on_queue_leave,
            "QueueCallerAbandon": self._on_queue_abandon,
            "AgentCalled": self._on_agent_called,
            "DialBegin": self._on_dial_begin,
            "DialEnd": self._on_dial_end,
            "AgentConnect": self._on_agent_connect,
            "BridgeEnter": self._on_bridge_enter,
            "BlindTransfer": self._on_blind_transfer,
            "AttendedTransfer": self._on_attended_transfer,
            "HangupRequest": self._on_hangup_request,
            "Hangup": self._on_hangup,
        }

    # ---------------------------------------------------------------- feeding

    @property
    def events_read(self) -> frozenset[str]:
        """The AMI events :meth:`feed` acts on: the link need not parse the others."""
        return frozenset(self._handlers)

    def feed(self, event: AmiMessage) -> list[CallEvent]:
        handler = self._handlers.get(event.get("Event", ""))
        if handler is None:
            return []
        self._seq += 1
        ts = self._timestamp(event)
        if ts > self._last_ts:
            self._last_ts = ts
        if self._seq % 10000 == 0:
            self.expire(ts)
        try:
            handler(event, ts)
        except (KeyError, ValueError) as exc:
            # A malformed event (missing Uniqueid, non-numeric Position …) is
            # dropped on its own; the calls around it carry on.
            log.warning("ami event ignored event=%s reason=%s:%s", event.get("Event"), type(exc).__name__, exc)
        out, self._out = self._out, []
        return out

    def _timestamp(self, event: AmiMessage) -> float:
        raw = event.get("Timestamp")
        if raw:
            try:
                value = float(raw)
            except ValueError:
                pass
            else:
                if math.isfinite(value):  # "inf", "nan": a garbled header, not a time
                    return value
        return self._clock()

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    @property
    def tracked_channels(self) -> int:
        return len(self._channels)

    def call_ids(self) -> list[str]:
        return list(self._calls)

    # --------------------------------------------------------------- channels

    def _channel(self, event: AmiMessage, prefix: str = "") -> _Channel:
        """The channel an event is about, created if the stream began after it."""
        uid = event[prefix + "Uniqueid"]
        channel = self._channels.get(uid)
        if channel is None:
            channel = _Channel(
                uid=uid,
                name=event.get(prefix + "Channel", ""),
                linkedid=event.get(prefix + "Linkedid") or uid,
                seen=self._seq,
                created=self._timestamp(event),
            )
            self._channels[uid] = channel
        else:
            channel.seen = self._seq
        return channel

    def _on_newchannel(self, event: AmiMessage, ts: float) -> None:
        self._channel(event)

    def _on_newcallerid(self, event: AmiMessage, ts: float) -> None:
        channel = self._channel(event)
        channel.restricted = _restricted(event.get("CID-CallingPres", ""))
        if channel.restricted and channel.call is not None and not channel.call.ended:
            self._restrict(channel.call, ts, tell=True)

    def _is_restricted(self, channel: _Channel) -> bool:
        """Asterisk marks a withheld caller on the legs it dials (the agent
        legs report ``CID-CallingPres: 35``), not on the caller's own channel."""
        if not self._honor_presentation:
            return False
        peer = self._channels.get(channel.peer) if channel.peer else None
        return channel.restricted or (peer is not None and peer.restricted)

    def _restrict(self, call: _Call, ts: float, *, tell: bool) -> None:
        """The caller's identity must be hidden from now on.  Events already
        out carried the number (``call.queued`` comes before any agent leg
        exists), so with ``tell`` the rings in progress are announced again
        as restricted: every consumer scrubs the call on that key."""
        if not self._honor_presentation or call.presentation == "restricted":
            return
        if self._keep_restricted and call.hidden == (None, None):
            call.hidden = (call.caller_number, call.caller_name)
        call.presentation, call.caller_number, call.caller_name = "restricted", None, None
        log.info("caller restricted call_id=%s", call.call_id)
        if tell:
            for ring in call.rings.values():
                self._emit(CallRinging(call.call_id, iso_utc(ts), ring.agent, ring.queue, None, None, "restricted", *call.hidden))

    def _on_rename(self, event: AmiMessage, ts: float) -> None:
        channel = self._channel(event)
        channel.name = event.get("Newname", channel.name)

    def _on_localbridge(self, event: AmiMessage, ts: float) -> None:
        one = self._channel(event, "LocalOne")
        two = self._channel(event, "LocalTwo")
        one.peer, two.peer = two.uid, one.uid
        two.upstream = one.uid
        for known, other in ((one, two), (two, one)):
            if known.call is not None and other.call is None:
                self._adopt(other, known.role, known.call, known.agent)

    def _adopt(self, channel: _Channel, role: str | None, call: _Call, agent: str | None = None) -> None:
        channel.role, channel.call, channel.agent = role, call, agent
        if role == "customer":
            call.customer_legs.add(channel.uid)
        peer = self._channels.get(channel.peer) if channel.peer else None
        if peer is not None and peer.call is None:
            self._adopt(peer, role, call, agent)

    def _origin_is_agent(self, channel: _Channel) -> bool:
        """Whether this channel was started by an agent (an internal or outbound call)."""
        for _ in range(MAX_UPSTREAM_HOPS):
            if channel.role in ("agent", "consult") or self._agents.agent_of(channel.name):
                return True
            if channel.upstream is None or channel.upstream not in self._channels:
                return False
            channel = self._channels[channel.upstream]
        return False

    def _claim_customer(self, channel: _Channel, call: _Call) -> None:
        """The caller's channel, and everything upstream of it, is the customer side."""
        for _ in range(MAX_UPSTREAM_HOPS):
            if channel.call is None:
                self._adopt(channel, "customer", call)
            if channel.upstream is None or channel.upstream not in self._channels:
                return
            channel = self._channels[channel.upstream]

    def _caller_id(self, channel: _Channel, event: AmiMessage) -> tuple[str | None, str | None, str]:
        number, name = event.get("CallerIDNum"), event.get("CallerIDName")
        number = None if _withheld(number) else number.strip()
        name = None if _withheld(name) else name.strip()
        if self._is_restricted(channel):
            return number, name, "restricted"  # _start_call keeps them only where configured
        return number, name, ("allowed" if number else "unavailable")

    def _start_call(self, channel: _Channel, event: AmiMessage, ts: float) -> _Call:
        number, name, presentation = self._caller_id(channel, event)
        call = self._calls.get(channel.linkedid)
        if call is not None and not call.ended:
            return call
        hidden = (None, None)
        if presentation == "restricted":
            hidden = (number, name) if self._keep_restricted else (None, None)
            number = name = None
        call = _Call(channel.linkedid, number, name, started=ts, waiting_since=ts, touched=ts, presentation=presentation,
                     hidden=hidden)
        self._calls[call.call_id] = call
        self._claim_customer(channel, call)
        # The caller has waited since their first channel appeared.
        call.started = call.waiting_since = min(self._channels[uid].created for uid in call.customer_legs)
        log.debug("call tracked call_id=%s caller=%s channel=%s", call.call_id, number, channel.name)
        return call

    # ------------------------------------------------------------------ queue

    def _on_queue_join(self, event: AmiMessage, ts: float) -> None:
        channel = self._channel(event)
        queue = event["Queue"]
        call = channel.call if channel.role == "customer" else None
        if call is None:
            if channel.call is not None or self._origin_is_agent(channel):
                return  # an agent calling a queue: internal
            call = self._start_call(channel, event, ts)
        if call.ended or call.queue == queue:
            return  # a duplicate
        if call.transfer is not None:
            self._emit(CallTransferred(call.call_id, iso_utc(call.transfer.ts), call.transfer.from_agent, to_queue=queue))
            call.transfer = None
        call.queue, call.was_queued, call.waiting_since, call.touched = queue, True, ts, ts
        position = event.get("Position", "")
        self._emit(
            CallQueued(call.call_id, iso_utc(ts), queue, call.caller_number, call.caller_name,
                       int(position) if position.isdigit() else None, call.presentation, *call.hidden)
        )

    def _on_queue_leave(self, event: AmiMessage, ts: float) -> None:
        channel = self._channels.get(event["Uniqueid"])
        if channel is not None and channel.call is not None and channel.call.queue == event.get("Queue"):
            channel.call.queue = None

    def _on_queue_abandon(self, event: AmiMessage, ts: float) -> None:
        channel = self._channels.get(event["Uniqueid"])
        call = channel.call if channel is not None else None
        if call is None or call.ended or call.abandoned or call.first_answer is not None:
            return
        self._miss_all(call, ts, "abandoned")
        call.abandoned = True
        self._emit(CallAbandoned(call.call_id, iso_utc(ts), event.get("Queue") or call.queue, self._seconds(ts - call.waiting_since)))

    def _on_agent_called(self, event: AmiMessage, ts: float) -> None:
        caller = self._channel(event)
        self._member_of[event["DestUniqueid"]] = event.get("Interface", "")
        if caller.role == "customer" and caller.call is not None:
            dest = self._channel(event, "Dest")
            agent = self._agents.agent_of(event.get("Interface")) or self._agents.agent_of(dest.name)
            if agent:
                self._ring(caller.call, dest, agent, event.get("Queue") or caller.call.queue, ts)

    # ---------------------------------------------------------------- dialing

    def _on_dial_begin(self, event: AmiMessage, ts: float) -> None:
        if "Uniqueid" not in event:
            return  # an Originate's own dial: no calling channel
        src = self._channel(event)
        dest = self._channel(event, "Dest")
        if dest.upstream is None:
            dest.upstream = src.uid
        interface = self._member_of.pop(dest.uid, None)
        agent = self._agents.agent_of(interface) or self._agents.agent_of(dest.name)
        call = src.call or self._join_call(src, event, agent, ts)
        if call is None or call.ended or dest.call is not None:
            return  # not a customer call, or a duplicate of a dial already placed
        is_local = dest.name.startswith("Local/")
        if src.role == "customer":
            if agent:
                self._ring(call, dest, agent, call.queue, ts)
            elif not is_local and (call.transfer is not None or call.first_answer is not None):
                self._transfer_out(call, dest, event, ts)
            else:
                self._adopt(dest, "customer", call)  # a hop through the dialplan
        elif src.role == "agent" and (agent == src.agent or (agent is None and is_local) or call.agent != src.agent):
            self._adopt(dest, "agent", call, src.agent)  # the agent's own phone behind its leg
        else:
            self._consult(call, src, dest, agent)

    def _join_call(self, src: _Channel, event: AmiMessage, agent: str | None, ts: float) -> _Call | None:
        """A dial from a channel that belongs to no call yet."""
        call = self._calls.get(src.linkedid)
        if call is not None and call.first_answer is not None:
            # Spawned inside an answered call, not by the caller: the transfer
            # machinery of an attended transfer (Local/1002@transfer-…).
            self._adopt(src, "consult", call)
            return call
        if agent is None or self._origin_is_agent(src):
            return None  # not towards an agent, or an agent's own internal/outbound call
        if call is None:
            return self._start_call(src, event, ts)  # a direct call to an agent
        self._claim_customer(src, call)
        return call

    def _consult(self, call: _Call, src: _Channel, dest: _Channel, agent: str | None) -> None:
        """An agent on the call dials someone (attended transfer).  No event
        yet; the legs remember which agent they reach, for AttendedTransfer."""
        self._adopt(dest, "consult", call, agent)
        channel: _Channel | None = src
        for _ in range(MAX_UPSTREAM_HOPS):
            if channel is None or channel.role != "consult" or channel.agent is not None or agent is None:
                return
            channel.agent = agent
            peer = self._channels.get(channel.peer) if channel.peer else None
            if peer is not None and peer.role == "consult" and peer.agent is None:
                peer.agent = agent
            channel = self._channels.get(channel.upstream) if channel.upstream else None

    def _ring(self, call: _Call, dest: _Channel, agent: str, queue: str | None, ts: float) -> None:
        if dest.call is not None:
            return  # AgentCalled and DialBegin both announce the same ring
        if call.transfer is not None:
            self._emit(CallTransferred(call.call_id, iso_utc(call.transfer.ts), call.transfer.from_agent, to_agent=agent))
            call.waiting_since, call.transfer = call.transfer.ts, None
        self._adopt(dest, "agent", call, agent)
        if self._is_restricted(dest):
            self._restrict(call, ts, tell=True)  # the rings before this one are told again
        call.rings[dest.uid] = _Ring(agent, queue)
        call.touched = ts
        self._emit(CallRinging(call.call_id, iso_utc(ts), agent, queue, call.caller_number, call.caller_name, call.presentation,
                               *call.hidden))

    def _on_dial_end(self, event: AmiMessage, ts: float) -> None:
        dest = self._channels.get(event.get("DestUniqueid", ""))
        if dest is None or dest.call is None or dest.uid not in dest.call.rings:
            return
        status = event.get("DialStatus")
        if status == "ANSWER":
            self._answer(dest.call, dest.uid, ts)
            return
        call = dest.call
        if status == "CANCEL":
            call.gave_up_ringing = True
            reason = self._cancel_reason(call)
        else:
            call.gave_up_ringing = False
            reason = DIAL_STATUS_REASONS.get(status or "", "no-answer")
        self._miss(call, dest.uid, ts, reason)

    @staticmethod
    def _cancel_reason(call: _Call) -> str:
        """Asterisk cancels a ring when another agent answered, when the
        caller hangs up (the caller's HangupRequest comes just before), or
        when the queue stops ringing for its own reasons."""
        if call.first_answer is not None:
            return "answered-elsewhere"
        if call.caller_leaving:
            return "abandoned"
        return "cancelled"

    def _on_agent_connect(self, event: AmiMessage, ts: float) -> None:
        # Normally DialEnd ANSWER came first; this covers a lost DialEnd.
        dest = self._channels.get(event.get("DestUniqueid", ""))
        if dest is not None and dest.call is not None and dest.uid in dest.call.rings:
            self._answer(dest.call, dest.uid, ts)

    def _on_bridge_enter(self, event: AmiMessage, ts: float) -> None:
        # A ringing leg bridged with its caller was answered, whether or not
        # the DialEnd made it to us.
        channel = self._channels.get(event.get("Uniqueid", ""))
        if channel is None or channel.call is None or channel.call.ended:
            return
        channel.bridge = event.get("BridgeUniqueid")
        call = channel.call
        if not any(self._channels[uid].bridge == channel.bridge for uid in call.customer_legs if uid in self._channels):
            return
        for leg in list(call.rings):
            partner = self._channels.get(leg)
            if partner is not None and partner.bridge == channel.bridge:
                self._answer(call, leg, ts)

    def _answer(self, call: _Call, leg: str, ts: float) -> None:
        ring = call.rings.pop(leg)
        call.agent, call.touched = ring.agent, ts
        if call.first_answer is None:
            call.first_answer = ts
        self._emit(CallAnswered(call.call_id, iso_utc(ts), ring.agent, ring.queue, self._seconds(ts - call.waiting_since)))

    def _miss(self, call: _Call, leg: str, ts: float, reason: str) -> None:
        ring = call.rings.pop(leg)
        self._emit(CallMissed(call.call_id, iso_utc(ts), ring.agent, reason))

    def _miss_all(self, call: _Call, ts: float, reason: str) -> None:
        for leg in list(call.rings):
            self._miss(call, leg, ts, reason)

    # -------------------------------------------------------------- transfers

    def _on_blind_transfer(self, event: AmiMessage, ts: float) -> None:
        if event.get("Result", "Success") != "Success":
            return
        transferee = self._channels.get(event.get("TransfereeUniqueid", ""))
        transferer = self._channels.get(event.get("TransfererUniqueid", ""))
        call = self._call_of(transferee, transferer)
        if call is None:
            return
        from_agent = transferer.agent if transferer is not None and transferer.role == "agent" else call.agent
        call.transfer = _Transfer(from_agent, event.get("Extension") or None, ts)
        call.touched = ts

    def _on_attended_transfer(self, event: AmiMessage, ts: float) -> None:
        if event.get("Result", "Success") != "Success":
            return
        transferee = self._channels.get(event.get("TransfereeUniqueid", ""))
        transferer = self._channels.get(event.get("OrigTransfererUniqueid", ""))
        call = self._call_of(transferee, transferer)
        if call is None:
            return
        from_agent = transferer.agent if transferer is not None and transferer.role == "agent" else call.agent
        if not event.get("TransferTargetUniqueid"):
            # Transferred to a dialplan application: resolved like a blind one.
            call.transfer = _Transfer(from_agent, event.get("DestApp") or None, ts)
            return
        target = self._channel(event, "TransferTarget")
        agent = target.agent or self._agents.agent_of(target.name)
        if target.role == "agent" and target.call is call and call.agent == agent:
            return  # a duplicate
        if agent is None:
            number = event.get("TransferTargetConnectedLineNum") or event.get("TransferTargetCallerIDNum") or target.name
            self._emit(CallTransferred(call.call_id, iso_utc(ts), from_agent, to_number=number))
            call.transferred_out = True
            return
        target.role, target.call, target.agent = "agent", call, agent
        peer = self._channels.get(target.peer) if target.peer else None
        if peer is not None:
            peer.role, peer.call, peer.agent = "agent", call, agent
        call.agent, call.touched = agent, ts
        if call.first_answer is None:
            call.first_answer = ts
        self._emit(CallTransferred(call.call_id, iso_utc(ts), from_agent, to_agent=agent))

    def _transfer_out(self, call: _Call, dest: _Channel, event: AmiMessage, ts: float) -> None:
        from_agent = call.transfer.from_agent if call.transfer is not None else call.agent
        number = (call.transfer.target if call.transfer is not None else None) or event.get("DestCallerIDNum") or dest.name
        call.transfer = None
        call.transferred_out = True
        self._adopt(dest, "external", call)
        self._emit(CallTransferred(call.call_id, iso_utc(ts), from_agent, to_number=number))

    def _call_of(self, *channels: _Channel | None) -> _Call | None:
        for channel in channels:
            if channel is not None and channel.call is not None and not channel.call.ended:
                return channel.call
        return None

    # ---------------------------------------------------------------- hangups

    def _on_hangup_request(self, event: AmiMessage, ts: float) -> None:
        channel = self._channels.get(event.get("Uniqueid", ""))
        if channel is not None and channel.role == "customer" and channel.call is not None:
            channel.call.caller_leaving = True

    def _on_hangup(self, event: AmiMessage, ts: float) -> None:
        self._hangup(event["Uniqueid"], ts)

    def _hangup(self, uid: str, ts: float) -> None:
        channel = self._channels.pop(uid, None)
        self._member_of.pop(uid, None)
        if channel is None:
            return
        if channel.peer and channel.peer in self._channels:
            self._channels[channel.peer].peer = None
        call = channel.call
        if call is None or call.ended:
            return
        if uid in call.rings:
            self._miss(call, uid, ts, self._cancel_reason(call) if call.caller_leaving or call.first_answer else "no-answer")  # died without a DialEnd
        if channel.role == "customer":
            call.caller_leaving = call.caller_leaving or call.first_answer is None
            call.customer_legs.discard(uid)
            if not call.customer_legs:
                self._end(call, ts)

    def _end(self, call: _Call, ts: float) -> None:
        if call.rings:
            call.gave_up_ringing = True  # the caller hung up on ringing phones
            self._miss_all(call, ts, "abandoned")
        if call.transfer is not None:
            self._emit(CallTransferred(call.call_id, iso_utc(ts), call.transfer.from_agent, to_number=call.transfer.target))
            call.transferred_out, call.transfer = True, None
        if call.transferred_out:
            reason = "transferred-out"
        elif call.first_answer is not None:
            reason = "completed"
        elif call.abandoned:
            reason = "abandoned"
        elif not call.was_queued and call.gave_up_ringing:
            reason = "abandoned"
            self._emit(CallAbandoned(call.call_id, iso_utc(ts), None, self._seconds(ts - call.waiting_since)))
        else:
            reason = "unanswered"
        talk = self._seconds(ts - call.first_answer) if call.first_answer is not None else 0.0
        call.ended = True
        self._calls.pop(call.call_id, None)
        self._emit(CallEnded(call.call_id, iso_utc(ts), call.agent, reason, talk))

    # ------------------------------------------------------------------ resync

    def link_down(self) -> None:
        """The link dropped (an Asterisk that crashed takes its calls down
        now, whatever the last event said)."""
        self._down_at = self._clock()

    def link_up(self) -> None:
        """The AMI link is back: until the snapshot arrives, every channel we
        know is suspect; any event about one proves it still exists."""
        self._resync_from = self._seq + 1
        self._outage_from = max(self._last_ts, self._down_at or 0.0) or None
        self._down_at = None

    def resync(self, snapshot: Snapshot, now: float | None = None) -> list[CallEvent]:
        """Reconcile with Asterisk's own view after a reconnect.

        Channels that vanished during the outage are hung up (their calls end,
        their rings become missed); callers found waiting in a queue and calls
        found connected to an agent are taken up.  Calls we already knew are
        neither lost nor reported twice."""
        now = self._clock() if now is None else now
        since = self._resync_from if self._resync_from is not None else self._seq + 1
        self._resync_from = None
        live = {entry["Uniqueid"]: entry for entry in snapshot.channels if entry.get("Uniqueid")}
        gone = [c for c in self._channels.values() if c.uid not in live and c.seen < since]
        gone.sort(key=lambda c: c.role == "customer")  # agent legs first: rings end before calls
        # When did they go?  Somewhere between the last event we saw and now.
        # An Asterisk that crashed or restarted took them down with the link
        # (the last event is right); a call that ended during a network cut is
        # corrected from Asterisk's own records (screenpop.reconcile).
        went = min(now, self._outage_from) if self._outage_from else now
        for channel in gone:
            self._hangup(channel.uid, went)
        for entry in live.values():
            # A channel first seen now began Duration ago (whole seconds):
            # the call's start, its rings and waits keep Asterisk's times.
            self._channel({**entry, "Timestamp": str(now - _duration(entry))}).seen = self._seq
        for entry in snapshot.queue_entries:
            if entry.get("Uniqueid") in live:
                wait = float(entry.get("Wait") or 0)
                self._on_queue_join({**live[entry["Uniqueid"]], **entry, "Event": "QueueCallerJoin"}, now - wait)
        self._resync_bridges(live, now)
        self._resync_rings(live, now)
        self._outage_from = None
        out, self._out = self._out, []
        return out

    def _answered_since(self, leg: _Channel, now: float) -> float:
        """When a leg found bridged was answered: not before it rang, nor
        before the last event we saw (we would have seen it); the rest is for
        the reconciliation with Asterisk's own records (telephony.cel)."""
        return min(now, max(leg.created, self._outage_from or leg.created))

    def _resync_rings(self, live: dict[str, AmiMessage], now: float) -> None:
        """Agent legs still ringing at the snapshot ring the agent's screen now."""
        for uid, entry in live.items():
            leg = self._channels[uid]
            agent = self._agents.agent_of(leg.name)
            call = self._calls.get(leg.linkedid)
            if (agent is None or entry.get("BridgeId") or leg.call is not None or call is None or call.ended
                    or call.first_answer is not None or any(r.agent == agent for r in call.rings.values())):
                continue
            if entry.get("ChannelStateDesc", "Ringing") not in ("Ringing", "Ring", "Down"):
                continue
            self._ring(call, leg, agent, call.queue, leg.created)

    def _resync_bridges(self, live: dict[str, AmiMessage], now: float) -> None:
        bridges: dict[str, list[_Channel]] = {}
        for uid, entry in live.items():
            if entry.get("BridgeId"):
                bridges.setdefault(entry["BridgeId"], []).append(self._channels[uid])
        for members in bridges.values():
            agents = [c for c in members if (c.role == "agent" or c.role is None) and (c.agent or self._agents.agent_of(c.name))]
            callers = [c for c in members if c.role == "customer" or (c.role is None and not self._agents.agent_of(c.name))]
            if len(agents) != 1 or len(callers) != 1:
                continue
            leg, caller = agents[0], callers[0]
            agent = leg.agent or self._agents.agent_of(leg.name)
            call = caller.call
            if call is None:
                call = self._start_call(caller, live[caller.uid], caller.created)
                queue = _queue_of(live[caller.uid])
                if queue:  # answered from a queue while we were away
                    self._on_queue_join({**live[caller.uid], "Event": "QueueCallerJoin", "Queue": queue}, call.started)
            answered = self._answered_since(leg, now)
            if leg.uid in call.rings:
                self._answer(call, leg.uid, answered)
            elif call.agent != agent or call.first_answer is None:
                self._ring(call, leg, agent, call.queue, leg.created)
                self._answer(call, leg.uid, answered)
            call.queue = None  # talking, not waiting

    # ------------------------------------------------------------------ memory

    def expire(self, now: float) -> None:
        """Forget calls and channels whose hang-up never arrived, so memory
        stays bounded even when events are lost."""
        horizon = now - self._max_call_age
        for call in [c for c in self._calls.values() if c.touched < horizon]:
            log.warning("call expired call_id=%s idle_seconds=%.0f", call.call_id, now - call.touched)
            for uid in list(call.customer_legs):
                self._hangup(uid, now)
            if not call.ended:
                self._end(call, now)
        for uid in [c.uid for c in self._channels.values() if c.created < horizon and (c.call is None or c.call.ended)]:
            self._channels.pop(uid, None)
        if len(self._member_of) > 10000:
            self._member_of.clear()

    # ----------------------------------------------------------------- helpers

    def _emit(self, event: CallEvent) -> None:
        self._out.append(event)

    @staticmethod
    def _seconds(value: float) -> float:
        return round(max(value, 0.0), 3)


def _duration(entry: AmiMessage) -> float:
    """``CoreShowChannel`` ``Duration: 00:01:05`` -> 65.0 (0 when absent)."""
    parts = (entry.get("Duration") or "").split(":")
    try:
        hours, minutes, seconds = (int(p) for p in parts) if len(parts) == 3 else (0, 0, 0)
    except ValueError:
        return 0.0
    return float(hours * 3600 + minutes * 60 + seconds)


def _queue_of(entry: AmiMessage) -> str | None:
    """The queue a channel is in by its application (``Queue``, ``support,t,,,90``)."""
    if (entry.get("Application") or "").lower() != "queue":
        return None
    return (entry.get("ApplicationData") or "").split(",", 1)[0].strip() or None
