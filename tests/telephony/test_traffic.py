"""The demo's traffic model (telephony/simulator/center.py): a real center's
figures over thousands of planned calls, and the pieces that make them.

Pure and seeded: calls are planned and booked by the simulator's own
``plan_next`` (the code ``run_traffic`` plays), nothing is sent; the figures
are read from the calls' AMI events as the service reads them."""
from __future__ import annotations

import random
import statistics

import pytest

from telephony.simulator import PbxSimulator, plan_call
from telephony.simulator.center import CenterProfile, CallDraw, demo_center, figures, staff_patiently
from telephony.simulator.model import IdAllocator
from telephony.simulator.pbx import PbxState
from telephony.simulator.traffic import Bursts, TrafficGenerator

CALLERS = [("+34912345678", "Ana Garcia"), ("+14155550100", "Bob Smith"), (None, None)]


def plan_traffic(calls: int, seed: int, profile: CenterProfile | None = None):
    """``calls`` calls of the demo's center at its default rate, planned back to back."""
    profile = profile or CenterProfile()
    agents, queues = demo_center()
    sim = PbxSimulator(agents=agents, queues=queues, seed=seed)
    traffic = sim.traffic(profile.rate_for(len(agents)), CALLERS, arrivals="poisson", profile=profile)
    arrival = sim.clock.now() + 60
    plans = []
    for _ in range(calls):
        plan, _start = sim.plan_next(traffic, arrival, profile)
        plans.append(plan)
        arrival += traffic.gap()
    return plans


@pytest.fixture(scope="module")
def day():
    return plan_traffic(3000, seed=7)


def test_a_center_at_its_default_rate_answers_most_calls_in_time(day):
    f = figures(day)
    assert f.offered > 2500
    assert 0.005 < f.abandon_rate < 0.08, f  # some callers give up, few
    assert 0.78 <= f.service_level <= 0.95, f  # mostly in target (80 % in 20 s), not perfect
    assert 150 <= f.talk_seconds <= 260, f  # minutes of talk (log-normal, median 3 min)


def test_the_service_level_dips_now_and_then_but_is_mostly_in_target(day):
    windows = [figures(day[i:i + 100]).service_level for i in range(0, len(day), 100)]  # ~30 min each
    in_target = sum(level >= 0.8 for level in windows)
    assert in_target >= 0.6 * len(windows), windows
    assert min(windows) < 0.8, windows  # bursts breach it: the alerts have something to show


def test_agents_answer_in_seconds_and_sometimes_let_it_ring_to_the_next(day):
    rings = [int(e["RingTime"]) for p in day for _, e in p.events if e["Event"] == "AgentConnect"]
    assert 2 <= statistics.median(rings) <= 6
    ring_next = sum(any(e["Event"] == "AgentRingNoAnswer" for _, e in p.events) for p in day)
    assert 0.01 < ring_next / len(day) < 0.10


def test_talks_last_minutes_in_every_kind_of_answered_call(day):
    answered = [p for p in day if p.talked]
    assert len(answered) > 0.9 * len(day)
    assert statistics.median(p.duration for p in answered) > 120


def test_the_default_rate_loads_the_agents_as_asked():
    profile = CenterProfile()
    agents, _ = demo_center()
    rate = profile.rate_for(len(agents))
    assert profile.load(rate, len(agents)) == pytest.approx(profile.occupancy)
    assert 0.70 <= profile.occupancy <= 0.85
    assert 0.03 < rate < 0.1  # calls per second for 18 agents of ~4 minutes a call


def test_the_same_seed_plans_the_same_day():
    one, two = plan_traffic(200, seed=3), plan_traffic(200, seed=3)
    assert [(p.scenario, p.queue, p.busy) for p in one] == [(p.scenario, p.queue, p.busy) for p in two]


def test_every_demo_agent_has_a_name_and_a_queue():
    """The supervisor's dashboard names an agent from its queue member name:
    an agent in no queue (1005 in the captures' setup) shows unnamed."""
    agents, queues = demo_center()
    members = {m for q in queues.values() for m in q.members}
    assert set(agents) == members
    assert all(a.name and not a.name.startswith("Agent ") for a in agents.values())
    assert len({a.name for a in agents.values()}) == len(agents)


