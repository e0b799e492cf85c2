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

Each feeding method returns a :class:`Changes` naming the queues and agents
whose view changed, so the caller pushes only those.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from telephony.agents import AgentResolver
from telephony.events import CallAnswered, CallEnded, CallEvent, CallMissed, CallQueued, CallRinging, CallTransferred
from telephony.link import Snapshot
from telephony.protocol import AmiMessage
from telephony.tracker import WITHHELD

log = logging.getLogger(__name__)

# app_queue's member Status (AST_DEVICE_*)
DEVICE_STATES = {0: "unknown", 1: "not_in_use", 2: "in_use", 3: "busy", 4: "invalid", 5: "unavailable",
                 6: "ringing", 7: "ring_in_use", 8: "on_hold"}
_UNAVAILABLE = {"invalid", "unavailable"}
_RINGING = {"ringing", "ring_in_use"}
_IN_USE = {"in_use", "busy", "on_hold"}

AGENT_STATES = ("available", "ringing", "on_call", "wrap_up", "paused", "unavailable", "logged_out")
RINGING, ON_CALL = "ringing", "on_call"


@dataclass(slots=True)
class Changes:
    queues: set[str] = field(default_factory=set)
    agents: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.queues or self.agents)

    def update(self, other: Changes) -> None:
        self.queues |= other.queues
        self.agents |= other.agents


@dataclass(slots=True)
class WaitingCaller:
    call_id: str
    uniqueid: str
    caller_number: str | None
    caller_name: str | None
    since: float


@dataclass(slots=True)
class Member:
    """An agent's membership of one queue (pause is per queue in app_queue)."""

    agent_id: str
    name: str | None = None
    paused: bool = False
    pause_reason: str | None = None


@dataclass(slots=True)
class Activity:
    """An agent's part in one call: ringing or talking."""

    call_id: str
    state: str  # ringing | on_call
    queue: str | None
    since: float


@dataclass(slots=True)
class WrapUp:
    call_id: str
    queue: str | None
    since: float


@dataclass(slots=True)
class AgentView:
    agent_id: str
    name: str | None
    state: str
    pause_reason: str | None
    since: float
    queues: list[str]
    call_id: str | None  # the call ringing / talking / wrapped up
    call_queue: str | None


@dataclass(slots=True)
class QueueView:
    name: str
    waiting: list[WaitingCaller]  # in queue order
    agents: dict[str, int]  # logged_in and one count per member state
    # since this process started following the PBX (the day's figures come from the interaction log)
    joined: int = 0
    answered: int = 0
    abandoned: int = 0


MEMBER_STATES = tuple(state for state in AGENT_STATES if state != "logged_out")


def _zero_counts() -> dict[str, int]:
    return dict.fromkeys(MEMBER_STATES, 0)


@dataclass(slots=True)
class _Queue:
    name: str
    waiting: list[WaitingCaller] = field(default_factory=list)
    members: dict[str, Member] = field(default_factory=dict)
    joined: int = 0
    answered: int = 0
    abandoned: int = 0
    # Members per state, kept up to date as agents change (``_recount``), so a
    # queue's view is not a walk over its members: ring-all queues of hundreds
    # of agents are rebuilt for supervisors several times a second.
    counts: dict[str, int] = field(default_factory=_zero_counts)
    counted: dict[str, str] = field(default_factory=dict)  # member -> the state it is counted in


def _caller_value(value: str | None) -> str | None:
    return None if value is None or value.strip().lower() in WITHHELD else value.strip()


