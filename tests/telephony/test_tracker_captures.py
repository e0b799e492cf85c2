"""The tracker on every real capture: the call events written out by hand,
checked against the scenario descriptions in tests/fixtures/README.md."""
from __future__ import annotations

from pathlib import Path

import pytest

from telephony.protocol import AmiDecoder, decode_all
from telephony.tracker import CallTracker

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

# (call_id, type, the event's other keys without null values and without ts)
EXPECTED = {
    "support_answered": [
    ('1795383106.0', 'call.queued', {'queue': 'support', 'caller_number': '+34912345678', 'caller_name': 'Ana Garcia', 'position': 1, 'presentation': 'allowed'}),
    ('1795383106.0', 'call.ringing', {'agent': '1002', 'queue': 'support', 'caller_number': '+34912345678', 'caller_name': 'Ana Garcia', 'presentation': 'allowed'}),
    ('1795383106.0', 'call.ringing', {'agent': '1001', 'queue': 'support', 'caller_number': '+34912345678', 'caller_name': 'Ana Garcia', 'presentation': 'allowed'}),
    ('1795383106.0', 'call.answered', {'agent': '1001', 'queue': 'support', 'wait_seconds': 1.003}),
    ('1795383106.0', 'call.missed', {'agent': '1002', 'reason': 'answered-elsewhere'}),
    ('1795383106.0', 'call.ended', {'agent': '1001', 'reason': 'completed', 'talk_seconds': 4.505}),
    ],
    "sales_no_answer_then_next": [
    ('1795383127.6', 'call.queued', {'queue': 'sales', 'caller_number': '+14155550100', 'caller_name': 'Bob Smith', 'position': 1, 'presentation': 'allowed'}),
    ('1795383127.6', 'call.ringing', {'agent': '1003', 'queue': 'sales', 'caller_number': '+14155550100', 'caller_name': 'Bob Smith', 'presentation': 'allowed'}),
    ('1795383127.6', 'call.missed', {'agent': '1003', 'reason': 'no-answer'}),
    ('1795383127.6', 'call.ringing', {'agent': '1004', 'queue': 'sales', 'caller_number': '+14155550100', 'caller_name': 'Bob Smith', 'presentation': 'allowed'}),
    ('1795383127.6', 'call.answered', {'agent': '1004', 'queue': 'sales', 'wait_seconds': 6.008}),
    ('1795383127.6', 'call.ended', {'agent': '1004', 'reason': 'completed', 'talk_seconds': 3.505}),
    ],
    "billing_abandoned": [
    ('1795383152.12', 'call.queued', {'queue': 'billing', 'caller_number': '0034912345679', 'caller_name': 'Carla Ruiz', 'position': 1, 'presentation': 'allowed'}),
    ('1795383152.12', 'call.ringing', {'agent': '1003', 'queue': 'billing', 'caller_number': '0034912345679', 'caller_name': 'Carla Ruiz', 'presentation': 'allowed'}),
    ('1795383152.12', 'call.missed', {'agent': '1003', 'reason': 'abandoned'}),
    ('1795383152.12', 'call.abandoned', {'queue': 'billing', 'wait_seconds': 4.505}),
    ('1795383152.12', 'call.ended', {'reason': 'abandoned', 'talk_seconds': 0.0}),
    ],
    "direct_call": [
    ('1795383163.16', 'call.ringing', {'agent': '1004', 'caller_number': '912345680', 'presentation': 'allowed'}),
    ('1795383163.16', 'call.answered', {'agent': '1004', 'wait_seconds': 1.503}),
    ('1795383163.16', 'call.ended', {'agent': '1004', 'reason': 'completed', 'talk_seconds': 3.505}),
    ],
    "blind_transfer": [
    ('1795383229.38', 'call.ringing', {'agent': '1005', 'caller_number': '+34600111222', 'caller_name': 'Frank Moreno', 'presentation': 'allowed'}),
    ('1795383229.38', 'call.answered', {'agent': '1005', 'wait_seconds': 1.503}),
    ('1795383229.38', 'call.transferred', {'from_agent': '1005', 'to_agent': '1002'}),
    ('1795383229.38', 'call.ringing', {'agent': '1002', 'caller_number': '+34600111222', 'caller_name': 'Frank Moreno', 'presentation': 'allowed'}),
    ('1795383229.38', 'call.answered', {'agent': '1002', 'wait_seconds': 2.003}),
    ('1795383229.38', 'call.ended', {'agent': '1002', 'reason': 'completed', 'talk_seconds': 10.015}),
    ],
    "burst_small": [
    ('1795383421.130', 'call.queued', {'queue': 'sales', 'caller_number': '+34918812311', 'caller_name': 'Caller 0', 'position': 1, 'presentation': 'allowed'}),
    ('1795383421.130', 'call.ringing', {'agent': '1003', 'queue': 'sales', 'caller_number': '+34918812311', 'caller_name': 'Caller 0', 'presentation': 'allowed'}),
    ('1795383421.132', 'call.queued', {'queue': 'billing', 'caller_number': '+34914186027', 'caller_name': 'Caller 1', 'position': 1, 'presentation': 'allowed'}),
    ('1795383421.132', 'call.ringing', {'agent': '1003', 'queue': 'billing', 'caller_number': '+34914186027', 'caller_name': 'Caller 1', 'presentation': 'allowed'}),
    ('1795383421.138', 'call.queued', {'queue': 'sales', 'caller_number': '+34914123476', 'caller_name': 'Caller 2', 'position': 2, 'presentation': 'allowed'}),
    ('1795383422.140', 'call.queued', {'queue': 'support', 'caller_number': '+34912521199', 'caller_name': 'Caller 3', 'position': 1, 'presentation': 'allowed'}),
    ('1795383422.140', 'call.ringing', {'agent': '1002', 'queue': 'support', 'caller_number': '+34912521199', 'caller_name': 'Caller 3', 'presentation': 'allowed'}),
    ('1795383422.140', 'call.ringing', {'agent': '1001', 'queue': 'support', 'caller_number': '+34912521199', 'caller_name': 'Caller 3', 'presentation': 'allowed'}),
    ('1795383422.142', 'call.queued', {'queue': 'sales', 'caller_number': '+34918599992', 'caller_name': 'Caller 4', 'position': 3, 'presentation': 'allowed'}),
    ('1795383423.148', 'call.queued', {'queue': 'billing', 'caller_number': '+34912059731', 'caller_name': 'Caller 5', 'position': 2, 'presentation': 'allowed'}),
    ('1795383423.150', 'call.queued', {'queue': 'support', 'caller_number': '+34911504702', 'caller_name': 'Caller 6', 'position': 2, 'presentation': 'allowed'}),
    ('1795383422.140', 'call.answered', {'agent': '1001', 'queue': 'support', 'wait_seconds': 1.002}),
    ('1795383422.140', 'call.missed', {'agent': '1002', 'reason': 'answered-elsewhere'}),
    ('1795383423.152', 'call.queued', {'queue': 'billing', 'caller_number': '+34914276948', 'caller_name': 'Caller 7', 'position': 3, 'presentation': 'allowed'}),
    ('1795383423.150', 'call.ringing', {'agent': '1002', 'queue': 'support', 'caller_number': '+34911504702', 'caller_name': 'Caller 6', 'presentation': 'allowed'}),
    ('1795383421.130', 'call.missed', {'agent': '1003', 'reason': 'no-answer'}),
    ('1795383421.138', 'call.abandoned', {'queue': 'sales', 'wait_seconds': 3.504}),
    ('1795383421.138', 'call.ended', {'reason': 'abandoned', 'talk_seconds': 0.0}),
    ('1795383422.140', 'call.ended', {'agent': '1001', 'reason': 'completed', 'talk_seconds': 2.499}),
    ('1795383421.130', 'call.ringing', {'agent': '1004', 'queue': 'sales', 'caller_number': '+34918812311', 'caller_name': 'Caller 0', 'presentation': 'allowed'}),
    ('1795383423.150', 'call.answered', {'agent': '1002', 'queue': 'support', 'wait_seconds': 3.005}),
    ('1795383423.148', 'call.abandoned', {'queue': 'billing', 'wait_seconds': 3.504}),
    ('1795383423.148', 'call.ended', {'reason': 'abandoned', 'talk_seconds': 0.0}),
    ('1795383421.130', 'call.answered', {'agent': '1004', 'queue': 'sales', 'wait_seconds': 6.009}),
    ('1795383421.132', 'call.missed', {'agent': '1003', 'reason': 'abandoned'}),
    ('1795383421.132', 'call.abandoned', {'queue': 'billing', 'wait_seconds': 7.508}),
    ('1795383421.132', 'call.ended', {'reason': 'abandoned', 'talk_seconds': 0.0}),
    ('1795383423.152', 'call.ringing', {'agent': '1003', 'queue': 'billing', 'caller_number': '+34914276948', 'caller_name': 'Caller 7', 'presentation': 'allowed'}),
    ('1795383422.142', 'call.abandoned', {'queue': 'sales', 'wait_seconds': 7.508}),
    ('1795383422.142', 'call.ended', {'reason': 'abandoned', 'talk_seconds': 0.0}),
    ('1795383421.130', 'call.ended', {'agent': '1004', 'reason': 'completed', 'talk_seconds': 3.505}),
    ('1795383423.152', 'call.missed', {'agent': '1003', 'reason': 'abandoned'}),
    ('1795383423.152', 'call.abandoned', {'queue': 'billing', 'wait_seconds': 7.508}),
    ('1795383423.152', 'call.ended', {'reason': 'abandoned', 'talk_seconds': 0.0}),
    ('1795383431.160', 'call.ringing', {'agent': '1005', 'caller_number': '+6591234567', 'caller_name': 'Hector Lim', 'presentation': 'allowed'}),
    ('1795383423.150', 'call.ended', {'agent': '1002', 'reason': 'completed', 'talk_seconds': 5.507}),
    ('1795383431.160', 'call.answered', {'agent': '1005', 'wait_seconds': 1.503}),
    ('1795383431.160', 'call.ended', {'agent': '1005', 'reason': 'completed', 'talk_seconds': 20.522}),
    ],
}


