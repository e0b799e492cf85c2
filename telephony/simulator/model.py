"""The simulated call center: agents, queues, and the identifiers Asterisk hands out.

The defaults are the setup the real captures were recorded with
(``/work/shared/ami/asterisk-conf``), so a simulated call can be compared
event by event with a captured one.  :func:`call_center` builds the large
setups the demo and the benchmarks need (thousands of agents in a few queues).
"""
from __future__ import annotations

import random
import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Agent:
    """An agent's phone and how its owner behaves when it rings.

    ``answer_after`` is None for an agent who never picks up (1003 in the
    captures); scenarios can still override both timings per call.
    ``wrapup_seconds`` is the after-call work: the queue does not ring the
    agent for that long after a call they talked on (app_queue's wrapuptime)."""

    id: str
    name: str
    answer_after: float | None = 1.0
    talk_seconds: float = 4.0
    wrapup_seconds: float = 0.0

    @property
    def interface(self) -> str:
        """The queue member interface, as the captures' queues.conf names it."""
        return f"Local/{self.id}@agents/n"


STRATEGIES = ("ringall", "linear", "leastrecent")


@dataclass(frozen=True, slots=True)
class Queue:
    """One app_queue queue.  ``timeout`` is how long a member rings before the
    queue gives up on it; ``retry`` the pause before it tries again.
    ``leastrecent`` rings the free member idle the longest (what most real
    centers use: one phone rings, the load spreads over everyone)."""

    name: str
    strategy: str  # one of STRATEGIES
    members: tuple[str, ...]
    timeout: float = 15.0
    retry: float = 1.0
    ringinuse: bool = False

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"queue {self.name}: unsupported strategy {self.strategy!r}")


def default_agents() -> dict[str, Agent]:
    """Agents 1001..1005 with the timings of the captures' dialplan."""
    return {
        a.id: a
        for a in (
            Agent("1001", "Alice Agent", answer_after=1.0, talk_seconds=4.0),
            Agent("1002", "Bob Agent", answer_after=2.0, talk_seconds=5.0),
            Agent("1003", "Carol Agent", answer_after=None, talk_seconds=4.0),
            Agent("1004", "Dave Agent", answer_after=1.0, talk_seconds=3.0),
            Agent("1005", "Erin Agent", answer_after=1.0, talk_seconds=20.0),
        )
    }


def default_queues() -> dict[str, Queue]:
    """support rings all (1001, 1002), sales is linear (1003 then 1004), billing has only 1003."""
    return {
        q.name: q
        for q in (
            Queue("support", "ringall", ("1001", "1002"), timeout=6.0),
            Queue("sales", "linear", ("1003", "1004"), timeout=4.0),
            Queue("billing", "ringall", ("1003",), timeout=10.0, ringinuse=True),
        )
    }


def call_center(
    agents: int,
    queues: dict[str, str] | None = None,
    *,
    first_id: int = 2001,
    seed: int | None = None,
) -> tuple[dict[str, Agent], dict[str, Queue]]:
    """A large center: ``agents`` agents split evenly over ``queues``
    (name -> strategy; default support/sales/billing, all ring-all).

    Timings vary a little per agent so ring-all calls do not all resolve in
    lockstep; every agent answers (the scenarios decide who does not)."""
    rng = random.Random(seed)
    queues = queues or {"support": "ringall", "sales": "ringall", "billing": "ringall"}
    people = {}
    for n in range(agents):
        agent_id = str(first_id + n)
        people[agent_id] = Agent(
            agent_id,
            f"Agent {agent_id}",
            answer_after=round(rng.uniform(0.8, 3.0), 1),
            talk_seconds=round(rng.uniform(3.0, 12.0), 1),
        )
    ids = list(people)
    names = list(queues)
    built = {
        name: Queue(name, queues[name], tuple(ids[i :: len(names)]), timeout=8.0)
        for i, name in enumerate(names)
    }
    return people, built


class IdAllocator:
    """Hands out identifiers the way Asterisk does.

    Uniqueids are ``<epoch seconds at creation>.<global counter>`` (the
    Linkedid of every channel of a call is the Uniqueid of its first one);
    Local channel pairs are numbered by a second counter, in 8 hex digits;
    bridges get random UUIDs (seeded, so a run can be reproduced)."""

    def __init__(self, seed: int | None = None, *, first_uniqueid: int = 0, first_local: int = 0):
        self._rng = random.Random(seed)
        self._uniqueid = first_uniqueid
        self._local = first_local

    def uniqueid(self, ts: float) -> str:
        value = f"{int(ts)}.{self._uniqueid}"
        self._uniqueid += 1
        return value

    def local(self) -> str:
        value = f"{self._local:08x}"
        self._local += 1
        return value

    def bridge(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def jitter(self) -> random.Random:
        """A generator for one call's event spacing, derived from the seed."""
        return random.Random(self._rng.getrandbits(64))
