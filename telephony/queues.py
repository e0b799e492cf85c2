"""Live queue and agent state from AMI.  Pure code, no I/O.

Why a second consumer of the AMI stream next to the tracker: the tracker
follows *calls*; supervisors also need what no call event says — who is a
queue member, device state, pauses with their reason, callers waiting in
order.  :class:`QueueMonitor` is fed, in stream order, the raw AMI events
(:meth:`feed`), the tracker's call events (:meth:`call_event`) and the link's
snapshot after every (re)connect (:meth:`resync`).  Out come plain dataclasses
with agent ids and epoch times; no AMI field name leaks past this module.

Where each part of an agent's state comes from:

* membership, device status, pause and its reason: queue member events
  (``QueueMemberStatus/Added/Removed/Pause``) and ``QueueMember`` of the snapshot;
* ringing and on a call: ``AgentCalled/Connect/Complete/RingNoAnswer/Dump``
  for queue calls *and* the call events (direct calls, transfers, rings lost to
  another agent, which app_queue does not announce).  Both are keyed by
  (agent, call id), so hearing a fact twice changes nothing;
* wrap-up: begins when an agent's answered call ends for them; ends when the
  owner says so (:meth:`end_wrap_up`: the outcome was saved) or after
  ``wrap_up_max`` seconds (:meth:`tick`).

How those parts make the state an agent is shown in, and the queues' member
counts, is :class:`~telephony.queue_model.QueueModel`'s job (this class's
base): this module translates AMI, the model holds no AMI field name.

Each feeding method returns a :class:`Changes` naming the queues and agents
whose view changed, so the caller pushes only those.
"""
from __future__ import annotations

import logging
from datetime import datetime
from telephony.agents import AgentResolver
from telephony.events import CallAnswered, CallEnded, CallEvent, CallMissed, CallQueued, CallRinging, CallTransferred
from telephony.link import Snapshot
from telephony.protocol import AmiMessage
from telephony.queue_model import MEMBER_STATES  # noqa: F401  (re-exported: the supervision tests import it from here)
from telephony.queue_model import ON_CALL, RINGING, Changes, Member, QueueModel, QueueState, WaitingCaller
from telephony.tracker import WITHHELD

log = logging.getLogger(__name__)

# app_queue's member Status (AST_DEVICE_*)
DEVICE_STATES = {0: "unknown", 1: "not_in_use", 2: "in_use", 3: "busy", 4: "invalid", 5: "unavailable",
                 6: "ringing", 7: "ring_in_use", 8: "on_hold"}


def _caller_value(value: str | None) -> str | None:
    return None if value is None or value.strip().lower() in WITHHELD else value.strip()


