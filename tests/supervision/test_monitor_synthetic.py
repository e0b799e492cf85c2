"""The queue monitor on hand-built AMI sequences for what the captures do not
show: pauses with a reason, unavailable devices, agents logging out of
queues, wrap-up ending, and a snapshot after missed events setting the view
right again.  Headers as Asterisk 22 sends them."""
from __future__ import annotations

from telephony.events import CallAnswered, CallEnded, CallQueued, CallRinging, iso_utc
from telephony.link import Snapshot
from telephony.queues import QueueMonitor
from tests.supervision.helpers import Replayer, capture_messages

T0 = 1795383000.0


def member(event: str, queue: str, agent: str, ts: float, *, status: int = 1, paused: int = 0, reason: str = "", **more) -> dict:
    out = {"Event": event, "Privilege": "agent,all", "Timestamp": f"{ts:.6f}", "Queue": queue,
           "MemberName": f"Agent {agent}", "Interface": f"PJSIP/{agent}", "StateInterface": f"PJSIP/{agent}",
           "Membership": "dynamic", "Penalty": "0", "CallsTaken": "0", "LastCall": "0", "LastPause": "0",
           "LoginTime": str(int(T0)), "InCall": "0", "Status": str(status), "Paused": str(paused),
           "PausedReason": reason, "Ringinuse": "0", "Wrapuptime": "0"}
    out.update({k: str(v) for k, v in more.items()})
    return out


def join(queue: str, uid: str, ts: float, number: str = "+34911000001", position: int = 1) -> dict:
    return {"Event": "QueueCallerJoin", "Timestamp": f"{ts:.6f}", "Channel": f"PJSIP/trunk-{uid}", "Uniqueid": uid,
            "Linkedid": uid, "CallerIDNum": number, "CallerIDName": "<unknown>", "Queue": queue,
            "Position": str(position), "Count": str(position)}


def test_pause_with_reason_and_unpause():
    m = QueueMonitor()
    m.feed(member("QueueMemberAdded", "support", "2001", T0))
    m.feed(member("QueueMemberAdded", "sales", "2001", T0))
    assert m.agent("2001").state == "available" and m.agent("2001").queues == ["sales", "support"]
    changes = m.feed({"Event": "QueueMemberPause", "Timestamp": f"{T0 + 10:.6f}", "Interface": "PJSIP/2001",
                      "MemberName": "Agent 2001", "Paused": "1", "PausedReason": "lunch"})  # no Queue: every queue
    assert changes.agents == {"2001"} and changes.queues == {"sales", "support"}
    agent = m.agent("2001")
    assert (agent.state, agent.pause_reason, agent.since) == ("paused", "lunch", T0 + 10)
    assert m.queue("support").agents["paused"] == 1 and m.queue("support").agents["available"] == 0
    # back from lunch in support only: still takes calls there, so not paused overall
    m.feed(member("QueueMemberPause", "support", "2001", T0 + 20, paused=0))
    assert m.agent("2001").state == "available" and m.agent("2001").pause_reason is None
    assert m.queue("sales").agents["paused"] == 1 and m.queue("support").agents["available"] == 1
    # a QueueMemberStatus with the pause (the usual way Asterisk reports it) and the old "Reason" header
    m.feed(member("QueueMemberStatus", "support", "2001", T0 + 30, paused=1, reason="", Reason="training"))
    assert (m.agent("2001").state, m.agent("2001").pause_reason) == ("paused", "training")


def test_unavailable_device_and_logging_out():
    m = QueueMonitor()
    m.feed(member("QueueMemberAdded", "support", "2002", T0))
    m.feed(member("QueueMemberStatus", "support", "2002", T0 + 5, status=5))  # phone unregistered
    assert m.agent("2002").state == "unavailable"
    assert m.queue("support").agents == {"logged_in": 1, "available": 0, "ringing": 0, "on_call": 0, "wrap_up": 0,
                                         "paused": 0, "unavailable": 1}
    m.feed(member("QueueMemberStatus", "support", "2002", T0 + 6, status=1))
    assert m.agent("2002").state == "available" and m.agent("2002").since == T0 + 6
    changes = m.feed(member("QueueMemberRemoved", "support", "2002", T0 + 9))
    assert changes.queues == {"support"} or changes.agents == {"2002"}
    assert m.agent("2002").state == "logged_out" and m.agent("2002").queues == []
    assert m.queue("support").agents["logged_in"] == 0


