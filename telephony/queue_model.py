"""What the queue monitor believes about the queues and agents, and the rules
that turn it into what supervisors see.  Pure code, no I/O, no AMI.

:class:`~telephony.queues.QueueMonitor` translates the PBX (AMI events, the
tracker's call events, the snapshot after a reconnect) into the operations
here; this module knows nothing of where a fact came from.  Apart, so that
the rules can be read (and changed) without the AMI field names around them.

The parts of an agent's state: queue memberships with their pauses, the
device state with when it was reported, its part in each call (ringing or
talking, keyed by call id, so hearing a fact twice changes nothing) and its
wrap-up.  The published state is derived from those, in this order: a call
in progress; an unavailable device; a busy or ringing device reported after
the agent's last tracked call ended (a call we do not track); wrap-up;
paused in every queue; available.  An agent in no queue: its call,
wrap-up or logged out.

Wrap-up begins when an agent's answered call ends for them and ends when
the owner says so (:meth:`QueueModel.end_wrap_up`: the outcome was saved)
or after ``wrap_up_max`` seconds (:meth:`QueueModel.tick`).

Each change returns a :class:`Changes` naming the queues and agents whose
view changed, so the caller pushes only those; every queue keeps its member
counts per state as they change, so a queue's view is not a walk over its
members.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# device states (names from telephony.queues.DEVICE_STATES) as a member's state
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
class QueueState:
    """One queue as the model keeps it; :class:`QueueView` is what is shown of it."""

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


class QueueModel:
    """The queues and agents, and the operations that change them; fed by
    :class:`~telephony.queues.QueueMonitor`."""

    def __init__(self, *, wrap_up_max: float = 120.0):
        self.wrap_up_max = wrap_up_max
        self._queues: dict[str, QueueState] = {}
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
        self.last_ts = 0.0  # the newest event time seen: "now" for a simulated PBX whose clock runs fast

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

    def shown_to_agents(self, call_id: str) -> bool:
        """Does an agent still ring, talk or wrap up on the call?  (Two lookups:
        the indexes hold no empty sets.)"""
        return call_id in self._call_agents or call_id in self._wrap_agents

    def waiting_call_ids(self) -> set[str]:
        return {w.call_id for q in self._queues.values() for w in q.waiting}

    def wrap_up_of(self, agent_id: str) -> WrapUp | None:
        return self._wrap.get(agent_id)

    # ------------------------------------------------------------ the owner and the clock

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

    # ------------------------------------------------------------ queues

    def _queue_of(self, name: str) -> QueueState:
        q = self._queues.get(name)
        if q is None:
            q = self._queues[name] = QueueState(name)
        return q


def _discard(index: dict[str, set[str]], key: str, agent: str) -> None:
    agents = index.get(key)
    if agents is not None:
        agents.discard(agent)
        if not agents:
            del index[key]
