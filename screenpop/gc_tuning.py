"""Short garbage-collector pauses for a process that holds thousands of sockets.

Why: CPython's cyclic collector stops the event loop for a whole *full*
pass, which walks every tracked object not frozen.  A node serving 2,000
agents holds about 300,000 of them (each socket's tasks, coroutines,
contexts and queues), and a full pass came every 6 to 8 seconds at 50
calls/s and took 265 to 380 ms on this project's benchmark machine: every
pop in flight waited for it, and it alone kept the pop's p99 above 300 ms.

What: what is still alive some seconds after it was made (an open socket, a
call in progress, the phone index) is frozen: moved to the permanent
generation, which full passes skip.  Every ``freeze_every`` seconds the
young generations are collected (a few milliseconds) and the survivors
frozen, so a full pass only walks what was made since the last freeze.

The price: a reference cycle among frozen objects that becomes garbage (a
socket's objects after it closed, say) is not reclaimed by a normal pass.
A *thaw* reclaims it: everything is unfrozen, collected in one full pass
and frozen again.  That pass is the one long pause left, so it runs
rarely: when the process's resident memory has grown by ``thaw_growth``
since the last thaw (garbage kept frozen shows there first), and at least
every ``thaw_every`` seconds.  Memory also grows for good reasons (caches
filling, a shift logging in): a growth thaw that finds (almost) nothing to
reclaim doubles the growth the next one waits for, and one that does find
garbage sets it back.  Memory, not the frozen objects, is what is
watched: counting them (``gc.get_freeze_count``) walks them all, about
50 ms at 500,000.  Each thaw is logged with its pause and what it
reclaimed.  Objects freed by reference counting (most of them) are freed
at once, frozen or not.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import resource
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

FRUITLESS = 0.01  # a growth thaw reclaiming less than this share of the frozen objects found no leak
MAX_GROWTH = 4.0


@dataclass(slots=True)
class FreezeStats:
    freezes: int = 0
    freeze_ms_total: float = 0.0
    freeze_ms_max: float = 0.0
    thaws: int = 0
    frozen: int = 0  # after the last thaw
    last_thaw_ms: float = 0.0
    last_thaw_reclaimed: int = 0


def resident_bytes() -> int:
    """The process's resident memory: /proc where there is one (cheap: one
    small read), else the peak that getrusage reports."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class GcTuning:
    """Runs beside the service (:meth:`run` as a task); :meth:`start` at the end of start-up."""

    def __init__(self, *, freeze_every: float = 2.0, thaw_every: float = 6 * 3600.0, thaw_growth: float = 0.5,
                 clock=time.monotonic, memory=resident_bytes):
        self.freeze_every = freeze_every
        self.thaw_every = thaw_every
        self.thaw_growth = thaw_growth
        self.clock = clock
        self.memory = memory
        self.stats = FreezeStats()
        self.growth_allowed = thaw_growth  # adapts: see the module doc
        self._memory_after_thaw = 0
        self._last_thaw = clock()

    def freeze_now(self) -> None:
        """Collect the young generations and freeze what survives."""
        started = time.perf_counter()
        gc.collect(1)
        gc.freeze()
        pause = (time.perf_counter() - started) * 1000
        self.stats.freezes += 1
        self.stats.freeze_ms_total += pause
        self.stats.freeze_ms_max = max(self.stats.freeze_ms_max, pause)

    def thaw(self, reason: str) -> None:
        """Unfreeze, collect everything once (the long pause), freeze again."""
        started = time.perf_counter()
        gc.unfreeze()
        reclaimed = gc.collect()
        gc.freeze()
        pause = (time.perf_counter() - started) * 1000
        self.stats.frozen = gc.get_freeze_count()  # a walk, but inside the pause anyway
        self._memory_after_thaw = self.memory()
        self._last_thaw = self.clock()
        self.stats.thaws += 1
        self.stats.last_thaw_ms, self.stats.last_thaw_reclaimed = pause, reclaimed
        if reason == "memory-growth":
            fruitless = reclaimed < FRUITLESS * max(1, self.stats.frozen)
            self.growth_allowed = min(self.growth_allowed * 2, MAX_GROWTH) if fruitless else self.thaw_growth
        log.info("gc thaw reason=%s pause_ms=%.0f reclaimed=%d frozen=%d rss_mib=%.0f next_at_growth=%.2f",
                 reason, pause, reclaimed, self.stats.frozen, self._memory_after_thaw / 2**20, self.growth_allowed)

    def start(self) -> None:
        """At the end of the service's start: everything built so far is long-lived."""
        self.thaw("start")

    def tick(self) -> None:
        """One step of :meth:`run` (tests drive it directly)."""
        self.freeze_now()
        if self._memory_after_thaw and self.memory() > self._memory_after_thaw * (1 + self.growth_allowed):
            self.thaw("memory-growth")
        elif self.clock() - self._last_thaw >= self.thaw_every:
            self.thaw("age")

    def settle(self) -> None:
        """Thaw now if memory grew since the last thaw at all: what a later tick
        would do once it had grown enough (a benchmark calls it once its
        sockets are open, so that pause is not inside what it times)."""
        self.freeze_now()
        if self.memory() > self._memory_after_thaw:
            self.thaw("settle")

    def bind(self, metrics) -> None:
        """Expose the figures as gauges (:class:`screenpop.metrics.ServiceMetrics`)."""
        metrics.bind_gauge(metrics.gc_frozen, lambda: self.stats.frozen)
        metrics.bind_gauge(metrics.gc_thaws, lambda: self.stats.thaws)
        metrics.bind_gauge(metrics.gc_last_thaw, lambda: self.stats.last_thaw_ms / 1000)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.freeze_every)
            try:
                self.tick()
            except Exception:  # never let tuning take the service down
                log.exception("gc tuning step failed")