def test_busy_device_without_a_tracked_call_is_on_a_call():
    m = QueueMonitor()
    m.feed(member("QueueMemberAdded", "support", "2003", T0))
    m.feed(member("QueueMemberStatus", "support", "2003", T0 + 1, status=2))  # an outbound call
    assert m.agent("2003").state == "on_call" and m.agent("2003").call_id is None
    m.feed(member("QueueMemberStatus", "support", "2003", T0 + 2, status=6))
    assert m.agent("2003").state == "ringing"


def test_wrap_up_ends_with_the_outcome_or_after_the_maximum():
    m = QueueMonitor(wrap_up_max=30)
    m.feed(member("QueueMemberAdded", "support", "2004", T0))
    m.call_event(CallRinging("c1", iso_utc(T0 + 1), "2004", "support", "+34911000002", None))
    m.call_event(CallAnswered("c1", iso_utc(T0 + 2), "2004", "support", 2.0))
    assert m.agent("2004").state == "on_call"
    m.call_event(CallEnded("c1", iso_utc(T0 + 12), "2004", "completed", 10.0))
    assert (m.agent("2004").state, m.agent("2004").call_id) == ("wrap_up", "c1")
    assert m.queue("support").agents["wrap_up"] == 1
    assert not m.tick(T0 + 20)  # not yet
    assert m.end_wrap_up("other-call", T0 + 21).agents == set()
    changes = m.end_wrap_up("c1", T0 + 25)
    assert changes.agents == {"2004"} and m.agent("2004").state == "available" and m.agent("2004").since == T0 + 25
    # next call: nobody saves an outcome; wrap-up ends by itself
    m.call_event(CallAnswered("c2", iso_utc(T0 + 40), "2004", "support", 0.5))
    m.call_event(CallEnded("c2", iso_utc(T0 + 50), "2004", "completed", 10.0))
    assert m.agent("2004").state == "wrap_up"
    assert m.tick(T0 + 80).agents == {"2004"}
    assert m.agent("2004").state == "available"


def test_paused_agent_on_a_call_shows_the_call_and_pause_comes_back_after_wrap_up():
    m = QueueMonitor(wrap_up_max=5)
    m.feed(member("QueueMemberAdded", "support", "2005", T0, paused=1, reason="meeting"))
    assert m.agent("2005").state == "paused"
    m.call_event(CallAnswered("c3", iso_utc(T0 + 1), "2005", None, 0.0))  # a direct call reaches it anyway
    assert m.agent("2005").state == "on_call"
    m.call_event(CallEnded("c3", iso_utc(T0 + 3), "2005", "completed", 2.0))
    assert m.agent("2005").state == "wrap_up"
    m.tick(T0 + 9)
    assert (m.agent("2005").state, m.agent("2005").pause_reason) == ("paused", "meeting")


def test_withheld_caller_is_not_named_by_the_raw_event():
    m = QueueMonitor()
    m.feed(join("support", "9.1", T0, number="anonymous"))
    assert m.queue("support").waiting[0].caller_number is None
    m.feed(join("support", "9.2", T0 + 1, number="+34911000003", position=2))
    # the tracker's verdict (presentation restricted) wins over the raw header
    m.call_event(CallQueued("9.2", iso_utc(T0 + 1), "support", None, None, 2))
    assert [w.caller_number for w in m.queue("support").waiting] == [None, None]


def snapshot_of(channels=(), members=(), entries=(), params=()) -> Snapshot:
    return Snapshot(channels=list(channels), queue_entries=list(entries), queue_members=list(members),
                    queue_params=list(params))


