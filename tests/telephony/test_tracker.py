"""The tracker on hand-built sequences: the call flows the captures lack."""
from __future__ import annotations

import random
from datetime import datetime

import pytest
from hypothesis import given, settings, strategies as st

from telephony.link import Snapshot
from telephony.tracker import CallTracker
from tests.telephony.synth import Chan, Pbx

PROHIBITED = "32 (Presentation Prohibited, Not Screened)"


def run(events, tracker=None):
    tracker = tracker or CallTracker()
    return [e for event in events for e in tracker.feed(event)]


def kinds(events):
    return [(e.type, getattr(e, "agent", None)) for e in events]


def answered_queue_call(pbx: Pbx, num="+34912345678", name="Ana Garcia", queue="support", agent="1001"):
    one, two = pbx.caller(queue, num, name)
    pbx.queue_join(two, queue)
    leg, leg2 = pbx.ring_agent(two, agent, queue)
    pbx.tick(1)
    pbx.dial_end(two, leg, "ANSWER")
    pbx.queue_leave(two, queue)
    pbx.agent_connect(two, leg, queue)
    pbx.bridge(leg, two)
    return one, two, leg, leg2


def test_withheld_presentation_hides_number_and_name():
    pbx = Pbx()
    one, two = pbx.caller("support", "+34912345678", "Ana Garcia", pres=PROHIBITED)
    pbx.queue_join(two, "support")
    pbx.ring_agent(two, "1001", "support")
    queued, ringing = run(pbx.events)
    assert (queued.caller_number, queued.caller_name) == (None, None)
    assert (ringing.caller_number, ringing.caller_name) == (None, None)


def test_anonymous_and_unknown_caller_ids_become_null():
    for raw in ("anonymous", "<unknown>", "", "Restricted", "  "):
        pbx = Pbx()
        one, two = pbx.caller("support", raw, "<unknown>")
        pbx.queue_join(two, "support")
        (queued,) = run(pbx.events)
        assert queued.caller_number is None and queued.caller_name is None, raw


def test_national_number_is_passed_as_received():
    pbx = Pbx()
    one, two = pbx.caller("sales", "0034 91 234 56 79", "Carla Ruiz")
    pbx.queue_join(two, "sales")
    (queued,) = run(pbx.events)
    assert queued.caller_number == "0034 91 234 56 79"


def test_production_channel_names_resolve_to_agent_ids():
    pbx = Pbx()
    trunk = pbx.channel("PJSIP/trunk-0000001a", num="+14155550100", cid_name="Bob Smith")
    pbx.queue_join(trunk, "sales")
    leg, _ = pbx.ring_agent(trunk, "1004", "sales", tech="pjsip")
    pbx.dial_end(trunk, leg, "ANSWER")
    pbx.hangup(leg, trunk)
    events = run(pbx.events)
    assert kinds(events) == [("call.queued", None), ("call.ringing", "1004"), ("call.answered", "1004"), ("call.ended", "1004")]
    assert events[0].call_id == trunk.linkedid


def test_agent_local_leg_dialing_the_agent_phone_is_one_ring():
    pbx = Pbx()
    one, two = pbx.caller("support", "+34912345678", "Ana Garcia")
    pbx.queue_join(two, "support")
    leg, leg2 = pbx.ring_agent(two, "1001", "support")
    phone = pbx.channel("PJSIP/1001-0000002a", two.linkedid)
    pbx.dial(leg2, phone)
    pbx.dial_end(leg2, phone, "ANSWER")
    pbx.dial_end(two, leg, "ANSWER")
    events = run(pbx.events)
    assert kinds(events) == [("call.queued", None), ("call.ringing", "1001"), ("call.answered", "1001")]


def test_attended_transfer_through_a_transfer_context():
    pbx = Pbx()
    one, two, leg, leg2 = answered_queue_call(pbx, agent="1005")
    # The agent's attended transfer: Asterisk creates Local/1002@transfer, whose
    # ;2 dials the target agent.  Same Linkedid, but no dial from the caller.
    t1, t2 = pbx.local_pair("Local/1002@transfer-00000099", two.linkedid)
    target, target2 = pbx.local_pair("Local/1002@agents-0000009a", two.linkedid)
    pbx.dial(t2, target)
    pbx.dial_end(t2, target, "ANSWER")
    pbx.attended_transfer(leg, leg, two, t1)
    pbx.hangup(leg2, leg)
    pbx.tick(5)
    pbx.hangup(target2, target, t2, t1, two, one)
    events = run(pbx.events)
    assert kinds(events) == [
        ("call.queued", None),
        ("call.ringing", "1005"),
        ("call.answered", "1005"),
        ("call.transferred", None),
        ("call.ended", "1002"),
    ]
    transferred = events[3]
    assert (transferred.from_agent, transferred.to_agent) == ("1005", "1002")
    assert events[-1].reason == "completed"


