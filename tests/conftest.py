"""Fixtures for the real services the tests talk to.

Redis and PostgreSQL are real servers on this machine (`.ci/services.sh`
starts them when installed but stopped).  A test that needs one and cannot
reach it FAILS with the reason: a missing service must never turn into a
silently skipped test."""
from __future__ import annotations

import os
import uuid

import pytest

REDIS_URL = os.environ.get("SCREENPOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_DSN = os.environ.get("SCREENPOP_TEST_POSTGRES_DSN", "postgresql+asyncpg://root@127.0.0.1:5432/test")


@pytest.fixture
async def redis_client():
    import redis.asyncio as redis

    client = redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:  # pragma: no cover - the point is to fail loudly
        await client.aclose()
        pytest.fail(f"Redis is required at {REDIS_URL} and is not reachable: {exc}")
    yield client
    await client.aclose()


@pytest.fixture
def redis_prefix(redis_client):
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    yield prefix


@pytest.fixture
async def clean_redis_prefix(redis_client, redis_prefix):
    yield redis_prefix
    async for key in redis_client.scan_iter(match=redis_prefix + "*", count=1000):
        await redis_client.delete(key)


@pytest.fixture(scope="module")
def demo_dbs(tmp_path_factory):
    """The demo business databases (:func:`tests.stack.seed_databases`),
    seeded once per module: 300 customers, seed 3.  A module overrides this
    fixture for another size or seed, or to add hostile rows."""
    from tests.stack import seed_databases

    return seed_databases(tmp_path_factory.mktemp("demo"), customers=300, seed=3)


@pytest.fixture
async def stack(demo_dbs, tmp_path):
    """The whole node in front of the PBX simulator on ``demo_dbs``
    (:class:`tests.stack.Stack`, default settings); a module overrides this
    fixture for other settings."""
    from tests.stack import Stack

    async with Stack(demo_dbs, tmp_path) as stack:
        yield stack
