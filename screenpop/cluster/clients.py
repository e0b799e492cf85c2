"""The Redis clients of a node: one shared by the hot paths, one for the lease.

Why two: redis-py's asyncio pool opens at most ``max_connections`` (100 by
default) and then *raises* ``MaxConnectionsError`` instead of waiting.  At
50 calls/s the lookups, live-call writes and balance reads of an ingester
used them all; lookups degraded and, worse, a lease renewal failed on the
same pool, which can hand the ingester role away from a healthy node.

* :func:`shared_client`: a blocking pool, so a burst waits its turn (up to
  ``wait`` seconds) instead of failing;
* :func:`lease_client`: its own two connections, so renewing the lease
  never queues behind lookups.
"""
from __future__ import annotations

import redis.asyncio as aioredis

TIMEOUTS = {"socket_connect_timeout": 2.0, "socket_timeout": 2.0, "health_check_interval": 5}


def shared_client(url: str, *, max_connections: int = 100, wait: float = 2.0) -> aioredis.Redis:
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=wait, **TIMEOUTS)
    return aioredis.Redis.from_pool(pool)  # closing the client closes its pool


def lease_client(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_pool(aioredis.ConnectionPool.from_url(url, max_connections=2, **TIMEOUTS))