def test_attended_transfer_between_phones_with_their_own_linkedid():
    pbx = Pbx()
    trunk = pbx.channel("PJSIP/trunk-00000001", num="+34600111222", cid_name="Frank Moreno")
    phone_a, _ = pbx.ring_agent(trunk, "1005", None, tech="pjsip")
    pbx.dial_end(trunk, phone_a, "ANSWER")
    # 1005's phone opens a second line to 1002: an internal call, no events.
    consult = pbx.channel("PJSIP/1005-00000002")
    phone_b = pbx.channel("PJSIP/1002-00000003", consult.linkedid)
    pbx.dial(consult, phone_b)
    pbx.dial_end(consult, phone_b, "ANSWER")
    pbx.attended_transfer(phone_a, consult, trunk, phone_b)
    pbx.hangup(phone_a, consult)
    pbx.hangup(phone_b, trunk)
    events = run(pbx.events)
    assert kinds(events) == [("call.ringing", "1005"), ("call.answered", "1005"), ("call.transferred", None), ("call.ended", "1002")]
    assert events[2].to_agent == "1002"


def test_aborted_attended_transfer_leaves_the_call_with_the_first_agent():
    pbx = Pbx()
    one, two, leg, leg2 = answered_queue_call(pbx, agent="1005")
    t1, t2 = pbx.local_pair("Local/1002@transfer-00000099", two.linkedid)
    target, target2 = pbx.local_pair("Local/1002@agents-0000009a", two.linkedid)
    pbx.dial(t2, target)
    pbx.dial_end(t2, target, "NOANSWER")
    pbx.hangup(target2, target, t2, t1)
    pbx.attended_transfer(leg, leg, two, None, result="Fail")
    pbx.hangup(leg2, leg, two, one)
    events = run(pbx.events)
    assert kinds(events) == [("call.queued", None), ("call.ringing", "1005"), ("call.answered", "1005"), ("call.ended", "1005")]
    assert events[-1].reason == "completed"


def test_blind_transfer_into_a_queue():
    pbx = Pbx()
    one, two, leg, leg2 = answered_queue_call(pbx, agent="1005", queue="sales")
    pbx.blind_transfer(leg, two, "support")
    pbx.hangup(leg, leg2)
    pbx.queue_join(two, "support")
    leg3, _ = pbx.ring_agent(two, "1001", "support")
    pbx.dial_end(two, leg3, "ANSWER")
    pbx.hangup(leg3, two, one)
    events = run(pbx.events)
    assert [e.type for e in events] == [
        "call.queued", "call.ringing", "call.answered", "call.transferred", "call.queued", "call.ringing", "call.answered", "call.ended",
    ]
    assert (events[3].from_agent, events[3].to_queue, events[3].to_agent) == ("1005", "support", None)
    assert events[4].queue == "support"
    assert events[-1].agent == "1001" and events[-1].reason == "completed"


def test_blind_transfer_to_an_outside_number():
    pbx = Pbx()
    one, two, leg, leg2 = answered_queue_call(pbx, agent="1001")
    pbx.blind_transfer(leg, two, "0034600999888", context="outbound")
    pbx.hangup(leg, leg2)
    trunk = pbx.channel("PJSIP/trunk-000000aa", two.linkedid)
    pbx.dial(two, trunk)
    pbx.dial_end(two, trunk, "ANSWER")
    pbx.tick(30)
    pbx.hangup(trunk, two, one)
    events = run(pbx.events)
    transferred = [e for e in events if e.type == "call.transferred"]
    assert [(e.from_agent, e.to_number, e.to_agent) for e in transferred] == [("1001", "0034600999888", None)]
    assert events[-1].type == "call.ended" and events[-1].reason == "transferred-out"


def test_internal_and_outbound_calls_produce_nothing():
    pbx = Pbx()
    a = pbx.channel("PJSIP/1001-00000001")
    b = pbx.channel("PJSIP/1002-00000002", a.linkedid)
    pbx.dial(a, b)
    pbx.dial_end(a, b, "ANSWER")
    pbx.hangup(a, b)
    c = pbx.channel("PJSIP/1003-00000003")
    trunk = pbx.channel("PJSIP/trunk-00000004", c.linkedid)
    pbx.dial(c, trunk)
    pbx.hangup(c, trunk)
    d = pbx.channel("PJSIP/1004-00000005")
    pbx.queue_join(d, "support")  # an agent testing the queue from their phone
    pbx.hangup(d)
    tracker = CallTracker()
    assert run(pbx.events, tracker) == []
    assert tracker.tracked_channels == 0


