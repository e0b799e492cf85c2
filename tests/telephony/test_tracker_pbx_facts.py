"""What a live Asterisk 22 really does off the happy path (issue 19), on the
real captures of ``tests/fixtures/cdr/`` (byte for byte from ../shared/cdr)
and on synthetic sequences modelled on them.

* A withheld caller keeps ``CID-CallingPres: 0`` on its own channels; only
  the legs Asterisk dials for the agents report 35 (prohibited).
* A direct call to a busy phone: DialBegin, then DialEnd BUSY at once.
* The reason a ring ended: answered elsewhere, the caller hung up, timeout.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from telephony.protocol import decode_all
from telephony.queues import QueueMonitor
from telephony.tracker import CallTracker
from tests.telephony.synth import Pbx

CDR = Path(__file__).resolve().parents[1] / "fixtures" / "cdr"
RESTRICTED = "35 (Presentation Prohibited, Network Number)"


def replay(name: str, tracker: CallTracker | None = None):
    messages, decoder = decode_all((CDR / f"{name}.ami").read_bytes())
    assert decoder.stats.skipped == 0
    tracker = tracker or CallTracker()
    return [event for message in messages for event in tracker.feed(message)]


def of_call(events, call_id):
    return [e for e in events if e.call_id == call_id]


# ------------------------------------------------------------ presentation


def test_a_restricted_caller_is_withheld_on_every_ring_although_its_own_channels_say_allowed():
    events = of_call(replay("e_withheld"), "1796396729.58")  # #5: CALLERID(num-pres)=prohib, "Ana Lopez"
    rings = [e for e in events if e.type == "call.ringing"]
    assert [r.agent for r in rings] == ["1002", "1001"]
    assert all(r.presentation == "restricted" and r.caller_number is None and r.caller_name is None for r in rings)
    # call.queued comes before Asterisk dials any agent leg: it cannot know yet.
    # The rings are what consumers scrub on (see the orchestrator tests).
    (queued,) = [e for e in events if e.type == "call.queued"]
    assert queued.presentation == "allowed"


def test_callers_without_a_number_are_unavailable_not_restricted():
    events = replay("e_withheld")
    for call_id in ("1796396709.34", "1796396714.40", "1796396719.46", "1796396724.52"):
        shown = [e for e in of_call(events, call_id) if e.type in ("call.queued", "call.ringing")]
        assert shown and all(e.presentation == "unavailable" and e.caller_number is None for e in shown), call_id


def test_honor_presentation_off_keeps_the_number():
    events = of_call(replay("e_withheld", CallTracker(honor_presentation=False)), "1796396729.58")
    rings = [e for e in events if e.type == "call.ringing"]
    assert rings and all(r.caller_number == "+34912345678" and r.presentation == "allowed" for r in rings)


def test_a_restriction_learnt_after_the_ring_is_told_again_on_the_ring():
    """A PJSIP agent leg whose NewCallerid comes after DialBegin: the ring in
    progress is announced again, restricted, so consumers scrub it."""
    pbx = Pbx()
    trunk = pbx.channel("PJSIP/trunk-0000001a", num="+14155550100", cid_name="Bob Smith")
    pbx.queue_join(trunk, "sales")
    leg, _ = pbx.ring_agent(trunk, "1004", "sales", tech="pjsip")
    pbx.callerid(leg, "+14155550100", "Bob Smith", RESTRICTED)
    pbx.dial_end(trunk, leg, "ANSWER")
    tracker = CallTracker()
    events = [e for ev in pbx.events for e in tracker.feed(ev)]
    assert [(e.type, getattr(e, "presentation", None)) for e in events] == [
        ("call.queued", "allowed"), ("call.ringing", "allowed"), ("call.ringing", "restricted"), ("call.answered", None)]
    assert events[2].caller_number is None and events[2].agent == "1004"


def test_the_queue_view_forgets_the_number_of_a_caller_found_restricted():
    pbx = Pbx()
    one, two = pbx.caller("support", "+34912345678", "Ana Lopez")
    pbx.queue_join(two, "support")
    leg, leg2 = pbx.local_pair(f"Local/1001@agents-{pbx.counter:08x}", two.linkedid)
    pbx.callerid(leg2, "+34912345678", "Ana Lopez", RESTRICTED)
    pbx._ev("AgentCalled", two, Queue="support", Interface="Local/1001@agents/n", MemberName="Agent 1001", **pbx.dest_headers(leg))
    pbx.dial(two, leg)
    tracker, monitor = CallTracker(), QueueMonitor()
    for event in pbx.events:
        monitor.feed(event)
        for call_event in tracker.feed(event):
            monitor.call_event(call_event)
    (waiting,) = monitor.queue("support").waiting
    assert (waiting.caller_number, waiting.caller_name) == (None, None)


# ------------------------------------------------------------ why a ring ended


def test_a_busy_phone_never_rang():
    events = replay("d2_direct_agent_busy")
    assert [(e.type, getattr(e, "agent", None), getattr(e, "reason", None)) for e in events] == [
        ("call.ringing", "1006", None), ("call.missed", "1006", "busy"), ("call.ended", None, "unanswered")]
    assert events[1].never_rang


@pytest.mark.parametrize("status, reason", [("CHANUNAVAIL", "unavailable"), ("CONGESTION", "unavailable"), ("NOANSWER", "no-answer")])
def test_other_dial_statuses(status, reason):
    pbx = Pbx()
    trunk = pbx.channel("PJSIP/trunk-0000001a", num="+14155550100", cid_name="Bob Smith")
    leg, _ = pbx.ring_agent(trunk, "1004", tech="pjsip")
    pbx.dial_end(trunk, leg, status)
    tracker = CallTracker()
    (missed,) = [e for ev in pbx.events for e in tracker.feed(ev) if e.type == "call.missed"]
    assert missed.reason == reason


@pytest.mark.parametrize("capture, call_id, expected", [
    ("a_support_answered", "1796396649.8", {"1002": "answered-elsewhere"}),
    ("b_abandon_while_ringing", "1796396664.14", {"1002": "abandoned", "1001": "abandoned"}),
    ("c_sales_rna_then_answered", "1796396670.20", {"1003": "no-answer"}),
])
def test_the_reason_a_ring_ended(capture, call_id, expected):
    missed = [e for e in of_call(replay(capture), call_id) if e.type == "call.missed"]
    assert {e.agent: e.reason for e in missed} == expected


def test_agent_complete_without_the_callers_channel_still_ends_the_agents_talk():
    """Asterisk sends AgentComplete without Channel/Uniqueid when the caller
    hung up first; the agent must not stay 'on a call' for ever."""
    monitor = QueueMonitor()
    base = {"Timestamp": "1796396650.0", "Queue": "support", "Interface": "Local/1001@agents/n", "MemberName": "Agent 1001"}
    monitor.feed({"Event": "AgentConnect", "Uniqueid": "1.2", "Linkedid": "1.1",
                  "DestChannel": "Local/1001@agents-00000006;1", **base})
    assert monitor.agent("1001").state == "on_call"
    monitor.feed({"Event": "AgentComplete", "DestChannel": "Local/1001@agents-00000006;1", "DestLinkedid": "1.1",
                  "TalkTime": "6", "Reason": "caller", **base})
    assert monitor.agent("1001").state != "on_call"
    monitor.feed({"Event": "AgentConnect", "Uniqueid": "2.2", "Linkedid": "2.1",
                  "DestChannel": "Local/1001@agents-00000007;1", **base})
    monitor.feed({"Event": "AgentComplete", "TalkTime": "6", "Reason": "caller", **base})  # nothing names the call
    assert monitor.agent("1001").state != "on_call"


def test_keep_restricted_numbers_carries_the_real_number_apart_never_as_the_callers():
    events = of_call(replay("e_withheld", CallTracker(keep_restricted=True)), "1796396729.58")
    rings = [e for e in events if e.type == "call.ringing"]
    assert all(r.caller_number is None and (r.hidden_number, r.hidden_name) == ("+34912345678", "Ana Lopez") for r in rings)
    assert "hidden_number" in rings[0].to_dict()
    plain = of_call(replay("e_withheld"), "1796396729.58")
    assert all(getattr(e, "hidden_number", None) is None for e in plain)
    assert all("hidden_number" not in e.to_dict() for e in plain)  # not even as a null key