def track(messages):
    tracker = CallTracker()
    events = [event for message in messages for event in tracker.feed(message)]
    return tracker, events


def summary(events):
    return [
        (e.call_id, e.type, {k: v for k, v in e.to_dict().items() if k not in ("type", "call_id", "ts") and v is not None})
        for e in events
    ]


@pytest.mark.parametrize("capture", sorted(EXPECTED))
def test_capture_gives_the_expected_calls(capture):
    messages, decoder = decode_all((FIXTURES / f"{capture}.ami").read_bytes())
    assert decoder.stats.skipped == 0
    tracker, events = track(messages)
    assert summary(events) == EXPECTED[capture]


@pytest.mark.parametrize("capture", sorted(EXPECTED))
def test_every_ring_is_answered_or_missed_and_every_call_ends_once(capture):
    messages, _ = decode_all((FIXTURES / f"{capture}.ami").read_bytes())
    tracker, events = track(messages)
    ringing: dict[tuple[str, str], int] = {}
    ended: dict[str, int] = {}
    for event in events:
        if event.type == "call.ringing":
            ringing[(event.call_id, event.agent)] = ringing.get((event.call_id, event.agent), 0) + 1
        elif event.type in ("call.answered", "call.missed"):
            key = (event.call_id, event.agent)
            assert ringing.get(key), f"{event.type} without a ring: {key}"
            ringing[key] -= 1
        elif event.type == "call.ended":
            ended[event.call_id] = ended.get(event.call_id, 0) + 1
    assert all(count == 0 for count in ringing.values())
    assert all(count == 1 for count in ended.values())
    assert tracker.active_calls == 0