def test_direct_call_where_the_caller_gives_up_while_ringing():
    pbx = Pbx()
    one, two = pbx.caller("direct", "912345680", "<unknown>")
    leg, leg2 = pbx.ring_agent(two, "1004")
    pbx.tick(8)
    pbx.dial_end(two, leg, "CANCEL")
    pbx.hangup(leg, leg2, one, two)
    events = run(pbx.events)
    assert kinds(events) == [("call.ringing", "1004"), ("call.missed", "1004"), ("call.abandoned", None), ("call.ended", None)]
    assert events[2].queue is None and events[2].wait_seconds >= 8
    assert events[-1].reason == "abandoned"


def test_direct_call_nobody_answers():
    pbx = Pbx()
    one, two = pbx.caller("direct", "912345680", "<unknown>")
    leg, leg2 = pbx.ring_agent(two, "1003")
    pbx.tick(20)
    pbx.dial_end(two, leg, "NOANSWER")
    pbx.hangup(leg, leg2, two, one)
    events = run(pbx.events)
    assert kinds(events) == [("call.ringing", "1003"), ("call.missed", "1003"), ("call.ended", None)]
    assert events[-1].reason == "unanswered"


def test_queue_timeout_is_unanswered_not_abandoned():
    pbx = Pbx()
    one, two = pbx.caller("billing", "+34912345679", "Carla Ruiz")
    pbx.queue_join(two, "billing")
    pbx.tick(60)
    pbx.queue_leave(two, "billing")
    pbx.hangup(two, one)
    events = run(pbx.events)
    assert [e.type for e in events] == ["call.queued", "call.ended"]
    assert events[-1].reason == "unanswered"


def test_lost_dial_end_is_recovered_from_agent_connect_or_bridge():
    for use_agent_connect in (True, False):
        pbx = Pbx()
        one, two = pbx.caller("support", "+34912345678", "Ana Garcia")
        pbx.queue_join(two, "support")
        leg, leg2 = pbx.ring_agent(two, "1001", "support")
        if use_agent_connect:
            pbx.agent_connect(two, leg, "support")
        pbx.bridge(leg, two)
        pbx.hangup(leg, leg2, two, one)
        events = run(pbx.events)
        assert kinds(events) == [("call.queued", None), ("call.ringing", "1001"), ("call.answered", "1001"), ("call.ended", "1001")]


def test_malformed_events_are_dropped_alone():
    pbx = Pbx()
    one, two = pbx.caller("support", "+34912345678", "Ana Garcia")
    pbx.queue_join(two, "support")
    broken = [
        {"Event": "QueueCallerJoin", "Queue": "support"},  # no Uniqueid
        {"Event": "DialEnd", "DialStatus": "ANSWER"},
        {"Event": "Hangup"},
        {"Event": "QueueCallerJoin", "Uniqueid": "x.1", "Channel": "SIP/trunk-1", "Queue": "support", "Position": "abc", "CallerIDNum": "1"},
    ]
    events = run(pbx.events[:-1] + broken + pbx.events[-1:])
    assert [e.type for e in events] == ["call.queued", "call.queued"]
    assert events[0].position is None and events[1].caller_number == "+34912345678"


def test_every_event_delivered_twice_changes_nothing():
    pbx = Pbx()
    one, two, leg, leg2 = answered_queue_call(pbx, agent="1005")
    pbx.blind_transfer(leg, two, "1002")
    pbx.hangup(leg, leg2)
    leg3, leg4 = pbx.ring_agent(two, "1002")
    pbx.dial_end(two, leg3, "ANSWER")
    pbx.hangup(leg3, leg4, two, one)
    once = run(pbx.events)
    twice = run([event for event in pbx.events for _ in range(2)])
    assert [e.to_dict() for e in twice] == [e.to_dict() for e in once]
    assert len(once) == 7


def test_memory_stays_bounded_over_many_calls():
    tracker = CallTracker()
    pbx = Pbx()
    for _ in range(300):
        answered_queue_call(pbx)
    # hang up every channel the helper left open
    for event in list(pbx.events):
        if event["Event"] == "Newchannel":
            pbx._ev("Hangup", None, Uniqueid=event["Uniqueid"], Channel=event["Channel"], Linkedid=event["Linkedid"])
    events = run(pbx.events, tracker)
    assert sum(e.type == "call.ended" for e in events) == 300
    assert tracker.active_calls == 0 and tracker.tracked_channels == 0


