"""Whole calls: which steps, in which order, with which waits.

:func:`build_call` is the pure entry point the simulator, the tests and the
benchmarks share: it returns the AMI events of one call with their offsets
in seconds from the call's start, with nothing sent anywhere, so a benchmark
can interleave thousands of calls without a server.

Scenarios (defaults follow the captures; every default can be overridden):

``queue_answered``      ring-all queue: the members ring, the fastest answers, the others get
                        "Answered elsewhere" (support_answered.ami; queue ``support``)
``queue_next_answers``  members ring one after the other; all but the last time out with
                        AgentRingNoAnswer (sales_no_answer_then_next.ami; queue ``sales``)
``queue_abandoned``     the customer hangs up while waiting (billing_abandoned.ami; ``billing``)
``direct``              Dial() of one agent, no queue (direct_call.ami; agent 1004)
``blind_transfer``      an agent blind-transfers the customer to another (blind_transfer.ami;
                        1005 to 1002)
``attended_transfer``   an agent consults another, then completes the transfer (1005 to 1002)
                        (both transfers start with a direct call, or in ``queue=`` when given)
``withheld``            ``queue_answered`` with the number withheld (CID-CallingPres 32)

Options: ``answer_after``, ``talk_seconds`` (the answering agent), ``patience``
(abandon: seconds in queue before hanging up), ``hangup_by`` ("agent" or
"caller"), ``withheld``, ``transfer_after`` (seconds talked before a
transfer), ``consult_seconds``, ``exten`` (the caller-sim extension), ``hold``
(queue scenarios: seconds the caller waits in the queue, every member busy,
before the first phone rings).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Mapping, Sequence

from telephony.simulator import endings
from telephony.simulator.ami import NOISE_EVENTS, Timeline
from telephony.simulator.flows import CallBuilder, Leg
from telephony.simulator.model import Agent, IdAllocator, Queue, default_agents, default_queues

SCENARIOS = ("queue_answered", "queue_next_answers", "queue_abandoned", "direct", "blind_transfer",
             "attended_transfer", "withheld")
QUEUE_SCENARIOS = ("queue_answered", "queue_next_answers", "queue_abandoned", "withheld")
_DEFAULT_QUEUE = {"queue_answered": "support", "withheld": "support", "queue_next_answers": "sales",
                  "queue_abandoned": "billing"}
_DEFAULT_AGENT = {"direct": "1004", "blind_transfer": "1005", "attended_transfer": "1005"}
_OPTIONS = frozenset({"answer_after", "talk_seconds", "patience", "hangup_by", "withheld", "transfer_after",
                      "consult_seconds", "exten", "hold"})

Event = dict[str, object]


@dataclass(frozen=True, slots=True)
class CallPlan:
    """One call, ready to be played: events with offsets, and who it ties up.

    ``busy`` maps each agent the call rings to the (first, last) offsets
    their phone is in use, so traffic never books an agent twice; ``talked``
    are the agents who answered (their after-call work follows)."""

    scenario: str
    linkedid: str
    queue: str | None
    events: list[tuple[float, Event]]
    busy: dict[str, tuple[float, float]]
    duration: float  # seconds from the first event to the last
    talked: tuple[str, ...] = ()


def is_noise(event: Event) -> bool:
    """Plumbing events; a NewCallerid that withholds the number is kept,
    because it is the only event saying the number must not be shown."""
    name = event.get("Event")
    if name == "NewCallerid":
        code = str(event.get("CID-CallingPres", "")).split(" ", 1)[0]
        return not (code.isdigit() and int(code) & 0x60)  # 32-39, 64-71: restricted or unavailable
    return name in NOISE_EVENTS


def membership(queues: Mapping[str, Queue]) -> dict[str, list[Queue]]:
    """Agent id -> the queues it is a member of (QueueMemberStatus goes to each)."""
    out: dict[str, list[Queue]] = {}
    for queue in queues.values():
        for member in queue.members:
            out.setdefault(member, []).append(queue)
    return out


def _agent(value: Agent | str, directory: Mapping[str, Agent]) -> Agent:
    if isinstance(value, Agent):
        return value
    return directory.get(value) or Agent(value, f"Agent {value}")


def build_call(scenario: str, ids: IdAllocator, caller_number: str | None, caller_name: str | None,
               **kwargs: object) -> list[tuple[float, Event]]:
    """The events of one call as (offset seconds, headers in order); see :func:`plan_call`."""
    return plan_call(scenario, ids, caller_number, caller_name, **kwargs).events  # type: ignore[arg-type]


def plan_call(
    scenario: str,
    ids: IdAllocator,
    caller_number: str | None,
    caller_name: str | None,
    *,
    start_ts: float,
    agents: Sequence[Agent | str] | None = None,
    target: Agent | str | None = None,
    queue: Queue | str | None = None,
    directory: Mapping[str, Agent] | None = None,
    queues: Mapping[str, Queue] | None = None,
    members_of: Mapping[str, Sequence[Queue]] | None = None,
    rng: random.Random | None = None,
    noise: bool = True,
    **options: object,
) -> CallPlan:
    """Build one call starting at epoch ``start_ts``.

    ``agents`` are the agents to ring, in order (queue scenarios: default the
    queue's members) or the first agent (direct and transfers); ``target``
    the transfer target; ``directory``/``queues`` the call center (default:
    the captures' setup) used to resolve ids and to know each agent's queues
    (``members_of``, :func:`membership` of ``queues``, can be passed in to
    save recomputing it for every call of a large center)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    unknown = set(options) - _OPTIONS
    if unknown:
        raise TypeError(f"unknown option(s) for build_call: {', '.join(sorted(unknown))}")
    for text in (caller_number, caller_name):
        if text is not None and ("\r" in text or "\n" in text):
            raise ValueError(f"caller ID {text!r} contains a line break")  # it would inject AMI headers
    directory = directory if directory is not None else default_agents()
    queues = queues if queues is not None else default_queues()
    if scenario == "direct" and queue is not None:
        raise ValueError("a direct call does not go through a queue")
    if isinstance(queue, str):
        queue = queues[queue]
    if queue is None and scenario in _DEFAULT_QUEUE:
        queue = queues[_DEFAULT_QUEUE[scenario]]
    if agents is None:
        agents = list(queue.members) if queue is not None else [
            _DEFAULT_AGENT.get(scenario, queue.members[0] if queue else "1004")]
    people = [_agent(a, directory) for a in agents]
    tl = Timeline(start_ts, rng or ids.jitter())
    exten = str(options.get("exten") or (queue.name if queue is not None else
                                         "direct" if scenario == "direct" else "direct-long"))
    b = CallBuilder(tl, ids, caller_number, caller_name, exten=exten,
                    membership=members_of if members_of is not None else membership(queues),
                    withheld=bool(options.get("withheld")) or scenario == "withheld",
                    patience=float(options.get("patience", 60.0)))  # type: ignore[arg-type]
    b.originate()
    hold = float(options.get("hold", 0.0))  # type: ignore[arg-type]
    if hold < 0 or (hold and queue is None):
        raise ValueError("hold is the seconds waited in a queue: >= 0, and only for a call that enters one")
    if scenario == "queue_abandoned":
        _abandon(b, queue, people, float(options.get("patience", 4.5)), hold)  # type: ignore[arg-type]
    else:
        leg = _connect(b, scenario, queue, people, options, hold)
        _finish(b, scenario, leg, _agent(target or "1002", directory), options)
    events = tl.events if noise else [(t, e) for t, e in tl.events if not is_noise(e)]
    busy = {agent: (span[0], span[1]) for agent, span in b.busy.items()}
    return CallPlan(scenario, b.linkedid, queue.name if queue else None, events, busy, tl.offset, tuple(b.talked))


def _answering(agent: Agent, options: Mapping[str, object]) -> Agent:
    """The answering agent, with the per-call timing overrides applied."""
    answer_after = options.get("answer_after", agent.answer_after)
    talk = options.get("talk_seconds", agent.talk_seconds)
    return replace(agent, answer_after=1.0 if answer_after is None else float(answer_after),  # type: ignore[arg-type]
                   talk_seconds=float(talk))  # type: ignore[arg-type]


def _connect(b: CallBuilder, scenario: str, queue: Queue | None, people: list[Agent],
             options: Mapping[str, object], hold: float = 0.0) -> Leg:
    """Get the customer talking to an agent; returns that agent's leg."""
    if not people:
        raise ValueError(f"scenario {scenario!r} needs at least one agent")
    tl = b.tl
    if queue is None:
        agent = _answering(people[0], options)
        leg = b.dial_agent(agent)
        tl.wait(agent.answer_after or 1.0)
        b.direct_answer(leg)
        return leg
    b.enter_queue(queue)
    tl.wait(hold)
    if scenario == "queue_next_answers":
        for agent in people[:-1]:
            (leg,) = b.ring_members([agent])
            tl.wait(queue.timeout)
            b.ring_no_answer(leg)
            tl.wait(queue.retry)
        people = [_answering(people[-1], options)]
        legs = b.ring_members(people)
        winner = legs[0]
    else:
        answering = [a for a in people if a.answer_after is not None] or people[:1]
        fastest = min(answering, key=lambda a: a.answer_after or 0.0)
        people = [_answering(a, options) if a is fastest else a for a in people]
        legs = b.ring_members(people)
        winner = next(leg for leg in legs if leg.agent.id == fastest.id)
    tl.wait(winner.agent.answer_after or 1.0)
    b.queue_answer(winner, [leg for leg in legs if leg is not winner])
    return winner


def _finish(b: CallBuilder, scenario: str, leg: Leg, target: Agent, options: Mapping[str, object]) -> None:
    talk = leg.agent.talk_seconds
    if scenario in ("blind_transfer", "attended_transfer"):
        b.start_talking(leg, talk, until=float(options.get("transfer_after", 2.5)))  # type: ignore[arg-type]
        if scenario == "blind_transfer":
            leg = endings.blind_transfer(b, leg, target)
            b.tl.wait(target.answer_after if target.answer_after is not None else 1.0)
            b.direct_answer(leg)
        else:
            leg = endings.attended_transfer(b, leg, target, float(options.get("consult_seconds", 2.0)))  # type: ignore[arg-type]
        talk = target.talk_seconds
    b.start_talking(leg, talk)
    if options.get("hangup_by", "agent") == "caller":
        endings.caller_hangs_up(b, leg)
    else:
        endings.agent_hangs_up(b, leg)


def _abandon(b: CallBuilder, queue: Queue | None, people: list[Agent], patience: float, hold: float = 0.0) -> None:
    """Members ring in rounds of ``queue.timeout`` until the customer gives
    up; with ``hold``, they start ringing only after that wait (all busy)."""
    assert queue is not None
    tl = b.tl
    b.enter_queue(queue)
    hold = min(hold, patience)
    tl.wait(hold)
    remaining = patience - hold
    while True:
        legs = b.ring_members(people) if people else []
        if remaining <= queue.timeout or not legs:
            tl.wait(remaining)
            b.abandon(legs)
            return
        tl.wait(queue.timeout)
        for leg in legs:
            b.ring_no_answer(leg)
        remaining -= queue.timeout + queue.retry
        tl.wait(queue.retry)
        if remaining <= 0:
            b.abandon([])
            return
