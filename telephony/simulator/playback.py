"""Simulated time and the one loop that sends every call's events in order.

All calls share one :class:`SimClock`: simulated epoch time that runs
``speed`` times faster than the wall clock, so Timestamp headers, hold times
and uniqueids stay consistent with each other at any speed.  A single
:class:`Playback` loop merges the events of every call in flight by their
simulated time, so the stream is ordered as Asterisk's is, and sends each
batch of due events with one write per client.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from typing import Awaitable, Callable

Event = dict[str, object]
log = logging.getLogger(__name__)


class SimClock:
    def __init__(self, speed: float = 1.0, *, start: float | None = None):
        self._base = time.time() if start is None else start
        self._mono = time.monotonic()
        self.speed = speed

    def now(self) -> float:
        """Simulated epoch seconds."""
        return self._base + (time.monotonic() - self._mono) * self.speed

    def set_speed(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._base, self._mono, self.speed = self.now(), time.monotonic(), speed

    def wall_delay(self, when: float) -> float:
        """Wall seconds until simulated time ``when``."""
        return (when - self.now()) / self.speed


class Playback:
    """Sends scheduled events when their simulated time comes.

    ``send`` gets every due event, in order, in one batch, and may return an
    awaitable (clients catching up) to wait for before the next batch;
    ``schedule`` returns a future resolved once the last event of the call it
    was given has been sent."""

    SLACK = 0.0005  # wall seconds: events this close are sent together

    def __init__(self, clock: SimClock, send: Callable[[list[Event]], Awaitable[None] | None]):
        self.clock, self.send = clock, send
        self._heap: list[tuple[float, int, Event, asyncio.Future | None]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pbx-simulator-playback")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for _, _, _, done in self._heap:
            if done is not None and not done.done():
                done.cancel()
        self._heap.clear()

    def pending(self) -> int:
        return len(self._heap)

    def schedule(self, start: float, events: list[tuple[float, Event]]) -> asyncio.Future:
        done = asyncio.get_running_loop().create_future()
        if not events:
            done.set_result(None)
            return done
        last = len(events) - 1
        for index, (offset, event) in enumerate(events):
            heapq.heappush(self._heap, (start + offset, next(self._seq), event, done if index == last else None))
        self._wake.set()
        return done

    def nudge(self) -> None:
        """The clock changed speed: recompute the sleep."""
        self._wake.set()

    async def _run(self) -> None:
        heap = self._heap
        while True:
            if not heap:
                self._wake.clear()
                await self._wake.wait()
                continue
            delay = self.clock.wall_delay(heap[0][0])
            if delay > self.SLACK:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), delay)
                except asyncio.TimeoutError:
                    pass
                continue
            horizon = self.clock.now() + self.SLACK * self.clock.speed
            batch, finished = [], []
            while heap and heap[0][0] <= horizon:
                _, _, event, done = heapq.heappop(heap)
                batch.append(event)
                if done is not None:
                    finished.append(done)
            try:
                backpressure = self.send(batch)
            except Exception:  # a bug in one event must not silence the PBX for good
                log.exception("simulator: sending %d events failed", len(batch))
                backpressure = None
            for done in finished:
                if not done.done():
                    done.set_result(None)
            if backpressure is not None:
                await backpressure
            else:
                await asyncio.sleep(0)  # let clients and actions in between big batches
