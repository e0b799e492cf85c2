"""The ingester lease: one Redis key naming the node that holds the AMI link.

``SET key node NX PX ttl`` takes it; a compare-and-extend script renews it
only while it is still ours, and a compare-and-delete script gives it back
on a clean stop, so a node never extends or deletes another node's lease.
A holder that stops renewing (dead, hung, cut off from Redis) loses it after
``ttl`` and another node takes over.
"""
from __future__ import annotations

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class Lease:
    """Redis errors propagate: the caller decides what "cannot tell" means."""

    def __init__(self, redis, key: str, owner: str, ttl_seconds: float):
        self.redis = redis
        self.key = key
        self.owner = owner
        self.ttl_ms = max(100, int(ttl_seconds * 1000))

    async def acquire(self) -> bool:
        return bool(await self.redis.set(self.key, self.owner, nx=True, px=self.ttl_ms))

    async def renew(self) -> bool:
        """True while the lease is ours; False once someone else holds it or it expired."""
        return bool(await self.redis.eval(_RENEW, 1, self.key, self.owner, self.ttl_ms))

    async def release(self) -> bool:
        return bool(await self.redis.eval(_RELEASE, 1, self.key, self.owner))

    async def holder(self) -> str | None:
        value = await self.redis.get(self.key)
        if isinstance(value, bytes):
            value = value.decode()
        return value