def test_reconnect_snapshot_after_missed_events_gives_the_right_view():
    """The link drops while Ana waits and both support phones ring; during the
    outage 1001 answers and hangs up, 1002 is paused for a break, and a new
    caller arrives.  The snapshot alone must set everything right."""
    r = Replayer()
    messages = capture_messages("support_answered")
    cut = next(i for i, m in enumerate(messages) if m.get("Event") == "DialEnd" and m.get("DialStatus") == "ANSWER"
               and m.get("DestChannel", "").startswith("Local/1001"))
    r.run(messages[:cut])
    assert len(r.monitor.queue("support").waiting) == 1 and r.monitor.agent("1001").state == "ringing"
    r.tracker.link_up()
    now = 1795383200.0
    new_caller = {"Event": "CoreShowChannel", "Channel": "PJSIP/trunk-00000042", "Uniqueid": "1795383190.77",
                  "Linkedid": "1795383190.77", "CallerIDNum": "+34911222333", "CallerIDName": "Zoe", "BridgeId": "",
                  "ChannelState": "6", "ChannelStateDesc": "Up", "Context": "from-trunk", "Exten": "support"}
    params = [{"Event": "QueueParams", "Queue": q, "Calls": "1" if q == "support" else "0"} for q in ("support", "sales")]
    members = [
        {"Event": "QueueMember", "Queue": "support", "Name": "Alice Agent", "Location": "Local/1001@agents/n",
         "StateInterface": "Local/1001@agents/n", "Status": "1", "Paused": "0", "PausedReason": "", "InCall": "0"},
        {"Event": "QueueMember", "Queue": "support", "Name": "Bob Agent", "Location": "Local/1002@agents/n",
         "StateInterface": "Local/1002@agents/n", "Status": "1", "Paused": "1", "PausedReason": "break", "InCall": "0"},
        {"Event": "QueueMember", "Queue": "sales", "Name": "Dave Agent", "Location": "Local/1004@agents/n",
         "StateInterface": "Local/1004@agents/n", "Status": "5", "Paused": "0", "PausedReason": "", "InCall": "0"},
    ]
    entries = [{"Event": "QueueEntry", "Queue": "support", "Position": "1", "Channel": "PJSIP/trunk-00000042",
                "Uniqueid": "1795383190.77", "CallerIDNum": "+34911222333", "CallerIDName": "Zoe", "Wait": "10"}]
    snapshot = snapshot_of([new_caller], members, entries, params)
    changes = r.monitor.resync(snapshot, now)
    for event in r.tracker.resync(snapshot, now):
        changes.update(r.monitor.call_event(event))
    assert {"support", "sales"} <= changes.queues and {"1001", "1002", "1004"} <= changes.agents
    support = r.monitor.queue("support")
    assert [(w.call_id, w.caller_number, w.since) for w in support.waiting] == [("1795383190.77", "+34911222333", now - 10)]
    assert support.agents == {"logged_in": 2, "available": 1, "ringing": 0, "on_call": 0, "wrap_up": 0, "paused": 1,
                              "unavailable": 0}
    assert r.monitor.agent("1002").pause_reason == "break"
    assert r.monitor.agent("1004").state == "unavailable"
    # Ana's call is gone: neither phone rings for it any more
    assert r.monitor.agent("1001").state == "available" and r.monitor.agent("1001").call_id is None
    # a second identical snapshot changes nothing in the view
    before = (r.monitor.queue("support"), r.monitor.agent("1002"))
    r.monitor.resync(snapshot, now + 1)
    assert (r.monitor.queue("support"), r.monitor.agent("1002")) == before


def test_reconnect_snapshot_finds_a_call_in_progress():
    """After a restart mid-call, the snapshot's bridge and the tracker's
    ringing + answered make the agent on a call again."""
    r = Replayer()
    now = 1795383300.0
    caller = {"Event": "CoreShowChannel", "Channel": "PJSIP/trunk-00000050", "Uniqueid": "1795383290.1",
              "Linkedid": "1795383290.1", "CallerIDNum": "+34911444555", "CallerIDName": "Yves", "BridgeId": "b-1",
              "ChannelState": "6", "ChannelStateDesc": "Up"}
    agent_leg = {"Event": "CoreShowChannel", "Channel": "PJSIP/1001-00000051", "Uniqueid": "1795383290.2",
                 "Linkedid": "1795383290.1", "CallerIDNum": "1001", "CallerIDName": "Alice", "BridgeId": "b-1",
                 "ChannelState": "6", "ChannelStateDesc": "Up"}
    members = [{"Event": "QueueMember", "Queue": "support", "Name": "Alice Agent", "Location": "PJSIP/1001",
                "StateInterface": "PJSIP/1001", "Status": "2", "Paused": "0", "PausedReason": "", "InCall": "1"}]
    snapshot = snapshot_of([caller, agent_leg], members, [], [{"Event": "QueueParams", "Queue": "support"}])
    r.monitor.resync(snapshot, now)
    for event in r.tracker.resync(snapshot, now):
        r.monitor.call_event(event)
    alice = r.monitor.agent("1001")
    assert (alice.state, alice.call_id) == ("on_call", "1795383290.1")