def test_finished_calls_are_forgotten():
    messages, _ = decode_all((FIXTURES / "support_answered.ami").read_bytes())
    tracker, _ = track(messages)
    assert tracker.active_calls == 0
    assert tracker.tracked_channels == 0


def test_a_call_still_in_progress_when_the_capture_ends_stays_tracked_without_events():
    # burst_small ends while the second direct call from +6591234567 is being
    # set up: it has not rung anyone, so it produced nothing yet.
    messages, _ = decode_all((FIXTURES / "burst_small.ami").read_bytes())
    tracker, events = track(messages)
    assert "1795383463.164" not in {e.call_id for e in events}
    assert tracker.tracked_channels == 2


def test_timestamps_come_from_the_ami_timestamp_header():
    messages, _ = decode_all((FIXTURES / "support_answered.ami").read_bytes())
    _, events = track(messages)
    assert events[0].ts == "2026-11-22T21:31:46.875399Z"  # QueueCallerJoin Timestamp: 1795383106.875399
    assert events[-1].ts == "2026-11-22T21:31:52.383818Z"


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_chunking_of_the_byte_stream_does_not_change_the_calls(chunk):
    data = (FIXTURES / "burst_small.ami").read_bytes()
    decoder = AmiDecoder()
    messages = []
    for i in range(0, len(data), chunk):
        messages += decoder.feed(data[i : i + chunk])
    _, events = track(messages)
    assert summary(events) == EXPECTED["burst_small"]