def test_expire_forgets_calls_whose_hangup_never_came():
    pbx = Pbx()
    answered_queue_call(pbx)
    tracker = CallTracker(max_call_age=3600)
    run(pbx.events, tracker)
    assert tracker.active_calls == 1
    tracker.expire(pbx.clock + 7200)
    assert tracker.active_calls == 0 and tracker.tracked_channels == 0


def two_calls():
    first, second = Pbx(clock=1795383000.0), Pbx(clock=1795384000.0)
    answered_queue_call(first, "+34912345678", "Ana Garcia", "support", "1001")
    one, two = second.caller("billing", "+34912345679", "Carla Ruiz")
    second.queue_join(two, "billing")
    leg, leg2 = second.ring_agent(two, "1003", "billing")
    second.dial_end(two, leg, "CANCEL")
    second.hangup(one)
    second.abandon(two, "billing")
    second.hangup(leg, leg2, two)
    return first.events, second.events


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False))
def test_interleaving_concurrent_calls_does_not_mix_them(rnd: random.Random):
    a, b = two_calls()
    alone = run(a) + run(b)
    merged, ia, ib = [], 0, 0
    while ia < len(a) or ib < len(b):
        if ib >= len(b) or (ia < len(a) and rnd.random() < 0.5):
            merged.append(a[ia]); ia += 1
        else:
            merged.append(b[ib]); ib += 1
    together = run(merged)
    for call_id in {e.call_id for e in alone}:
        assert [e.to_dict() for e in together if e.call_id == call_id] == [e.to_dict() for e in alone if e.call_id == call_id]


# ------------------------------------------------------------------ resync


def test_resync_after_an_outage_reconciles_without_duplicates():
    pbx = Pbx()
    # Call A rings 1001 before the outage and is answered during it.
    a1, a2 = pbx.caller("support", "+34912345678", "Ana Garcia")
    pbx.queue_join(a2, "support")
    a_leg, a_leg2 = pbx.ring_agent(a2, "1001", "support")
    # Call B is waiting in a queue before the outage and hangs up during it.
    b1, b2 = pbx.caller("billing", "+34912345679", "Carla Ruiz")
    pbx.queue_join(b2, "billing")
    # Call C is answered before the outage and still talking after it.
    c1, c2, c_leg, c_leg2 = answered_queue_call(pbx, "+14155550100", "Bob Smith", "sales", "1004")
    tracker = CallTracker(clock=lambda: pbx.clock)
    before = run(pbx.events, tracker)
    assert len(before) == 6

    tracker.link_up()
    d = {"Channel": "PJSIP/trunk-00000077", "Uniqueid": "1795399999.1", "Linkedid": "1795399999.1", "CallerIDNum": "+34600111222", "CallerIDName": "Frank Moreno"}

    def show(ch, bridge=""):
        return {"Event": "CoreShowChannel", "Channel": ch.name, "Uniqueid": ch.uid, "Linkedid": ch.linkedid, "CallerIDNum": ch.num, "CallerIDName": ch.cid_name, "BridgeId": bridge}

    snapshot = Snapshot(
        channels=[show(a1), show(a2, "br-a"), show(a_leg, "br-a"), show(a_leg2), show(c1), show(c2, "br-c"), show(c_leg, "br-c"), show(c_leg2), {**d, "Event": "CoreShowChannel", "BridgeId": ""}],
        queue_entries=[{"Event": "QueueEntry", "Queue": "support", "Position": "1", "Uniqueid": d["Uniqueid"], "Channel": d["Channel"], "CallerIDNum": d["CallerIDNum"], "CallerIDName": d["CallerIDName"], "Wait": "12"}],
    )
    after = tracker.resync(snapshot, now=pbx.clock + 30)
    got = sorted((e.call_id, e.type, getattr(e, "agent", None)) for e in after)
    assert got == sorted([
        (a2.linkedid, "call.answered", "1001"),
        (b2.linkedid, "call.ended", None),
        ("1795399999.1", "call.queued", None),
    ])
    queued = next(e for e in after if e.type == "call.queued")
    assert queued.caller_number == "+34600111222" and queued.queue == "support"
    assert next(e for e in after if e.type == "call.ended").reason == "unanswered"
    # A second identical snapshot changes nothing.
    tracker.link_up()
    assert tracker.resync(snapshot, now=pbx.clock + 31) == []
    assert tracker.active_calls == 3


