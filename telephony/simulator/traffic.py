"""Call traffic: when the next customer calls, who it is, and who takes it.

The generator draws callers and scenarios; :func:`staff` picks the agents
among those free right now, so no agent is ever booked for two calls at
once.  When too few agents are free the call becomes what it would be on a
real PBX: a queue call nobody answers, so the customer abandons.  Pure code:
the randomness is a seeded :class:`random.Random` and the PBX state is read only.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from telephony.simulator.pbx import PbxState
from telephony.simulator.scenarios import QUEUE_SCENARIOS, SCENARIOS

DEFAULT_MIX: dict[str, float] = {
    "queue_answered": 0.50,
    "queue_next_answers": 0.12,
    "queue_abandoned": 0.15,
    "direct": 0.10,
    "blind_transfer": 0.05,
    "attended_transfer": 0.04,
    "withheld": 0.04,
}
_PREFERRED_QUEUE = {"queue_answered": "support", "withheld": "support", "queue_next_answers": "sales",
                    "queue_abandoned": "billing"}
_PREFERRED_AGENT = {"direct": "1004", "blind_transfer": "1005", "attended_transfer": "1005"}
_PREFERRED_TARGET = "1002"


@dataclass(frozen=True, slots=True)
class Bursts:
    """Rush periods: every ``every`` simulated seconds on average (exponential
    gaps) the arrival rate is multiplied by ``factor`` for ``seconds``: the
    moments a real center's service level dips and its alerts fire."""

    every: float
    seconds: float
    factor: float

    def __post_init__(self) -> None:
        if self.every <= 0 or self.seconds <= 0 or self.factor <= 0:
            raise ValueError("bursts need every, seconds and factor > 0")

    @property
    def extra(self) -> float:
        """The share of calls the bursts add on average (0.1: 10 % more)."""
        return (self.factor - 1) * self.seconds / (self.every + self.seconds)


@dataclass(frozen=True, slots=True)
class CallRequest:
    """A call ready to be built: the scenario may differ from the one asked
    for when the agents it needs are busy."""

    scenario: str
    queue: str | None
    agents: tuple[str, ...]
    target: str | None = None
    options: dict[str, object] = field(default_factory=dict)


class TrafficGenerator:
    """Arrivals at ``calls_per_second`` (simulated time) and what each call is.

    ``arrivals`` is "uniform" (a steady rate, what benchmarks want) or
    "poisson" (exponential gaps, what a real call center sees); ``bursts``
    raises the rate now and then (see :class:`Bursts`)."""

    def __init__(self, calls_per_second: float, callers: Sequence[tuple[str | None, str | None]],
                 scenarios: Mapping[str, float] | None = None, *, rng: random.Random,
                 arrivals: str = "uniform", bursts: Bursts | None = None):
        if calls_per_second <= 0:
            raise ValueError("calls_per_second must be positive")
        if not callers:
            raise ValueError("traffic needs at least one caller")
        if arrivals not in ("uniform", "poisson"):
            raise ValueError(f"arrivals must be 'uniform' or 'poisson', not {arrivals!r}")
        mix = dict(scenarios or DEFAULT_MIX)
        unknown = set(mix) - set(SCENARIOS)
        if unknown or not any(weight > 0 for weight in mix.values()):
            raise ValueError(f"bad scenario mix {mix!r}; known scenarios: {', '.join(SCENARIOS)}")
        self.rate, self.callers, self.rng, self.arrivals = calls_per_second, list(callers), rng, arrivals
        self._names = [name for name, weight in mix.items() if weight > 0]
        self._weights = [mix[name] for name in self._names]
        self.bursts = bursts
        self.elapsed = 0.0  # simulated seconds since the first call
        self._burst = (0.0, 0.0)
        if bursts is not None:
            first = self.rng.expovariate(1 / bursts.every)
            self._burst = (first, first + bursts.seconds)

    def in_burst(self) -> bool:
        return self._burst[0] <= self.elapsed < self._burst[1]

    def gap(self) -> float:
        """Simulated seconds until the next call."""
        rate = self.rate
        if self.bursts is not None:
            while self.elapsed >= self._burst[1]:
                start = self._burst[1] + self.rng.expovariate(1 / self.bursts.every)
                self._burst = (start, start + self.bursts.seconds)
            if self.in_burst():
                rate *= self.bursts.factor
        gap = self.rng.expovariate(rate) if self.arrivals == "poisson" else 1.0 / rate
        self.elapsed += gap
        return gap

    def next_call(self) -> tuple[str, str | None, str | None]:
        scenario = self.rng.choices(self._names, self._weights)[0]
        number, name = self.rng.choice(self.callers)
        return scenario, number, name


