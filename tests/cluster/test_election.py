"""The ingester lease and election on the machine's real Redis (one lease key
per test), stepped by hand with a fake clock so every transition is
deterministic; and what a Redis that is away does to the holder."""
from __future__ import annotations

import pytest

from screenpop.cluster.election import Election
from screenpop.cluster.lease import Lease


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Node:
    """One node's election, with a record of what it was told to do."""

    def __init__(self, redis, key, name, clock, healthy=lambda: True):
        self.log: list[str] = []
        self.lease = Lease(redis, key, name, ttl_seconds=2.0)

        async def promote():
            self.log.append("promote")

        async def demote(reason):
            self.log.append(f"demote:{reason}")

        self.election = Election(self.lease, promote=promote, demote=demote, healthy=healthy, grace=5.0, cooldown=10.0,
                                 clock=clock, retaken=lambda: self.log.append("retaken"))


@pytest.fixture
def key(redis_prefix):
    return redis_prefix + "ingester"


async def test_exactly_one_node_wins_and_the_next_takes_over_when_it_lapses(redis_client, key):
    clock = Clock()
    a, b = Node(redis_client, key, "a", clock), Node(redis_client, key, "b", clock)
    await a.election.step()
    await b.election.step()
    assert (a.election.leading, b.election.leading) == (True, False)
    assert await a.lease.holder() == "a" and a.log == ["promote"]
    await a.election.step()  # renews
    assert 0 < await redis_client.pttl(key) <= 2000
    await redis_client.delete(key)  # a stops renewing (dead) and the lease lapses
    await b.election.step()
    assert b.election.leading and await b.lease.holder() == "b"
    await a.election.step()  # a comes back: b holds it, a stands down
    assert not a.election.leading and a.log == ["promote", "demote:lease lost"]
    await redis_client.delete(key)


async def test_a_renewal_never_extends_or_deletes_someone_elses_lease(redis_client, key):
    mine, theirs = Lease(redis_client, key, "me", 2.0), Lease(redis_client, key, "them", 2.0)
    assert await theirs.acquire()
    assert not await mine.acquire()
    assert not await mine.renew()
    assert not await mine.release()
    assert await theirs.holder() == "them"
    assert await theirs.release() and await theirs.holder() is None


async def test_a_holder_whose_ami_link_stays_down_hands_over_and_sits_out(redis_client, key):
    clock, ami_up = Clock(), {"a": True}
    a = Node(redis_client, key, "a", clock, healthy=lambda: ami_up["a"])
    b = Node(redis_client, key, "b", clock)
    await a.election.step()
    ami_up["a"] = False
    await a.election.step()  # down, within the grace
    assert a.election.leading
    clock.now += 6
    await a.election.step()  # past the grace: gives the lease back
    assert not a.election.leading and await a.lease.holder() is None and a.log[-1] == "demote:ami down"
    await a.election.step()  # sitting out: does not take it back
    assert await a.lease.holder() is None
    await b.election.step()
    assert b.election.leading
    await redis_client.delete(key)


async def test_the_holder_keeps_ingesting_while_redis_is_away_and_retakes_a_lapsed_lease(redis_client, key):
    import redis.asyncio as aioredis

    clock = Clock()
    a = Node(redis_client, key, "a", clock)
    await a.election.step()
    a.lease.redis = aioredis.from_url("redis://127.0.0.1:1/0")  # Redis unreachable from a
    await a.election.step()
    assert a.election.leading and not a.election.redis_ok and a.election.error
    await a.lease.redis.aclose()
    a.lease.redis = redis_client
    await redis_client.delete(key)  # Redis restarted empty meanwhile
    await a.election.step()
    assert a.election.leading and a.election.redis_ok and await a.lease.holder() == "a"
    assert a.log == ["promote", "retaken"]  # told to write its live state again
    await redis_client.delete(key)


async def test_a_follower_that_lost_redis_gives_the_holder_a_lease_time_first(redis_client, key):
    import redis.asyncio as aioredis

    clock = Clock()
    b = Node(redis_client, key, "b", clock)
    b.lease.redis = aioredis.from_url("redis://127.0.0.1:1/0")
    await b.election.step()
    await b.lease.redis.aclose()
    b.lease.redis = redis_client
    await b.election.step()  # Redis is back, the lease is free (restarted empty): b waits
    assert not b.election.leading
    clock.now += 2.1
    await b.election.step()  # the holder did not come back for it
    assert b.election.leading
    await redis_client.delete(key)