def test_resync_keeps_channels_seen_since_the_link_came_back():
    pbx = Pbx()
    tracker = CallTracker(clock=lambda: pbx.clock)
    tracker.link_up()
    one, two = pbx.caller("support", "+34912345678", "Ana Garcia")
    pbx.queue_join(two, "support")
    run(pbx.events, tracker)
    # The snapshot was taken before this call existed; it must not end it.
    assert tracker.resync(Snapshot(), now=pbx.clock) == []
    assert tracker.active_calls == 1


def show_channel(ch, duration: int, bridge: str = "", **extra) -> dict:
    seconds = f"00:{duration // 60:02d}:{duration % 60:02d}"
    return {"Event": "CoreShowChannel", "Channel": ch.name, "Uniqueid": ch.uid, "Linkedid": ch.linkedid, "CallerIDNum": ch.num,
            "CallerIDName": ch.cid_name, "BridgeId": bridge, "Duration": seconds, **extra}


def test_a_call_answered_from_a_queue_during_the_outage_keeps_asterisks_times():
    """The live 25 s cut: recorded with no queue, start and answer at the
    reconnect, wait 0.0 s instead of 7.0 s.  CoreShowChannels says how old
    each channel is and which application the caller is in."""
    pbx = Pbx()
    tracker = CallTracker(clock=lambda: pbx.clock)
    run([pbx._ev("FullyBooted")], tracker)  # the last event before the cut
    now = pbx.clock + 40
    tracker.link_up()
    caller = Chan("PJSIP/trunk-00000091", "1795400000.1", "1795400000.1", "+34912345678", "Ana Garcia")
    leg = Chan("PJSIP/1001-00000092", "1795400007.2", "1795400000.1")
    snapshot = Snapshot(channels=[
        show_channel(caller, 33, "br-1", Application="Queue", ApplicationData="support,t,,,90"),
        show_channel(leg, 26, "br-1", Application="AppQueue", ApplicationData="(Outgoing Line)")])
    events = tracker.resync(snapshot, now=now)
    assert [(e.type, getattr(e, "agent", None)) for e in events] == [("call.queued", None), ("call.ringing", "1001"), ("call.answered", "1001")]
    queued, ringing, answered = events
    assert queued.queue == "support" and ringing.queue == "support" and answered.queue == "support"
    at = lambda e: datetime.fromisoformat(e.ts.replace("Z", "+00:00")).timestamp()
    assert at(queued) == pytest.approx(now - 33, abs=0.01)
    assert at(ringing) == pytest.approx(now - 26, abs=0.01)
    assert answered.wait_seconds == pytest.approx(7.0, abs=0.01)


def test_an_agent_still_ringing_at_the_snapshot_gets_the_pop_with_the_rings_real_start():
    pbx = Pbx()
    tracker = CallTracker(clock=lambda: pbx.clock)
    now = pbx.clock + 30
    tracker.link_up()
    caller = Chan("PJSIP/trunk-000000a1", "1795400100.1", "1795400100.1", "+34912345678", "Ana Garcia")
    leg = Chan("PJSIP/1002-000000a2", "1795400104.2", "1795400100.1")
    snapshot = Snapshot(
        channels=[show_channel(caller, 9, Application="Queue", ApplicationData="support"),
                  show_channel(leg, 5, ChannelStateDesc="Ringing")],
        queue_entries=[{"Event": "QueueEntry", "Queue": "support", "Position": "1", "Uniqueid": caller.uid, "Channel": caller.name,
                        "CallerIDNum": caller.num, "CallerIDName": caller.cid_name, "Wait": "9"}])
    events = tracker.resync(snapshot, now=now)
    assert [(e.type, getattr(e, "agent", None)) for e in events] == [("call.queued", None), ("call.ringing", "1002")]
    assert datetime.fromisoformat(events[1].ts.replace("Z", "+00:00")).timestamp() == pytest.approx(now - 5, abs=0.01)


def test_calls_gone_at_the_resync_end_when_the_link_dropped_not_at_the_reconnect():
    """Asterisk crashed (or restarted) five quiet seconds after the last
    event: its calls ended with the link, not 20 s later when it was back."""
    pbx = Pbx()
    clock = {"now": pbx.clock}
    tracker = CallTracker(clock=lambda: clock["now"])
    answered_queue_call(pbx)
    run(pbx.events, tracker)
    last = pbx.clock
    clock["now"] = last + 5
    tracker.link_down()
    clock["now"] = last + 25
    tracker.link_up()
    (ended,) = [e for e in tracker.resync(Snapshot(), now=last + 25) if e.type == "call.ended"]
    assert datetime.fromisoformat(ended.ts.replace("Z", "+00:00")).timestamp() == pytest.approx(last + 5, abs=0.01)
