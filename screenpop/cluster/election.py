"""Which node ingests: a loop around the lease, every third of its time to live.

The holder renews while it is healthy (its AMI link is up, or was down for
less than ``grace``); a holder whose link stays down gives the lease back and
sits out ``cooldown``, so a node that can reach Asterisk gets its turn.  A
holder cut off from Redis keeps ingesting (and popping its own agents): it
cannot tell whether anyone took over.  When Redis answers again it renews if
the lease is still its own, takes it again if it lapsed, and stands down if
another node holds it.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

from screenpop.cluster.lease import Lease

log = logging.getLogger(__name__)


class Election:
    def __init__(
        self,
        lease: Lease,
        *,
        promote: Callable[[], Awaitable[None]],
        demote: Callable[[str], Awaitable[None]],
        healthy: Callable[[], bool] = lambda: True,
        retaken: Callable[[], None] = lambda: None,
        interval: float | None = None,
        grace: float = 15.0,
        cooldown: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.lease = lease
        self.promote = promote
        self.demote = demote
        self.healthy = healthy
        self.retaken = retaken  # the lease had lapsed under us: Redis may have restarted empty
        self.interval = interval if interval is not None else lease.ttl_ms / 3000
        self.grace = grace
        self.cooldown = cooldown
        self.clock = clock
        self.leading = False
        self.redis_ok = False
        self.error: str | None = None
        self.terms = 0  # how many times this node became the ingester
        self._unhealthy_since: float | None = None
        self._sit_out_until = 0.0

    async def run(self) -> None:
        while True:
            await self.step()
            await asyncio.sleep(self.interval)

    async def step(self) -> None:
        try:
            if self.leading:
                await self._hold()
            elif self.clock() >= self._sit_out_until and await self.lease.acquire():
                self.redis_ok = True
                await self._become_leader()
            self.redis_ok, self.error = True, None
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:
            if not self.leading:
                # When Redis answers again, the holder gets a full lease time to
                # renew (or, if Redis restarted empty, to take it again) first.
                self._sit_out_until = max(self._sit_out_until, self.clock() + self.lease.ttl_ms / 1000)
            if self.redis_ok:
                log.warning("ingester lease unreachable node=%s leading=%s error=%s", self.lease.owner, self.leading,
                            f"{type(exc).__name__}: {exc}")
            self.redis_ok, self.error = False, f"{type(exc).__name__}: {exc}"[:200]

    async def _hold(self) -> None:
        now = self.clock()
        if self.healthy():
            self._unhealthy_since = None
        elif self._unhealthy_since is None:
            self._unhealthy_since = now
        elif now - self._unhealthy_since >= self.grace:
            log.warning("ingester gives the lease back node=%s reason=ami-down seconds=%.0f", self.lease.owner,
                        now - self._unhealthy_since)
            await self._step_down("ami down")
            self._sit_out_until = now + self.cooldown
            await self.lease.release()
            return
        if await self.lease.renew():
            return
        if await self.lease.acquire():  # it lapsed while Redis was away and nobody took it
            log.info("ingester lease taken again node=%s", self.lease.owner)
            self.retaken()
            return
        holder = await self.lease.holder()
        log.warning("ingester lease lost node=%s holder=%s", self.lease.owner, holder)
        await self._step_down("lease lost")

    async def _become_leader(self) -> None:
        self.leading = True
        self.terms += 1
        self._unhealthy_since = None
        log.info("ingester lease won node=%s term=%d", self.lease.owner, self.terms)
        try:
            await self.promote()
        except Exception:
            log.exception("ingester start failed node=%s", self.lease.owner)
            await self._step_down("start failed")
            await self.lease.release()

    async def _step_down(self, reason: str) -> None:
        self.leading = False
        self._unhealthy_since = None
        await self.demote(reason)

    async def resign(self) -> None:
        """A clean stop: the next node need not wait for the lease to lapse."""
        if not self.leading:
            return
        await self._step_down("stopping")
        try:
            await self.lease.release()
        except Exception as exc:
            log.warning("ingester lease not released node=%s error=%s", self.lease.owner, exc)