class QueueMonitor(QueueModel):
    """The model fed from the PBX: AMI events, the tracker's call events and
    the snapshot after a reconnect."""

    def __init__(self, agents: AgentResolver | None = None, *, wrap_up_max: float = 120.0):
        super().__init__(wrap_up_max=wrap_up_max)
        self._agents = agents or AgentResolver()
        self._callers: dict[str, tuple[str | None, str | None]] = {}  # call id -> caller as the tracker saw it
        self._handlers = {
            "QueueMemberStatus": self._on_member, "QueueMemberAdded": self._on_member,
            "QueueMemberRemoved": self._on_member_removed, "QueueMemberPause": self._on_pause,
            "QueueMemberPaused": self._on_pause,
            "QueueCallerJoin": self._on_join, "QueueCallerLeave": self._on_leave, "QueueCallerAbandon": self._on_abandon,
            "AgentCalled": self._on_agent_called, "AgentConnect": self._on_agent_connect,
            "AgentComplete": self._on_agent_done, "AgentRingNoAnswer": self._on_agent_done,
            "AgentDump": self._on_agent_done,
        }

    # ------------------------------------------------------------ feeding

    @property
    def events_read(self) -> frozenset[str]:
        """The AMI events :meth:`feed` acts on: the link need not parse the others."""
        return frozenset(self._handlers)

    def feed(self, event: AmiMessage) -> Changes:
        handler = self._handlers.get(event.get("Event", ""))
        changes = Changes()
        if handler is None:
            return changes
        ts = self._ts(event)
        try:
            handler(event, ts, changes)
        except (KeyError, ValueError) as exc:
            log.warning("queue event ignored event=%s reason=%s:%s", event.get("Event"), type(exc).__name__, exc)
        self._settle(changes, ts)
        return changes

    def call_event(self, event: CallEvent) -> Changes:
        """What the tracker concluded: rings and answers of every kind of call."""
        changes = Changes()
        ts = _epoch(event.ts) or self.last_ts
        self.last_ts = max(self.last_ts, ts)
        if isinstance(event, CallQueued):
            self._set_caller(event.call_id, event.caller_number, event.caller_name, changes)
        elif isinstance(event, CallRinging):
            if event.presentation == "restricted":  # learnt from the agent legs: hide what QueueCallerJoin showed
                self._set_caller(event.call_id, None, None, changes)
            self._set_activity(event.agent, event.call_id, RINGING, event.queue, ts, changes)
        elif isinstance(event, CallMissed):
            self._drop_activity(event.agent, event.call_id, ts, changes)
        elif isinstance(event, CallAnswered):
            self._set_activity(event.agent, event.call_id, ON_CALL, event.queue, ts, changes)
        elif isinstance(event, CallTransferred):
            if event.from_agent:
                self._drop_activity(event.from_agent, event.call_id, ts, changes)
        elif isinstance(event, CallEnded):
            self._callers.pop(event.call_id, None)
            for agent in list(self._call_agents.get(event.call_id, ())):
                self._drop_activity(agent, event.call_id, ts, changes)
        self._settle(changes, ts)
        return changes

    def _set_caller(self, call_id: str, number: str | None, name: str | None, changes: Changes) -> None:
        """The caller as the tracker concluded (withheld, restricted), over
        what the queue's own events carried."""
        self._callers[call_id] = (number, name)
        for q in self._queues.values():
            for w in q.waiting:
                if w.call_id == call_id and (w.caller_number, w.caller_name) != (number, name):
                    w.caller_number, w.caller_name = number, name
                    changes.queues.add(q.name)

    def resync(self, snapshot: Snapshot, now: float) -> Changes:
        """Asterisk's own lists after a (re)connect replace what we believed:
        members, pauses, device states and callers waiting; calls whose
        channels are gone no longer ring or talk."""
        changes = Changes(set(self._queues), set(self.agent_ids()))
        self.last_ts = max(self.last_ts, now)
        linked = {c.get("Uniqueid"): c.get("Linkedid") or c.get("Uniqueid") for c in snapshot.channels}
        live_calls = set(linked.values())
        queues: dict[str, QueueState] = {}
        for params in snapshot.queue_params:
            name = params.get("Queue")
            if name:
                old = self._queues.get(name)
                queues[name] = QueueState(name, joined=old.joined if old else 0, answered=old.answered if old else 0,
                                      abandoned=old.abandoned if old else 0)
        for entry in snapshot.queue_members:
            agent = self._agent_of(entry.get("StateInterface"), entry.get("Location"), entry.get("Interface"))
            name = entry.get("Queue")
            if agent is None or not name:
                continue
            q = queues.setdefault(name, QueueState(name))
            q.members[agent] = self._member_from(entry, agent, entry.get("Name") or entry.get("MemberName"))
            self._device[agent] = (_device(entry.get("Status")), now)
        for entry in sorted(snapshot.queue_entries, key=lambda e: (e.get("Queue", ""), _int(e.get("Position"), 0))):
            name, uid = entry.get("Queue"), entry.get("Uniqueid")
            if not name or not uid:
                continue
            q = queues.setdefault(name, QueueState(name))
            known = next((w for w in self._queues[name].waiting if w.uniqueid == uid), None) if name in self._queues else None
            if known is not None:  # its join time to the microsecond, not Wait's whole seconds
                q.waiting.append(known)
                continue
            call_id = linked.get(uid) or uid
            number, caller = self._callers.get(call_id, (_caller_value(entry.get("CallerIDNum")), _caller_value(entry.get("CallerIDName"))))
            q.waiting.append(WaitingCaller(call_id, uid, number, caller, now - float(entry.get("Wait") or 0)))
        self._queues = queues
        for agent, calls in list(self._activity.items()):
            for call_id in [c for c in calls if c not in live_calls]:
                self._drop_activity(agent, call_id, now, changes)
        changes.queues |= set(self._queues)
        changes.agents |= set(self.agent_ids())
        self._settle(changes, now)
        log.info("queue resync queues=%d members=%d waiting=%d", len(self._queues),
                 sum(len(q.members) for q in self._queues.values()), sum(len(q.waiting) for q in self._queues.values()))
        return changes

    # ------------------------------------------------------------ members

    def _on_member(self, event: AmiMessage, ts: float, changes: Changes) -> None:
        agent = self._agent_of(event.get("StateInterface"), event.get("Interface"), event.get("Location"))
        if agent is None:
            return
        q = self._queue_of(event["Queue"])
        q.members[agent] = self._member_from(event, agent, event.get("MemberName"))
        if "Status" in event:
            self._device[agent] = (_device(event.get("Status")), ts)
        self._touch(agent, changes)

    def _member_from(self, event: AmiMessage, agent: str, name: str | None) -> Member:
        if name:
            self._names[agent] = name
        paused = event.get("Paused") == "1"
        reason = (event.get("PausedReason") or event.get("Reason") or "").strip() or None
        return Member(agent, name or self._names.get(agent), paused, reason if paused else None)

    def _on_member_removed(self, event: AmiMessage, ts: float, changes: Changes) -> None:
        agent = self._agent_of(event.get("StateInterface"), event.get("Interface"), event.get("Location"))
        q = self._queues.get(event["Queue"])
        if agent is not None and q is not None and q.members.pop(agent, None) is not None:
            self._touch(agent, changes)

    def _on_pause(self, event: AmiMessage, ts: float, changes: Changes) -> None:
        agent = self._agent_of(event.get("StateInterface"), event.get("Interface"), event.get("Location"))
        if agent is None:
            return
        queues = [self._queue_of(event["Queue"])] if event.get("Queue") else [q for q in self._queues.values() if agent in q.members]
        for q in queues:
            member = q.members.get(agent) or Member(agent, self._names.get(agent))
            update = self._member_from(event, agent, event.get("MemberName") or member.name)
            q.members[agent] = update
        self._touch(agent, changes)

    # ------------------------------------------------------------ callers

    def _on_join(self, event: AmiMessage, ts: float, changes: Changes) -> None:
        q = self._queue_of(event["Queue"])
        uid = event["Uniqueid"]
        if any(w.uniqueid == uid for w in q.waiting):
            return  # a duplicate
        call_id = event.get("Linkedid") or uid
        number, name = self._callers.get(call_id, (_caller_value(event.get("CallerIDNum")), _caller_value(event.get("CallerIDName"))))
        position = _int(event.get("Position"), len(q.waiting) + 1)
        q.waiting.insert(min(max(position - 1, 0), len(q.waiting)), WaitingCaller(call_id, uid, number, name, ts))
        q.joined += 1
        changes.queues.add(q.name)

    def _on_leave(self, event: AmiMessage, ts: float, changes: Changes) -> None:
        q = self._queues.get(event["Queue"])
        if q is None:
            return
        kept = [w for w in q.waiting if w.uniqueid != event["Uniqueid"]]
        if len(kept) != len(q.waiting):
            q.waiting = kept
            changes.queues.add(q.name)

    def _on_abandon(self, event: AmiMessage, ts: float, changes: Changes) -> None:
        q = self._queue_of(event["Queue"])
        q.abandoned += 1
        self._on_leave(event, ts, changes)
        changes.queues.add(q.name)

    # ------------------------------------------------------------ queue calls

    def _queue_call(self, event: AmiMessage) -> tuple[str | None, str, str]:
        """The agent, call and queue an agent event is about.  ``AgentComplete``
        comes without the caller's ``Channel``/``Uniqueid`` when the caller
        hung up first (or after a restart): the agent leg's ``Dest*`` headers
        still name the call."""
        agent = self._agent_of(event.get("Interface"), event.get("DestChannel"))
        call_id = event.get("Linkedid") or event.get("DestLinkedid") or event.get("Uniqueid") or event.get("DestUniqueid")
        if not call_id:
            raise KeyError("Linkedid")
        return agent, call_id, event.get("Queue", "")

    def _on_agent_done(self, event: AmiMessage, ts: float, changes: Changes) -> None:
        try:
            agent, call_id, _ = self._queue_call(event)
        except KeyError:
            # Nothing names the call: the agent's talk in this queue is over.
            agent, call_id = self._agent_of(event.get("Interface"), event.get("MemberName")), None
        if agent is None:
            return
        if call_id is None:
            queue = event.get("Queue") or None
            talking = self._activity.get(agent, {})
            ended = [c for c, a in talking.items() if a.state == ON_CALL and (queue is None or a.queue == queue)]
        else:
            ended = [call_id]
        for current in ended:
            self._drop_activity(agent, current, ts, changes)

    def _on_agent_called(self, event: AmiMessage, ts: float, changes: Changes) -> None:
        agent, call_id, queue = self._queue_call(event)
        if agent is not None:
            if event.get("MemberName"):
                self._names.setdefault(agent, event["MemberName"])
            self._set_activity(agent, call_id, RINGING, queue or None, ts, changes)

    def _on_agent_connect(self, event: AmiMessage, ts: float, changes: Changes) -> None:
        agent, call_id, queue = self._queue_call(event)
        if queue in self._queues:
            self._queues[queue].answered += 1
            changes.queues.add(queue)
        if agent is not None:
            self._set_activity(agent, call_id, ON_CALL, queue or None, ts, changes)


    # ------------------------------------------------------------ helpers

    def _agent_of(self, *names: str | None) -> str | None:
        for name in names:
            agent = self._agents.agent_of(name)
            if agent:
                return agent
        return None

    def _ts(self, event: AmiMessage) -> float:
        raw = event.get("Timestamp")
        try:
            ts = float(raw) if raw else self.last_ts
        except ValueError:
            ts = self.last_ts
        self.last_ts = max(self.last_ts, ts)
        return ts


def _device(status: str | None) -> str:
    return DEVICE_STATES.get(_int(status, 0), "unknown")


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def _epoch(ts: str) -> float:
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0

