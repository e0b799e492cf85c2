"""Events nobody reads are skipped before parsing (``wanted_events``): the
call events and the supervisors' queue views must not change, on every real
capture, and events answering an action must always get through."""
from __future__ import annotations

import pytest

from telephony.protocol import AmiDecoder, encode_message
from telephony.queues import QueueMonitor
from telephony.tracker import CallTracker
from tests.supervision.helpers import CAPTURES, FIXTURES, Replayer

WANTED = CallTracker().events_read | QueueMonitor().events_read


def decode(name: str, wanted: frozenset[str] | None, chunk: int = 1400) -> tuple[list[dict], AmiDecoder]:
    data = (FIXTURES / f"{name}.ami").read_bytes()
    decoder = AmiDecoder(wanted_events=wanted)
    out = []
    for i in range(0, len(data), chunk):
        out.extend(decoder.feed(data[i:i + chunk]))
    decoder.close()
    return out, decoder


def replay(messages: list[dict]) -> tuple[list, list, dict]:
    replayer, changes = Replayer(), []
    replayer.run(messages, after=lambda _m, c: changes.append(c))
    monitor = replayer.monitor
    views = {"queues": [monitor.queue(q) for q in monitor.queue_names()],
             "agents": [monitor.agent(a) for a in monitor.agent_ids()]}
    return replayer.call_events, changes, views


@pytest.mark.parametrize("capture", CAPTURES)
def test_filtered_stream_gives_the_same_calls_and_queue_views(capture):
    everything, full = decode(capture, None)
    wanted, filtered = decode(capture, WANTED)
    events_all, changes_all, views_all = replay(everything)
    events_wanted, changes_wanted, views_wanted = replay(wanted)
    assert events_wanted == events_all and events_all
    assert views_wanted == views_all
    # the skipped events changed nothing on the supervisors' side either
    assert [c for c in changes_wanted if c] == [c for c in changes_all if c]
    assert filtered.stats.unread == full.stats.messages - filtered.stats.messages > 0
    assert filtered.stats.skipped == full.stats.skipped == 0


def test_most_of_a_real_stream_is_not_parsed():
    everything, full = decode("burst_small", None)
    _, filtered = decode("burst_small", WANTED)
    assert filtered.stats.unread > 0.6 * full.stats.messages


def test_events_answering_an_action_are_kept_whatever_their_name():
    decoder = AmiDecoder(wanted_events=frozenset({"Hangup"}))
    stream = b"".join([
        encode_message({"Event": "VarSet", "Channel": "PJSIP/1-1", "Variable": "X", "Value": "1"}),
        encode_message({"Event": "CoreShowChannel", "ActionID": "resync-1", "Channel": "PJSIP/1-1"}),
        encode_message({"Response": "Success", "ActionID": "resync-2", "Message": "Pong"}),
        encode_message({"Event": "Hangup", "Channel": "PJSIP/1-1"}),
    ])
    got = decoder.feed(stream)
    assert [m.get("Event") or m.get("Response") for m in got] == ["CoreShowChannel", "Success", "Hangup"]
    assert decoder.stats.unread == 1 and decoder.stats.messages == 3


def test_a_block_not_led_by_its_event_line_is_parsed_not_guessed():
    decoder = AmiDecoder(wanted_events=frozenset({"Hangup"}))
    got = decoder.feed(b"Privilege: call,all\r\nEvent: VarSet\r\n\r\nEvent: Hangup\n\n")
    assert [m["Event"] for m in got] == ["VarSet", "Hangup"]  # bare LF tolerated as before
