"""The queue monitor on every real capture: callers waiting (how many, who,
in what order), answered and abandoned per queue, and each agent's states in
the order they happened, as the captures' README describes the calls."""
from __future__ import annotations

import pytest

from tests.supervision.helpers import CAPTURES, Replayer, capture_messages


def follow(name: str, chunk: int = 1400):
    """Replay a capture; returns the replayer, each agent's state sequence and
    the peak number of callers waiting per queue."""
    r = Replayer()
    states: dict[str, list[str]] = {}
    peak: dict[str, int] = {}

    def after(message, changes):
        for agent in changes.agents:
            state = r.monitor.agent(agent).state
            seen = states.setdefault(agent, [])
            if not seen or seen[-1] != state:
                seen.append(state)
        for queue in changes.queues:
            peak[queue] = max(peak.get(queue, 0), len(r.monitor.queue(queue).waiting))

    r.run(capture_messages(name, chunk), after)
    return r, states, peak


def figures(r: Replayer) -> dict[str, tuple[int, int, int]]:
    return {q: (v.joined, v.answered, v.abandoned) for q in r.monitor.queue_names() if (v := r.monitor.queue(q))}


EXPECTED = {
    # capture: ({queue: (joined, answered, abandoned)}, {queue: peak waiting}, {agent: states in order})
    "support_answered": (
        {"support": (1, 1, 0)}, {"support": 1},
        {"1001": ["ringing", "on_call", "wrap_up"], "1002": ["ringing", "available"]},
    ),
    "sales_no_answer_then_next": (
        {"sales": (1, 1, 0), "billing": (0, 0, 0)}, {"sales": 1},
        {"1003": ["ringing", "available"], "1004": ["ringing", "on_call", "wrap_up"]},
    ),
    "billing_abandoned": (
        {"billing": (1, 0, 1), "sales": (0, 0, 0)}, {"billing": 1},
        {"1003": ["ringing", "available"]},
    ),
    "direct_call": (
        {"sales": (0, 0, 0)}, {},
        {"1004": ["ringing", "on_call", "wrap_up"]},
    ),
    "blind_transfer": (
        {"support": (0, 0, 0)}, {},
        {"1005": ["ringing", "on_call", "wrap_up"], "1002": ["ringing", "on_call", "wrap_up"]},
    ),
    "burst_small": (
        {"billing": (3, 0, 3), "sales": (3, 1, 2), "support": (2, 2, 0)}, {"billing": 3, "sales": 3, "support": 2},
        {
            "1001": ["ringing", "on_call", "wrap_up"],
            "1002": ["ringing", "available", "ringing", "on_call", "wrap_up"],
            "1003": ["ringing", "available", "ringing", "available"],
            "1004": ["ringing", "on_call", "wrap_up"],
            "1005": ["ringing", "on_call", "wrap_up"],  # not a queue member: known from its direct call
        },
    ),
}


def test_every_capture_has_expectations():
    assert set(EXPECTED) == set(CAPTURES)


@pytest.mark.parametrize("name", CAPTURES)
@pytest.mark.parametrize("chunk", [1400, 7])
def test_capture_counts_and_states(name, chunk):
    r, states, peak = follow(name, chunk)
    queues, peaks, agent_states = EXPECTED[name]
    assert figures(r) == queues
    assert {q: n for q, n in peak.items() if n} == peaks
    assert {a: s for a, s in states.items()} == agent_states
    for queue in r.monitor.queue_names():  # every caller left in the end
        assert r.monitor.queue(queue).waiting == []
        assert r.monitor.queue(queue).agents["ringing"] == 0 and r.monitor.queue(queue).agents["on_call"] == 0
    # the monitor agrees with the tracker's own count of answers and abandons
    answered = sum(1 for e in r.call_events if e.type == "call.answered" and e.queue)
    abandoned = sum(1 for e in r.call_events if e.type == "call.abandoned" and e.queue)
    assert answered == sum(v[1] for v in queues.values())
    assert abandoned == sum(v[2] for v in queues.values())


def test_support_ring_all_counts_agents_by_state_while_it_happens():
    r = Replayer()
    seen = []

    def after(message, changes):
        if "support" in changes.queues:
            view = r.monitor.queue("support")
            seen.append((len(view.waiting), view.agents["ringing"], view.agents["on_call"], view.agents["available"], view.agents["wrap_up"]))

    r.run(capture_messages("support_answered"), after)
    # (waiting, ringing, on_call, available, wrap_up)
    assert (1, 2, 0, 0, 0) in seen  # Ana waits, both phones ring
    assert (1, 1, 1, 0, 0) in seen  # 1001 answered, 1002 still ringing
    assert (0, 0, 1, 1, 0) in seen  # Ana is with 1001, 1002 is free again
    assert seen[-1] == (0, 0, 0, 1, 1)  # 1001 wraps up
    alice = r.monitor.agent("1001")
    assert alice.name == "Alice Agent" and alice.queues == ["support"] and alice.call_id == "1795383106.0"
    assert alice.since == pytest.approx(1795383112.383273)  # time in state counts from the call's end


def test_burst_waiting_list_is_in_queue_order_with_who_is_calling():
    r = Replayer()
    snapshots = {}

    def after(message, changes):
        if message.get("Event") == "QueueCallerJoin" and message.get("Timestamp") == "1795383423.908552":
            for queue in ("sales", "billing", "support"):
                snapshots[queue] = [(w.caller_number, round(w.since, 3)) for w in r.monitor.queue(queue).waiting]

    r.run(capture_messages("burst_small"), after)
    assert [n for n, _ in snapshots["sales"]] == ["+34918812311", "+34914123476", "+34918599992"]
    assert [n for n, _ in snapshots["billing"]] == ["+34914186027", "+34912059731", "+34914276948"]
    assert [n for n, _ in snapshots["support"]] == ["+34911504702"]
    assert snapshots["sales"][0][1] == pytest.approx(1795383421.533)  # since the caller joined


def test_involved_in_names_exactly_the_queues_and_agents_showing_a_call():
    """Each card update re-sends only these, so it must agree with the full views."""
    r = Replayer()
    checked = []

    def after(message, changes):
        call_ids = {w.call_id for name in r.monitor.queue_names() for w in r.monitor.queue(name).waiting}
        call_ids |= {r.monitor.agent(a).call_id for a in r.monitor.agent_ids() if r.monitor.agent(a).call_id}
        for call_id in call_ids:
            queues, agents = r.monitor.involved_in(call_id)
            assert queues == {n for n in r.monitor.queue_names()
                              if any(w.call_id == call_id for w in r.monitor.queue(n).waiting)}
            assert agents >= {a for a in r.monitor.agent_ids() if r.monitor.agent(a).call_id == call_id}
            checked.append(call_id)

    r.run(capture_messages("burst_small"), after)
    assert checked
