"""AMI faults on the whole node (tests/stack.py: the PBX simulator
speaking AMI over TCP, the real connection, tracker, orchestrator, lookup,
interaction log and WebSockets; nothing mocked).

What a call center notices when Asterisk goes away is the agents' screens
and the call log, so that is what these tests look at: the pops, retractions
and call messages agents receive, the call events the orchestrator is
handed, and the interaction records."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime

from telephony.simulator import PbxSimulator
from telephony.simulator.model import IdAllocator
from tests.stack import AMI_SECRET

from .harness import EventTap, Inbox, eventually, start_call

ANA = "+34912345678"  # a demo persona in all three systems
BOB = "+14155550100"


async def relogged(stack, logins: int, timeout: float = 10.0) -> None:
    connection = stack.service.connection
    await eventually(lambda: connection.logins > logins and connection.state == "connected", timeout, "AMI login again")


async def logged(stack, token: str, call_ids: list[str]) -> dict[str, dict]:
    return {call_id: await stack.logged(call_id, token) for call_id in call_ids}


async def test_asterisk_restarted_mid_call_ends_its_calls_once_and_pops_new_ones(stack):
    """Proves: when Asterisk restarts (every call it had is gone, the AMI
    link drops and comes back to a PBX with no channels), the node ends each
    call it was tracking exactly once: the agent talking gets one "ended",
    the agent whose phone was ringing gets one retraction, each call is
    logged once with its end; no pop is repeated; and calls on the restarted
    Asterisk pop and are logged as usual."""
    tap = EventTap(stack.service)
    alice = Inbox(await stack.socket("agent1001"))
    dave = Inbox(await stack.socket("agent1004"))
    talking, _ = start_call(stack.simulator, "queue_answered", ANA, "Ana Garcia", queue="support",
                            agents=["1001"], answer_after=0.2, talk_seconds=600)
    ringing, _ = start_call(stack.simulator, "direct", BOB, "Bob Smith", agents=["1004"], answer_after=600)
    await eventually(lambda: alice.of(talking, "call", "answered") and dave.of(ringing, "pop"), what="answered and ringing")

    port, logins = stack.simulator.port, stack.service.connection.logins
    await stack.simulator.stop()  # Asterisk goes down with its calls
    down_at = time.time()
    await asyncio.sleep(2.0)  # the restart takes a while: the calls ended when it went down, not when it is back
    # The restarted Asterisk: same port, no channels, its own uniqueids
    # (a real one numbers from a later epoch second; the seed here would not).
    stack.simulator = PbxSimulator(seed=12, secret=AMI_SECRET, port=port)
    stack.simulator.pbx.ids = IdAllocator(12, first_uniqueid=100_000)
    await stack.simulator.start()
    await relogged(stack, logins)

    await eventually(lambda: alice.of(talking, "call", "ended") and dave.of(ringing, "retract"), what="calls ended")
    assert tap.count(talking, "call.ended") == 1 and tap.count(ringing, "call.ended") == 1
    assert tap.by_call[talking][-1].reason == "completed" and tap.by_call[talking][-1].agent == "1001"
    assert tap.count(ringing, "call.missed") == 1

    after, _ = start_call(stack.simulator, "queue_answered", BOB, "Bob Smith", queue="support",
                          agents=["1001"], answer_after=0.2, talk_seconds=0.5)
    await eventually(lambda: alice.of(after, "call", "ended"), what="the call on the restarted Asterisk")

    token = await stack.token("supervisor")
    records = await logged(stack, token, [talking, ringing, after])
    assert records[talking]["answered_by"] == "1001" and records[talking]["end_reason"] == "completed"
    ended = datetime.fromisoformat(records[talking]["ended_at"].replace("Z", "+00:00")).timestamp()
    assert down_at - 1.0 <= ended <= down_at + 0.5  # at the crash (the last event seen), not at the reconnect
    assert records[ringing]["answered_by"] is None and records[ringing]["agents_rung"] == ["1004"]
    assert records[after]["end_reason"] == "completed" and records[after]["caller_e164"] == BOB
    status, found = await stack.api("GET", "/api/v1/interactions?limit=50", token)
    assert status == 200 and sorted(i["call_id"] for i in found["items"]) == sorted(records)  # nothing else, nothing twice
    # one of each message per call and agent: no pop repeated by the resync
    assert [m["type"] for m in alice.of(talking)] == ["pop", "call", "call"]
    assert [m["type"] for m in dave.of(ringing)] == ["pop", "retract"]
    assert [m["type"] for m in alice.of(after)] == ["pop", "call", "call"]
    assert alice.of(after, "pop")[0]["card"]["e164"] == BOB
    assert stack.service.orchestrator.calls == {} and stack.service.connection.state == "connected"
    assert alice.closed is None and dave.closed is None  # the agents' sockets never noticed
    for inbox in (alice, dave):
        await inbox.close()


async def test_ami_link_cut_while_asterisk_carries_on_reconciles_calls(stack):
    """Proves: when the AMI link is down for a while and Asterisk keeps
    working (manager reload, network cut), the resync on reconnect settles
    every call: one that ended unseen is ended once; one that began and was
    answered unseen pops on the answering agent's screen (as answered) and
    is logged (the resync reports it as rung and answered, so the desktop
    gets the pop then "answered"); one that lasted across the cut keeps being tracked and ends
    normally; no call event is repeated."""
    tap = EventTap(stack.service)
    alice, bob, dave = [Inbox(await stack.socket(name)) for name in ("agent1001", "agent1002", "agent1004")]
    sim = stack.simulator
    ends_unseen, ends_unseen_done = start_call(sim, "queue_answered", ANA, "Ana Garcia", queue="support",
                                               agents=["1001"], answer_after=0.2, talk_seconds=1.5)
    across, across_done = start_call(sim, "direct", BOB, "Bob Smith", agents=["1004"], answer_after=0.2, talk_seconds=5)
    await eventually(lambda: alice.of(ends_unseen, "call", "answered") and dave.of(across, "call", "answered"),
                     what="both calls answered")

    logins = stack.service.connection.logins
    await sim.server.stop()  # the manager stops listening; the PBX plays on
    unseen, unseen_done = start_call(sim, "queue_answered", BOB, "Bob Smith", queue="support",
                                     agents=["1002"], answer_after=0.2, talk_seconds=3)
    await asyncio.wait_for(ends_unseen_done, 5)  # hung up while nobody listened
    await eventually(lambda: any(live.bridge and "1002@" in name for name, live in sim.pbx.channels.items()),
                     what="the unseen call answered by 1002")
    assert stack.service.connection.state != "connected"
    assert not alice.of(ends_unseen, "call", "ended") and unseen not in tap.by_call
    await sim.server.start()  # same port
    await relogged(stack, logins)

    await eventually(lambda: alice.of(ends_unseen, "call", "ended"), what="the call that ended unseen ends")
    await eventually(lambda: bob.of(unseen, "pop"), what="the unseen call pops on 1002")
    assert bob.of(unseen, "pop")[0]["card"]["e164"] == BOB
    await eventually(lambda: bob.of(unseen, "call", "answered"), what="the unseen call shown as answered")
    await asyncio.wait_for(asyncio.gather(across_done, unseen_done), 10)
    await eventually(lambda: dave.of(across, "call", "ended") and bob.of(unseen, "call", "ended"), what="the other calls end")

    assert tap.types(ends_unseen) == ["call.queued", "call.ringing", "call.answered", "call.ended"]
    assert tap.types(across) == ["call.ringing", "call.answered", "call.ended"]
    # found answered from a queue: queued (its Queue application says which), rung and answered at Asterisk's times
    assert tap.types(unseen) == ["call.queued", "call.ringing", "call.answered", "call.ended"]
    assert [m["type"] for m in alice.of(ends_unseen)] == ["pop", "call", "call"]
    assert [m["type"] for m in dave.of(across)] == ["pop", "call", "call"]
    assert [m.get("event", m["type"]) for m in bob.of(unseen)] == ["pop", "answered", "ended"]
    token = await stack.token("supervisor")
    records = await logged(stack, token, [ends_unseen, across, unseen])
    assert [records[c]["answered_by"] for c in (ends_unseen, across, unseen)] == ["1001", "1004", "1002"]
    assert all(r["end_reason"] == "completed" for r in records.values())
    assert records[across]["talk_seconds"] >= 4.5  # measured across the cut, from Asterisk's timestamps
    assert records[unseen]["queue"] == "support" and records[unseen]["wait_seconds"] < 1.5  # not "no queue, wait 0 at the reconnect"
    status, found = await stack.api("GET", "/api/v1/interactions?limit=50", token)
    assert sorted(i["call_id"] for i in found["items"]) == sorted(records)
    for inbox in (alice, bob, dave):
        assert inbox.closed is None
        await inbox.close()
