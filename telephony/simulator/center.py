"""A real contact center's people, for the demo's traffic.

The scenarios replay the captures with their seconds-long timings (tests
compare them event by event), and :func:`~telephony.simulator.traffic.staff`
turns a call nobody is free for into an abandon at once.  A demo driven by
that is a center in permanent overload: most calls abandoned, four-second
talks, every queue red.  Here each call draws human timings instead: callers
who wait tens of seconds to minutes before giving up, talks of minutes,
agents who answer in a few seconds (now and then not at all, so the queue
rings the next one), after-call work before the next call, and a caller
nobody is free for waits in the queue for the first agent who frees up.
Pure: a seeded :class:`random.Random`, the PBX state read only.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from telephony.simulator.model import Agent, Queue
from telephony.simulator.pbx import PbxState
from telephony.simulator.scenarios import CallPlan
from telephony.simulator.traffic import Bursts, CallRequest, staff

# Mostly queue calls, as a center's main numbers; a few direct calls and transfers.
CENTER_MIX: dict[str, float] = {
    "queue_answered": 0.86,
    "withheld": 0.04,
    "direct": 0.04,
    "blind_transfer": 0.03,
    "attended_transfer": 0.03,
}

DEMO_AGENT_NAMES = (
    "Alice Martin", "Bob Diaz", "Carol Chen", "Dave Novak", "Erin Rossi", "Farid Haddad", "Grace Okafor",
    "Hugo Lefevre", "Ines Duarte", "Jonas Berg", "Kiran Patel", "Lucia Romero", "Mateo Silva", "Nora Lindqvist",
    "Omar Aziz", "Paula Vega", "Quentin Moreau", "Rosa Jimenez", "Sven Olsen", "Tara Singh", "Ulla Nieminen",
    "Victor Ramos", "Wen Li", "Yara Costa",
)


def _lognormal_mean(median: float, sigma: float) -> float:
    return median * math.exp(sigma * sigma / 2)


@dataclass(frozen=True, slots=True)
class CallDraw:
    """One call's human timings, in simulated seconds."""

    patience: float  # how long the caller waits in the queue before hanging up
    talk: float
    answer_after: float  # the agent's ring-to-answer delay
    wrapup: float  # the agent's after-call work
    no_answer: bool  # the first agent rung lets it ring out; the queue rings the next


@dataclass(frozen=True, slots=True)
class CenterProfile:
    """How a center's callers and agents behave, and how loaded it is.

    Patience, talk and after-call work are log-normal (many short, a long
    tail), as measured in real centers; ``occupancy`` is the share of the
    agents' time the offered calls fill (Erlang: calls/s x handle time)."""

    patience_median: float = 80.0
    patience_sigma: float = 0.8
    talk_median: float = 180.0
    talk_sigma: float = 0.5
    answer_min: float = 2.0
    answer_max: float = 6.0
    no_answer: float = 0.05
    wrapup_median: float = 20.0  # config/demo.toml ends the dashboard's wrap-up at 30 s to match
    wrapup_sigma: float = 0.4
    occupancy: float = 0.72
    bursts: Bursts | None = field(default_factory=lambda: Bursts(every=900.0, seconds=120.0, factor=2.0))
    mix: Mapping[str, float] = field(default_factory=lambda: dict(CENTER_MIX))

    def __post_init__(self) -> None:
        if not 0 < self.occupancy < 1:
            raise ValueError("occupancy is a share of the agents' time, between 0 and 1")
        if min(self.patience_median, self.talk_median, self.answer_min) <= 0 or self.answer_max < self.answer_min:
            raise ValueError("patience, talk and answer delays must be positive")

    def handle_seconds(self) -> float:
        """Mean seconds an answered call keeps its agent: ringing, talk, wrap-up."""
        return ((self.answer_min + self.answer_max) / 2 + _lognormal_mean(self.talk_median, self.talk_sigma)
                + _lognormal_mean(self.wrapup_median, self.wrapup_sigma) + 1.5)  # 1.5: set-up and hang-up

    def rate_for(self, agents: int) -> float:
        """Calls per second that keep ``agents`` busy ``occupancy`` of the
        time, bursts included (the rate between bursts is a bit lower)."""
        if agents <= 0:
            raise ValueError("a center needs agents")
        extra = self.bursts.extra if self.bursts is not None else 0.0
        return self.occupancy * agents / self.handle_seconds() / (1 + extra)

    def load(self, rate: float, agents: int) -> float:
        """The share of ``agents``' time ``rate`` calls per second fill, bursts included."""
        extra = self.bursts.extra if self.bursts is not None else 0.0
        return rate * (1 + extra) * self.handle_seconds() / agents

    def draw(self, rng: random.Random) -> CallDraw:
        return CallDraw(
            patience=rng.lognormvariate(math.log(self.patience_median), self.patience_sigma),
            talk=max(20.0, rng.lognormvariate(math.log(self.talk_median), self.talk_sigma)),
            answer_after=rng.uniform(self.answer_min, self.answer_max),
            wrapup=rng.lognormvariate(math.log(self.wrapup_median), self.wrapup_sigma),
            no_answer=rng.random() < self.no_answer,
        )