class QueueMonitor:
    def __init__(self, agents: AgentResolver | None = None, *, wrap_up_max: float = 120.0):
        self._agents = agents or AgentResolver()
        self.wrap_up_max = wrap_up_max
        self._queues: dict[str, _Queue] = {}
        self._device: dict[str, tuple[str, float]] = {}  # agent -> (device state, when reported)
        self._quiet: dict[str, float] = {}  # agent -> when its last tracked call part ended
        self._names: dict[str, str] = {}
        self._activity: dict[str, dict[str, Activity]] = {}  # agent -> call id -> activity
        self._wrap: dict[str, WrapUp] = {}
        # call id -> agents ringing/talking on it, and wrapping it up: a call's
        # agents without a walk over every busy agent (a ring-all call rings
        # hundreds, and every card and call end asks)
        self._call_agents: dict[str, set[str]] = {}
        self._wrap_agents: dict[str, set[str]] = {}
        self._state: dict[str, tuple[str, float]] = {}  # agent -> (published state, since)
        self._callers: dict[str, tuple[str | None, str | None]] = {}  # call id -> caller as the tracker saw it
        self.last_ts = 0.0  # the newest event time seen: "now" for a simulated PBX whose clock runs fast
        self._handlers = {
            "QueueMemberStatus": self._on_member, "QueueMemberAdded": self._on_member,
            "QueueMemberRemoved": self._on_member_removed, "QueueMemberPause": self._on_pause,
            "QueueMemberPaused": self._on_pause,
            "QueueCallerJoin": self._on_join, "QueueCallerLeave": self._on_leave, "QueueCallerAbandon": self._on_abandon,
            "AgentCalled": self._on_agent_called, "AgentConnect": self._on_agent_connect,
            "AgentComplete": self._on_agent_done, "AgentRingNoAnswer": self._on_agent_done,
            "AgentDump": self._on_agent_done,
        }

    # ------------------------------------------------------------ reading

    def queue_names(self) -> list[str]:
        return sorted(self._queues)

    def agent_ids(self) -> list[str]:
        return sorted(set(self._state) | set(self._names) | set(self._device) | set(self._activity) | set(self._wrap))

    def queue(self, name: str) -> QueueView | None:
        q = self._queues.get(name)
        if q is None:
            return None
        return QueueView(name, list(q.waiting), {"logged_in": len(q.members), **q.counts}, q.joined, q.answered, q.abandoned)

    def agent(self, agent_id: str) -> AgentView | None:
        if not any(agent_id in known for known in (self._state, self._names, self._device, self._activity, self._wrap)):
            return None
        state, reason = self._agent_state(agent_id)
        since = self._state.get(agent_id, (state, self.last_ts))[1]
        queues = sorted(q.name for q in self._queues.values() if agent_id in q.members)
        current = self._current_call(agent_id)
        call_id = call_queue = None
        if current is not None:
            call_id, call_queue = current.call_id, current.queue
        elif state == "wrap_up":
            call_id, call_queue = self._wrap[agent_id].call_id, self._wrap[agent_id].queue
        return AgentView(agent_id, self._names.get(agent_id), state, reason, since, queues, call_id, call_queue)

    def involved_in(self, call_id: str) -> tuple[set[str], set[str]]:
        """(queues where the call waits, agents ringing, talking or wrapping up
        on it): from the per-call indexes and the waiting callers, never a walk
        over agents, because it runs for every card of every call."""
        queues = {name for name, q in self._queues.items() if any(w.call_id == call_id for w in q.waiting)}
        agents = set(self._call_agents.get(call_id, ())) | self._wrap_agents.get(call_id, set())
        return queues, agents

    def waiting_call_ids(self) -> set[str]:
        return {w.call_id for q in self._queues.values() for w in q.waiting}

    def wrap_up_of(self, agent_id: str) -> WrapUp | None:
        return self._wrap.get(agent_id)

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
            self._callers[event.call_id] = (event.caller_number, event.caller_name)
            for q in self._queues.values():
                for w in q.waiting:
                    if w.call_id == event.call_id:
                        w.caller_number, w.caller_name = event.caller_number, event.caller_name
                        changes.queues.add(q.name)
        elif isinstance(event, CallRinging):
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

    def resync(self, snapshot: Snapshot, now: float) -> Changes:
        """Asterisk's own lists after a (re)connect replace what we believed:
        members, pauses, device states and callers waiting; calls whose
        channels are gone no longer ring or talk."""
        changes = Changes(set(self._queues), set(self.agent_ids()))
        self.last_ts = max(self.last_ts, now)
        linked = {c.get("Uniqueid"): c.get("Linkedid") or c.get("Uniqueid") for c in snapshot.channels}
        live_calls = set(linked.values())
        queues: dict[str, _Queue] = {}
        for params in snapshot.queue_params:
            name = params.get("Queue")
            if name:
                old = self._queues.get(name)
                queues[name] = _Queue(name, joined=old.joined if old else 0, answered=old.answered if old else 0,
                                      abandoned=old.abandoned if old else 0)
        for entry in snapshot.queue_members:
            agent = self._agent_of(entry.get("StateInterface"), entry.get("Location"), entry.get("Interface"))
            name = entry.get("Queue")
            if agent is None or not name:
                continue
            q = queues.setdefault(name, _Queue(name))
            q.members[agent] = self._member_from(entry, agent, entry.get("Name") or entry.get("MemberName"))
            self._device[agent] = (_device(entry.get("Status")), now)
        for entry in sorted(snapshot.queue_entries, key=lambda e: (e.get("Queue", ""), _int(e.get("Position"), 0))):
            name, uid = entry.get("Queue"), entry.get("Uniqueid")
            if not name or not uid:
                continue
            q = queues.setdefault(name, _Queue(name))
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

    def end_wrap_up(self, call_id: str, now: float, agent_id: str | None = None) -> Changes:
        """The outcome of ``call_id`` was recorded: its wrap-up is over."""
        changes = Changes()
        for agent in list(self._wrap_agents.get(call_id, ())):
            if agent_id is None or agent == agent_id:
                self._end_wrap(agent)
                self._touch(agent, changes)
        self._settle(changes, max(now, self.last_ts))
        return changes

    def tick(self, now: float) -> Changes:
        """Time passing: wrap-ups past their maximum end."""
        changes = Changes()
        for agent, wrap in list(self._wrap.items()):
            if now - wrap.since >= self.wrap_up_max:
                self._end_wrap(agent)
                self._touch(agent, changes)
        self._settle(changes, now)
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
        agent = self._agent_of(event.get("Interface"), event.get("DestChannel"))
        return agent, event.get("Linkedid") or event["Uniqueid"], event.get("Queue", "")

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

    def _on_agent_done(self, event: AmiMessage, ts: float, changes: Changes) -> None:
        agent, call_id, _ = self._queue_call(event)
        if agent is not None:
            self._drop_activity(agent, call_id, ts, changes)

    # ------------------------------------------------------------ agents

    def _set_activity(self, agent: str, call_id: str, state: str, queue: str | None, ts: float, changes: Changes) -> None:
        calls = self._activity.setdefault(agent, {})
        current = calls.get(call_id)
        if current is not None and (current.state == state or current.state == ON_CALL):
            return  # heard already, or a late ring of a call already answered
        calls[call_id] = Activity(call_id, state, queue or (current.queue if current else None), ts)
        self._call_agents.setdefault(call_id, set()).add(agent)
        self._touch(agent, changes)

    def _drop_activity(self, agent: str, call_id: str, ts: float, changes: Changes) -> None:
        calls = self._activity.get(agent)
        if not calls or call_id not in calls:
            return
        activity = calls.pop(call_id)
        _discard(self._call_agents, call_id, agent)
        if not calls:
            del self._activity[agent]
            self._quiet[agent] = ts
        if activity.state == ON_CALL:
            self._end_wrap(agent)
            self._wrap[agent] = WrapUp(call_id, activity.queue, ts)
            self._wrap_agents.setdefault(call_id, set()).add(agent)
        self._touch(agent, changes)

    def _end_wrap(self, agent: str) -> None:
        wrap = self._wrap.pop(agent, None)
        if wrap is not None:
            _discard(self._wrap_agents, wrap.call_id, agent)

    def _current_call(self, agent: str) -> Activity | None:
        calls = self._activity.get(agent)
        if not calls:
            return None
        talking = [a for a in calls.values() if a.state == ON_CALL]
        return max(talking or calls.values(), key=lambda a: a.since)

    def _member_state(self, agent: str, paused: bool) -> str:
        current = self._current_call(agent)
        if current is not None:
            return current.state
        device, reported = self._device.get(agent, ("unknown", 0.0))
        if device in _UNAVAILABLE:
            return "unavailable"
        # A busy device reported before the agent's last tracked call ended
        # describes that call (a Local member shows in_use while it rings):
        # only a newer report means a call we do not track (outbound, internal).
        fresh = reported > self._quiet.get(agent, float("-inf"))
        if fresh and device in _RINGING:
            return RINGING
        if fresh and device in _IN_USE:
            return ON_CALL
        if agent in self._wrap:
            return "wrap_up"
        return "paused" if paused else "available"

    def _agent_state(self, agent: str) -> tuple[str, str | None]:
        memberships = [q.members[agent] for q in self._queues.values() if agent in q.members]
        if not memberships:
            current = self._current_call(agent)
            if current is not None:
                return current.state, None
            return ("wrap_up" if agent in self._wrap else "logged_out"), None
        paused = all(m.paused for m in memberships)  # still takes calls from a queue it is not paused in
        state = self._member_state(agent, paused)
        reason = next((m.pause_reason for m in memberships if m.pause_reason), None) if state == "paused" else None
        return state, reason

    def _touch(self, agent: str, changes: Changes) -> None:
        changes.agents.add(agent)
        changes.queues.update(q.name for q in self._queues.values() if agent in q.members)

    def _settle(self, changes: Changes, ts: float) -> None:
        """Time in state: an agent's ``since`` moves only when its published
        state does.  Also where the queues' member counts follow: every change
        to what a member's state depends on names the agent in ``changes``."""
        for agent in changes.agents:
            self._recount(agent)
            state, reason = self._agent_state(agent)
            old = self._state.get(agent)
            if old is None or old[0] != state:
                self._state[agent] = (state, ts)

    def _recount(self, agent: str) -> None:
        """Move ``agent`` to its current state in each queue's counts (out of
        the queues it left): O(queues), not O(members)."""
        for q in self._queues.values():
            member = q.members.get(agent)
            old = q.counted.get(agent)
            new = None if member is None else self._member_state(agent, member.paused)
            if new == old:
                continue
            if old is not None:
                q.counts[old] -= 1
            if new is None:
                del q.counted[agent]
            else:
                q.counts[new] += 1
                q.counted[agent] = new

    # ------------------------------------------------------------ helpers

    def _queue_of(self, name: str) -> _Queue:
        q = self._queues.get(name)
        if q is None:
            q = self._queues[name] = _Queue(name)
        return q

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


def _discard(index: dict[str, set[str]], key: str, agent: str) -> None:
    agents = index.get(key)
    if agents is not None:
        agents.discard(agent)
        if not agents:
            del index[key]


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

