"""Mutated real captures: lost, repeated and reordered events never crash the
tracker, never produce impossible call events, and never grow its memory."""
from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from telephony.protocol import decode_all
from telephony.tracker import CallTracker

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
STREAMS = {
    name: [m for m in decode_all((FIXTURES / f"{name}.ami").read_bytes())[0] if "Event" in m]
    for name in ("support_answered", "sales_no_answer_then_next", "billing_abandoned", "direct_call", "blind_transfer", "burst_small")
}
DEFAULT_HEADERS = ("Uniqueid", "DestUniqueid", "Queue", "Timestamp", "DialStatus", "Linkedid", "Position")


@st.composite
def mutated(draw):
    name = draw(st.sampled_from(sorted(STREAMS)))
    events = list(STREAMS[name])
    for _ in range(draw(st.integers(0, 12))):
        i = draw(st.integers(0, len(events) - 1))
        op = draw(st.sampled_from(["drop", "repeat", "swap", "strip", "garble"]))
        if op == "drop":
            del events[i]
        elif op == "repeat":
            events.insert(i, events[i])
        elif op == "swap" and i + 1 < len(events):
            events[i], events[i + 1] = events[i + 1], events[i]
        elif op == "strip":
            key = draw(st.sampled_from(DEFAULT_HEADERS))
            events[i] = {k: v for k, v in events[i].items() if k != key}
        elif op == "garble":
            key = draw(st.sampled_from(DEFAULT_HEADERS))
            events[i] = {**events[i], key: draw(st.text(max_size=12))}
    return events


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_mutated_streams_give_consistent_call_events(events):
    # Events that lost their Timestamp take the clock's time: the captures'
    # era, not the wall clock (which passed the horizon below on 2026-12-02).
    tracker = CallTracker(max_call_age=3600, clock=lambda: 1795383000.0)
    out = [e for event in events for e in tracker.feed(event)]
    ended = set()
    ringing: dict[tuple[str, str], int] = {}
    for e in out:
        assert e.call_id not in ended, f"{e.type} after call.ended"
        if e.type == "call.ringing":
            ringing[(e.call_id, e.agent)] = ringing.get((e.call_id, e.agent), 0) + 1
        elif e.type in ("call.answered", "call.missed"):
            assert ringing.get((e.call_id, e.agent), 0) > 0, f"{e.type} without a ring"
            ringing[(e.call_id, e.agent)] -= 1
        elif e.type == "call.ended":
            assert e.reason in ("completed", "abandoned", "unanswered", "transferred-out")
            ended.add(e.call_id)
    # Whatever was lost, nothing is kept past the tracker's horizon.
    tracker.expire(1795383000.0 + 10 * 86400)
    assert tracker.active_calls == 0 and tracker.tracked_channels == 0