def demo_center(agents: int = 18) -> tuple[dict[str, Agent], dict[str, Queue]]:
    """The demo's center: agents 1001.. with people's names, in three
    least-recent queues; every agent serves two of them (a primary and a
    backup skill), so each queue shares the others' spare agents as a real
    center's skills do, and every agent is a queue member (the member name
    is where the supervisor's dashboard learns an agent's name)."""
    if not 3 <= agents <= len(DEMO_AGENT_NAMES):
        raise ValueError(f"the demo center has 3 to {len(DEMO_AGENT_NAMES)} agents")
    people = {}
    for n in range(agents):
        agent_id = str(1001 + n)
        people[agent_id] = Agent(agent_id, DEMO_AGENT_NAMES[n], answer_after=3.0, talk_seconds=150.0,
                                 wrapup_seconds=15.0)
    names = ("support", "sales", "billing")
    members: dict[str, list[str]] = {name: [] for name in names}
    for n, agent_id in enumerate(people):
        members[names[n % 3]].append(agent_id)
        members[names[(n + 1) % 3]].append(agent_id)
    queues = {name: Queue(name, "leastrecent", tuple(members[name]), timeout=15.0, retry=2.0) for name in names}
    return people, queues


def staff_patiently(scenario: str, pbx: PbxState, now: float, rng: random.Random, draw: CallDraw) -> CallRequest:
    """Who takes a call of the center's traffic, and with which timings.

    A caller nobody is free for waits in the queue (``hold``) for the member
    whose reservation ends first; reservations are made in arrival order, so
    the queue is served first come, first served.  The caller abandons when
    that wait, or the ringing, outlasts their patience."""
    timings: dict[str, object] = {"patience": round(draw.patience, 3), "talk_seconds": round(draw.talk, 1),
                                  "answer_after": round(draw.answer_after, 1)}
    if scenario in ("direct", "blind_transfer", "attended_transfer"):
        request = staff(scenario, pbx, now, rng)
        if request.scenario == scenario or request.scenario == "direct":
            if request.scenario != "direct":
                timings["transfer_after"] = round(draw.talk * rng.uniform(0.2, 0.5), 1)
            return CallRequest(request.scenario, request.queue, request.agents, request.target,
                               {**request.options, **timings})
        scenario = "queue_answered"  # nobody free to dial: the caller tries the main number
    queue = pbx.queues[rng.choice(sorted(pbx.queues))]
    options = {**timings, "withheld": True} if scenario == "withheld" else timings
    free = pbx.idle_first(pbx.free_members(queue.name, now))
    ring_out = queue.timeout + queue.retry
    if draw.no_answer and len(free) >= 2 and draw.patience > ring_out + draw.answer_after:
        return CallRequest("queue_next_answers", queue.name, tuple(free[:2]), options=options)
    if free:
        agent, hold = free[0], 0.0
    else:
        agent, at = pbx.next_free_member(queue.name, now)
        hold = at - now
    if agent is None or hold >= draw.patience:
        return CallRequest("queue_abandoned", queue.name, (), options=options)
    if hold:
        options = {**options, "hold": round(hold, 3)}
    if hold + draw.answer_after >= draw.patience:  # hangs up while the phone rings
        return CallRequest("queue_abandoned", queue.name, (agent,), options=options)
    return CallRequest("withheld" if scenario == "withheld" else "queue_answered", queue.name, (agent,),
                       options=options)


@dataclass(frozen=True, slots=True)
class TrafficFigures:
    """A supervisor's figures over planned calls, read from their AMI events
    as the service would: offered = calls that entered a queue."""

    calls: int
    offered: int
    answered: int
    answered_in_sl: int
    abandoned: int
    talk_seconds: float  # mean over answered queue calls

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.offered if self.offered else 0.0

    @property
    def service_level(self) -> float:
        """Answered within the threshold over the calls whose wait is over."""
        done = self.answered + self.abandoned
        return self.answered_in_sl / done if done else 1.0


def figures(plans: Iterable[CallPlan], threshold: float = 20.0) -> TrafficFigures:
    """Offered, answered (within ``threshold`` seconds), abandoned and mean
    talk of queue calls, from the QueueCallerJoin, AgentConnect,
    AgentComplete and QueueCallerAbandon events of ``plans``."""
    calls = offered = answered = in_sl = abandoned = 0
    talks: list[float] = []
    for plan in plans:
        calls += 1
        joined = connected = None
        for offset, event in plan.events:
            name = event["Event"]
            if name == "QueueCallerJoin" and joined is None:
                joined = offset
                offered += 1
            elif name == "AgentConnect" and joined is not None and connected is None:
                connected = offset
                answered += 1
                in_sl += connected - joined <= threshold
            elif name == "AgentComplete" and connected is not None:
                talks.append(float(event["TalkTime"]))  # type: ignore[arg-type]
            elif name == "QueueCallerAbandon":
                abandoned += 1
    return TrafficFigures(calls, offered, answered, in_sl, abandoned, sum(talks) / len(talks) if talks else 0.0)
