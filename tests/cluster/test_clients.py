"""The node's Redis clients on the machine's Redis: a burst over the shared
pool's size waits instead of failing, and the lease has connections of its own."""
from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import redis.asyncio as aioredis

from screenpop.cluster.clients import lease_client, shared_client

URL = "redis://127.0.0.1:6379/0"


async def slow_reads(client, n: int, key: str) -> list:
    # BLPOP on an empty list holds its connection for the whole timeout
    return await asyncio.gather(*[client.blpop([key], timeout=0.3) for _ in range(n)], return_exceptions=True)


async def test_a_default_pool_fails_a_burst_over_its_size():
    """What went wrong at 50 calls/s: redis-py raises instead of waiting."""
    client = aioredis.Redis.from_pool(aioredis.ConnectionPool.from_url(URL, max_connections=2))
    try:
        results = await slow_reads(client, 6, f"screenpop-test:{uuid.uuid4().hex}")
        assert any(isinstance(r, aioredis.ConnectionError) for r in results)
    finally:
        await client.aclose()


async def test_the_shared_client_queues_a_burst_and_the_lease_is_never_behind_it():
    shared, lease = shared_client(URL, max_connections=2, wait=5.0), lease_client(URL)
    key = f"screenpop-test:{uuid.uuid4().hex}"
    try:
        burst = asyncio.create_task(slow_reads(shared, 6, key))
        await asyncio.sleep(0.05)  # the shared pool is now all taken
        started = time.perf_counter()
        assert await lease.set(key + ":lease", "node-a", nx=True, px=1000)
        assert time.perf_counter() - started < 0.2  # not queued behind the burst's 0.9 s
        results = await burst
        assert results == [None] * 6  # every read ran (and timed out empty), none refused
    finally:
        await lease.delete(key + ":lease")
        await shared.aclose()
        await lease.aclose()