def test_bursts_raise_the_arrival_rate_for_their_length():
    bursts = Bursts(every=600.0, seconds=120.0, factor=2.0)
    traffic = TrafficGenerator(0.05, CALLERS, rng=random.Random(5), arrivals="poisson", bursts=bursts)
    inside = outside = 0
    time_inside = time_outside = 0.0
    for _ in range(40_000):
        burst = traffic.in_burst()
        gap = traffic.gap()
        if burst:
            inside, time_inside = inside + 1, time_inside + gap
        else:
            outside, time_outside = outside + 1, time_outside + gap
    ratio = (inside / time_inside) / (outside / time_outside)
    assert ratio == pytest.approx(2.0, rel=0.15)
    assert time_inside / (time_inside + time_outside) == pytest.approx(120 / 720, rel=0.2)


def _draw(**changes) -> CallDraw:
    base = {"patience": 90.0, "talk": 180.0, "answer_after": 3.0, "wrapup": 20.0, "no_answer": False}
    return CallDraw(**{**base, **changes})


def _busy_center(busy_until: dict[str, float]) -> PbxState:
    agents, queues = demo_center(3)
    pbx = PbxState(agents, queues, ids=IdAllocator(1), login_time=0)
    pbx.busy_until.update(busy_until)
    return pbx


def test_a_caller_nobody_is_free_for_waits_for_the_first_agent_to_free_up():
    pbx = _busy_center({"1001": 1040.0, "1002": 1025.0, "1003": 1070.0})
    request = staff_patiently("queue_answered", pbx, 1000.0, random.Random(1), _draw())
    first = min(pbx.queues[request.queue].members, key=lambda a: pbx.busy_until[a])
    assert request.scenario == "queue_answered" and request.agents == (first,)
    assert request.options["hold"] == pytest.approx(pbx.busy_until[first] - 1000.0)


def test_a_caller_less_patient_than_the_wait_abandons_without_ringing_anyone():
    pbx = _busy_center({"1001": 1500.0, "1002": 1500.0, "1003": 1500.0})
    request = staff_patiently("queue_answered", pbx, 1000.0, random.Random(1), _draw(patience=40.0))
    assert request.scenario == "queue_abandoned" and request.agents == ()
    plan = plan_call(request.scenario, IdAllocator(2), "+34912345678", "Ana", start_ts=1000.0,
                     queue=request.queue, agents=[], directory=pbx.agents, queues=pbx.queues, **request.options)
    abandon = next(offset for offset, e in plan.events if e["Event"] == "QueueCallerAbandon")
    assert abandon == pytest.approx(40.5, abs=0.1)  # 0.5 s of set-up, then 40 s of patience
    assert not plan.busy


def test_a_free_agent_idle_the_longest_is_rung_at_once():
    pbx = _busy_center({"1001": 990.0, "1002": 900.0, "1003": 950.0})
    request = staff_patiently("queue_answered", pbx, 1000.0, random.Random(1), _draw())
    members = pbx.queues[request.queue].members
    assert request.agents == (min(members, key=lambda a: pbx.busy_until[a]),)
    assert "hold" not in request.options


def test_a_call_held_in_the_queue_rings_after_the_hold_and_counts_it_in_the_wait():
    agents, queues = demo_center(3)
    plan = plan_call("queue_answered", IdAllocator(3), "+34912345678", "Ana", start_ts=1000.0, queue="support",
                     agents=["1001"], directory=agents, queues=queues, hold=42.0, answer_after=3.0,
                     talk_seconds=100.0)
    at = {e["Event"]: offset for offset, e in reversed(plan.events)}  # first of each
    assert at["AgentCalled"] - at["QueueCallerJoin"] == pytest.approx(42.0, abs=0.1)
    connect = next(e for _, e in plan.events if e["Event"] == "AgentConnect")
    assert int(connect["HoldTime"]) == 45 and plan.talked == ("1001",)


def test_after_call_work_keeps_the_agent_off_the_queue():
    pbx = _busy_center({})
    pbx.reserve({"1001": (0.0, 200.0), "1002": (0.0, 5.0)}, 1000.0, {"1001": 25.0})
    assert not pbx.is_free("1001", 1210.0) and pbx.is_free("1001", 1225.0)
    assert pbx.is_free("1002", 1005.0)  # it only rang: no after-call work


def test_the_simulator_books_the_answering_agent_for_its_wrap_up():
    agents, queues = demo_center(3)
    sim = PbxSimulator(agents=agents, queues=queues, seed=1)
    start = sim.clock.now() + 10
    plan, start = sim.prepare_call("queue_answered", "+34912345678", "Ana", start=start, queue="support",
                                   agents=["1001"], talk_seconds=60.0, wrapup=30.0)
    assert sim.pbx.busy_until["1001"] == pytest.approx(start + plan.busy["1001"][1] + 30.0)
