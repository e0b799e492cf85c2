"""The queue monitor keeps each queue's member counts as agents change
instead of walking the members per view; these tests hold the kept counts to
a walk over the members after every single event: every capture, then a long
random mix of membership, pause, device, call and wrap-up changes."""
from __future__ import annotations

import random
from collections import Counter

import pytest

from telephony.events import CallAnswered, CallEnded, CallMissed, CallRinging, CallTransferred, iso_utc
from telephony.link import Snapshot
from telephony.queues import MEMBER_STATES, QueueMonitor
from tests.supervision.helpers import CAPTURES, Replayer, capture_messages
from tests.supervision.test_monitor_synthetic import member

T0 = 1795383000.0


def walked(m: QueueMonitor, name: str) -> dict[str, int]:
    q = m._queues[name]
    counts = Counter(m._member_state(agent, mem.paused) for agent, mem in q.members.items())
    return {"logged_in": len(q.members), **{state: counts.get(state, 0) for state in MEMBER_STATES}}


def assert_counts(m: QueueMonitor) -> None:
    for name in m.queue_names():
        assert m.queue(name).agents == walked(m, name), name


@pytest.mark.parametrize("name", CAPTURES)
def test_counts_follow_every_capture(name):
    r = Replayer()
    seen = []
    r.run(capture_messages(name), lambda message, changes: (assert_counts(r.monitor), seen.append(1)))
    assert seen


def test_counts_follow_a_long_random_mix_of_changes():
    rng = random.Random(4)
    m = QueueMonitor(wrap_up_max=20)
    agents = [str(2001 + n) for n in range(30)]
    queues = ["sales", "billing", "support"]
    calls: dict[str, set[str]] = {}  # call id -> agents ringing or talking
    ts = T0
    busy = 0
    for step in range(4000):
        ts += rng.random()
        agent, queue = rng.choice(agents), rng.choice(queues)
        kind = rng.random()
        if kind < 0.15:
            m.feed(member("QueueMemberAdded", queue, agent, ts, status=rng.choice([1, 1, 1, 2, 5, 6])))
        elif kind < 0.2:
            m.feed(member("QueueMemberRemoved", queue, agent, ts))
        elif kind < 0.3:
            m.feed(member("QueueMemberStatus", queue, agent, ts, status=rng.choice([1, 2, 3, 5, 6, 8]),
                          paused=rng.choice([0, 0, 1]), reason="lunch"))
        elif kind < 0.35:
            m.feed({"Event": "QueueMemberPause", "Timestamp": f"{ts:.6f}", "Interface": f"PJSIP/{agent}",
                    "Paused": str(rng.choice([0, 1])), "PausedReason": "break"})
        elif kind < 0.55:
            call_id = f"c{rng.randrange(40)}"
            for a in rng.sample(agents, rng.randint(1, 8)):
                m.call_event(CallRinging(call_id, iso_utc(ts), a, queue, "+34911000001", None))
                calls.setdefault(call_id, set()).add(a)
        elif kind < 0.7 and calls:
            call_id = rng.choice(sorted(calls))
            a = rng.choice(sorted(calls[call_id]))
            m.call_event(CallAnswered(call_id, iso_utc(ts), a, queue, 3.0))
            for other in calls[call_id] - {a}:
                m.call_event(CallMissed(call_id, iso_utc(ts), other))
            calls[call_id] = {a}
            busy += 1
        elif kind < 0.75 and calls:
            call_id = rng.choice(sorted(calls))
            a = rng.choice(sorted(calls[call_id]))
            to = rng.choice(agents)
            m.call_event(CallTransferred(call_id, iso_utc(ts), a, to, None))
            m.call_event(CallRinging(call_id, iso_utc(ts), to, None, "+34911000001", None))
            calls[call_id] = (calls[call_id] - {a}) | {to}
        elif kind < 0.85 and calls:
            call_id = rng.choice(sorted(calls))
            m.call_event(CallEnded(call_id, iso_utc(ts), None, "completed", 10.0))
            del calls[call_id]
        elif kind < 0.9:
            m.end_wrap_up(f"c{rng.randrange(40)}", ts)
        elif kind < 0.95:
            m.tick(ts)
        elif kind < 0.96:
            members = [member("QueueMember", q, a, ts, status=1) for q in queues for a in rng.sample(agents, 10)]
            m.resync(Snapshot(channels=[], queue_params=[{"Queue": q} for q in queues], queue_members=members,
                              queue_entries=[]), ts)
            calls.clear()
        assert_counts(m)
        if step % 10 == 0:  # the per-call indexes agree with the agents' own calls and wrap-ups
            for call_id in (f"c{n}" for n in range(40)):
                assert m.involved_in(call_id)[1] == ({a for a, mine in m._activity.items() if call_id in mine}
                                                     | {a for a, wrap in m._wrap.items() if wrap.call_id == call_id})
    assert busy > 100 and m.queue_names() == sorted(queues)

def test_the_check_would_see_a_count_left_behind():
    m = QueueMonitor()
    m.feed(member("QueueMemberAdded", "support", "2001", T0))
    m._queues["support"].counts["available"] += 1  # what a missed recount would leave
    with pytest.raises(AssertionError):
        assert_counts(m)
