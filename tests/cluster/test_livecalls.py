"""The live call state on the machine's real Redis: what one ingester's
orchestrator writes, another node reads back as an agent's pops and the
calls in progress, and the next ingester takes up without popping anyone
twice.  The lookup and delivery are the in-memory stand-ins of
tests/orchestrator (the real ones run end to end in test_multinode)."""
from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from screenpop.cluster.bus import LocalBus
from screenpop.cluster.livecalls import LiveCalls
from screenpop.cluster.views import LiveView, SupervisorMirror
from screenpop.orchestrator import Orchestrator
from telephony.events import CallAnswered, CallEnded, CallQueued, CallRinging
from tests.orchestrator.test_orchestrator import InMemoryLookup, Recorder

TS = "2026-11-23T10:00:00.000Z"


async def settled(live: LiveCalls, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while live._dirty or live._wake.is_set():
        assert time.monotonic() < deadline, "live state not written"
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.02)


def follower(live: LiveCalls) -> LiveView:
    """The view of a node that does not ingest: it reads Redis."""
    return LiveView(SimpleNamespace(ingest=None, livecalls=live, bus=LocalBus(), mirror=SupervisorMirror()))


async def ring_and_answer(orchestrator, call_id="c1"):
    await orchestrator.handle(CallQueued(call_id, TS, "support", "+34912345678", "Ana", 1))
    await orchestrator.handle(CallRinging(call_id, TS, "1001", "support", "+34912345678", "Ana"))
    await orchestrator.handle(CallRinging(call_id, TS, "1002", "support", "+34912345678", "Ana"))
    await orchestrator.handle(CallAnswered(call_id, TS, "1001", "support", 3.0))


async def test_another_node_replays_an_agents_pops_and_lists_the_calls(redis_client, clean_redis_prefix):
    live = LiveCalls(redis_client, clean_redis_prefix, tick=0.001)
    live.start()
    orchestrator = Orchestrator(InMemoryLookup(), Recorder(), on_change=lambda call: live.changed(call.to_state()))
    await ring_and_answer(orchestrator)
    await settled(live)
    view = follower(live)
    pops = await view.pops_for("1001")
    assert [(p["call_id"], p["state"], p["card"]["persons"][0]["name"]) for p in pops] == [("c1", "answered", "Customer +34912345678")]
    assert await view.pops_for("1002") == []  # retracted when 1001 answered
    calls = await view.calls_snapshot()
    assert calls == orchestrator.calls_snapshot() and calls[0]["answered_by"] == "1001"

    await orchestrator.handle(CallEnded("c1", TS, "1001", "completed", 10.0))
    await settled(live)
    assert await view.pops_for("1001") == [] and await view.calls_snapshot() == []
    assert await redis_client.smembers(clean_redis_prefix + "live:agent:1001") == set()
    await live.stop()


async def test_the_next_ingester_takes_calls_up_without_popping_twice_and_ends_the_vanished(redis_client, clean_redis_prefix):
    live = LiveCalls(redis_client, clean_redis_prefix, tick=0.001)
    live.start()
    first = Orchestrator(InMemoryLookup(), Recorder(), on_change=lambda call: live.changed(call.to_state()))
    await ring_and_answer(first, "talking")
    await first.handle(CallQueued("gone", TS, "support", "+14155550100", "Bob", 1))
    await first.handle(CallRinging("gone", TS, "1003", "support", "+14155550100", "Bob"))
    await settled(live)
    await live.stop()  # the first ingester dies

    states = await LiveCalls(redis_client, clean_redis_prefix).all()
    live2 = LiveCalls(redis_client, clean_redis_prefix, tick=0.001)
    live2.adopt(states)
    live2.start()
    delivery = Recorder()
    second = Orchestrator(InMemoryLookup(), delivery, on_change=lambda call: live2.changed(call.to_state()))
    assert second.restore(states) == 2
    # the resync tells what the first knew: the call answered by 1001
    await second.handle(CallRinging("talking", TS, "1001", "support", "+34912345678", "Ana"))
    await second.handle(CallAnswered("talking", TS, "1001", "support", 3.0))
    assert delivery.to("1001") == []  # no second pop, no second "answered"
    ended = second.reconcile({"talking"})  # Asterisk no longer has "gone"
    assert ended == ["gone"]
    await second.drain()
    assert delivery.to("1003") == [("retract", "unanswered")]
    await second.handle(CallEnded("talking", TS, "1001", "completed", 10.0))
    assert delivery.to("1001") == [("call", "ended")]
    await settled(live2)
    assert await live2.all() == []
    await live2.stop()


async def test_states_written_while_redis_was_away_are_written_when_it_returns(redis_client, clean_redis_prefix):
    import redis.asyncio as aioredis

    away = aioredis.from_url("redis://127.0.0.1:1/0")
    live = LiveCalls(away, clean_redis_prefix, tick=0.001)
    live.start()
    orchestrator = Orchestrator(InMemoryLookup(), Recorder(), on_change=lambda call: live.changed(call.to_state()))
    live.current = lambda: [c.to_state() for c in orchestrator.calls.values()]
    await ring_and_answer(orchestrator)
    deadline = time.monotonic() + 5
    while live.ok:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    live.redis = redis_client  # Redis answers again
    await away.aclose()
    deadline = time.monotonic() + 10
    while not live.ok:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await settled(live)
    assert [p["call_id"] for p in await follower(live).pops_for("1001")] == ["c1"]
    await live.stop()