def staff(scenario: str, pbx: PbxState, now: float, rng: random.Random, *, queue: str | None = None,
          ring_limit: int = 4, like_captures: bool = False) -> CallRequest:
    """Choose free agents for ``scenario``; downgrade it when too few are free.

    ``like_captures`` prefers the queue and agents each scenario was recorded
    with (support, 1004, 1005 to 1002...) when they exist and are free."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    options: dict[str, object] = {"withheld": True} if scenario == "withheld" else {}
    if scenario in QUEUE_SCENARIOS:
        name = queue or _pick_queue(scenario, pbx, rng, like_captures)
        config = pbx.queues[name]
        # Small queues are walked from their first member, as app_queue does;
        # big ones from a random member, so the load spreads over everyone.
        start = 0 if len(config.members) <= ring_limit else rng.randrange(len(config.members))
        linear = config.strategy in ("linear", "leastrecent")
        if config.strategy == "leastrecent":  # the whole queue is looked at: who is idle the longest
            free = pbx.idle_first(pbx.free_members(name, now))[:2]
        else:
            free = pbx.free_members(name, now, limit=2 if linear or scenario == "queue_next_answers" else ring_limit,
                                    start=0 if linear else start)
        if scenario == "queue_next_answers":
            if len(free) >= 2:
                return CallRequest(scenario, name, tuple(free[:2]), options=options)
            scenario = "queue_answered" if free else "queue_abandoned"
        ringing = tuple(free[:1]) if linear else tuple(free)
        if not ringing:
            scenario = "queue_abandoned"
        return CallRequest(scenario, name, ringing, options=options)
    preferred = _PREFERRED_AGENT.get(scenario) if like_captures else None
    if queue is not None and scenario != "direct":
        candidates = pbx.free_members(queue, now, limit=1)  # a transfer that starts in a queue
    else:
        candidates = pbx.free_agents(now, limit=3, start=rng.randrange(len(pbx.agents)) if pbx.agents else 0)
    first = _first_free(candidates, preferred, pbx, now)
    if first is None:
        return staff("queue_abandoned", pbx, now, rng, queue=queue, ring_limit=ring_limit,
                     like_captures=like_captures)
    if scenario not in ("blind_transfer", "attended_transfer"):
        return CallRequest(scenario, None, (first,), options=options)
    others = [a for a in pbx.free_agents(now, limit=4, start=rng.randrange(len(pbx.agents))) if a != first]
    target = _first_free(others, _PREFERRED_TARGET if like_captures and first != _PREFERRED_TARGET else None,
                         pbx, now)
    if target is None:
        return CallRequest("direct", None, (first,), options=options)
    return CallRequest(scenario, queue, (first,), target, options=options)


def _pick_queue(scenario: str, pbx: PbxState, rng: random.Random, like_captures: bool) -> str:
    preferred = _PREFERRED_QUEUE.get(scenario)
    if like_captures and preferred in pbx.queues:
        return preferred  # type: ignore[return-value]
    if not pbx.queues:
        raise ValueError("the simulator has no queues")
    return rng.choice(sorted(pbx.queues))


def _first_free(free: list[str], preferred: str | None, pbx: PbxState, now: float) -> str | None:
    """The preferred agent when it is free, else the first free one."""
    if preferred is not None and preferred in pbx.agents and pbx.is_free(preferred, now):
        return preferred
    return free[0] if free else None
