"""The bus on the machine's real Redis: local delivery at once, other nodes
in order, catch-up after a reader's connection drops, no duplicates when a
batch is sent twice, keyed state for late joiners."""
from __future__ import annotations

import asyncio
import time

import pytest

from screenpop.cluster.bus import AGENTS, COMMANDS, SUPERVISORS, LocalBus, RedisBus
from tests.conftest import REDIS_URL


async def until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.fixture
async def buses(redis_client, redis_prefix):
    made: list[RedisBus] = []

    async def make(name: str, **options) -> RedisBus:
        bus = RedisBus(REDIS_URL, node_id=name, prefix=redis_prefix, **options)
        await bus.start()
        await until(lambda: bus._last_ids is not None)  # reading from the streams' ends
        made.append(bus)
        return bus

    yield make
    for bus in made:
        await bus.stop()
    keys = [k async for k in redis_client.scan_iter(match=redis_prefix + "*")]
    if keys:
        await redis_client.delete(*keys)


async def test_local_bus_calls_handlers_in_order_and_survives_a_failing_one():
    bus, seen = LocalBus(), []
    bus.subscribe(AGENTS, lambda m: 1 / 0)
    bus.subscribe(AGENTS, seen.append)
    for i in range(3):
        bus.publish(AGENTS, {"n": i})
    assert seen == [{"n": 0}, {"n": 1}, {"n": 2}]
    bus.publish(SUPERVISORS, {"type": "queue", "queue": "q"}, key="queue:q")
    bus.publish(SUPERVISORS, {"type": "queue", "queue": "q", "waiting": 2}, key="queue:q")
    assert await bus.latest(SUPERVISORS) == {"queue:q": {"type": "queue", "queue": "q", "waiting": 2}}


async def test_other_nodes_receive_in_order_and_the_publisher_only_once(buses):
    a, b = await buses("a"), await buses("b")
    got_a, got_b = [], []
    a.subscribe(AGENTS, got_a.append)
    b.subscribe(AGENTS, got_b.append)
    for i in range(200):
        a.publish(AGENTS, {"agent": "1001", "message": {"n": i}})
    assert len(got_a) == 200  # at once, inside publish: no round trip through Redis
    await until(lambda: len(got_b) == 200)
    await asyncio.sleep(0.2)
    assert [m["message"]["n"] for m in got_b] == list(range(200))
    assert len(got_a) == 200  # its own messages are not delivered a second time from the stream
    assert a.connected and b.connected and a.stats.backlog == 0


async def test_a_reader_that_blinks_catches_up_from_its_last_seen_id(buses):
    a, b = await buses("a"), await buses("b")
    got = []
    b.subscribe(COMMANDS, got.append)
    a.publish(COMMANDS, {"n": 0})
    await until(lambda: len(got) == 1)
    # b's reading connection is cut (as a Redis restart or a network hiccup would)
    await b._reader.connection_pool.disconnect()
    await b._reader.aclose()
    for i in range(1, 50):
        a.publish(COMMANDS, {"n": i})
    await until(lambda: a.stats.backlog == 0)
    import redis.asyncio as aioredis

    b._reader = aioredis.from_url(REDIS_URL, decode_responses=True)
    await until(lambda: len(got) == 50)
    assert [m["n"] for m in got] == list(range(50))


async def test_a_batch_sent_twice_is_delivered_once(buses):
    """A pipeline that broke after Redis applied it is re-sent: readers drop the repeats by sequence number."""
    a, b = await buses("a"), await buses("b")
    got = []
    b.subscribe(AGENTS, got.append)
    a.publish(AGENTS, {"n": 1})
    await until(lambda: len(got) == 1)
    # the same entry written again, as a retry would
    await a._writer.xadd(a._stream(AGENTS), {"o": a.origin, "s": 1, "m": '{"n": 1}'})
    a.publish(AGENTS, {"n": 2})
    await until(lambda: len(got) == 2)
    assert [m["n"] for m in got] == [1, 2] and b.stats.duplicates == 1


async def test_keyed_state_is_there_for_a_node_that_starts_later(buses):
    a = await buses("a")
    a.publish(SUPERVISORS, {"type": "agent", "agent_id": "1001", "state": "ringing"}, key="agent:1001")
    a.publish(SUPERVISORS, {"type": "agent", "agent_id": "1001", "state": "talking"}, key="agent:1001")
    await until(lambda: a.stats.backlog == 0)
    late = await buses("late")
    assert (await late.latest(SUPERVISORS))["agent:1001"]["state"] == "talking"


async def test_redis_unreachable_keeps_local_delivery_and_bounds_the_outbox():
    bus = RedisBus("redis://127.0.0.1:1/0", node_id="cut-off", outbox_max=10)
    got = []
    bus.subscribe(AGENTS, got.append)
    await bus.start()
    try:
        for i in range(25):
            bus.publish(AGENTS, {"n": i})
        assert len(got) == 25  # this node's own agents still get everything
        await until(lambda: "publish" in bus.status().get("errors", {}))
        assert not bus.connected and bus.stats.backlog == 10 and bus.stats.dropped == 15
        status = bus.status()
        assert status["ok"] is False and status["backlog"] == 10 and "errors" in status
    finally:
        await bus.stop()
