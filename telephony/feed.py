"""The live side of the tracker: the AMI link's queue in, call events out.

The connection puts AMI events and link markers (LinkUp, LinkDown, Snapshot)
in one ordered queue; this loop hands each to the tracker in that order and
passes every call event to ``deliver``.  A failing ``deliver`` is logged and
the next event goes on: one bad consumer must not stop call tracking.

``observe``, when given, sees every item of the queue (raw AMI event or link
marker) just before the tracker does, so a consumer of what call events do
not say (the supervisors' queue monitor) follows the same ordered stream."""
from __future__ import annotations

import asyncio
import inspect
import logging
import time
from typing import Awaitable, Callable

from telephony.events import CallEvent
from telephony.link import LinkDown, LinkUp, Snapshot
from telephony.tracker import CallTracker

log = logging.getLogger(__name__)

Deliver = Callable[[CallEvent], Awaitable[None] | None]
Observe = Callable[[object], None]
OnResync = Callable[[set[str]], None]


class CallFeed:
    def __init__(self, queue: asyncio.Queue, tracker: CallTracker, deliver: Deliver, *, expire_every: float = 60.0,
                 observe: Observe | None = None, on_resync: OnResync | None = None, yield_every: int = 16):
        """``on_resync(call_ids)`` hears, after each resync's call events were
        delivered, which calls the tracker now knows to be in progress (a new
        ingester ends the calls it took up that Asterisk no longer has)."""
        self.queue = queue
        self.observe = observe
        self.on_resync = on_resync
        self.tracker = tracker
        self.deliver = deliver
        self.expire_every = expire_every
        # Items handled before the loop gets a turn.  The queue hands items over
        # without waiting while it holds some, so a burst (one TCP read is a
        # few hundred events) would run as one long step, and the pops it
        # made (tasks) and the sockets' writers would wait for all of it.
        self.yield_every = yield_every
        self.events_in = 0
        self.calls_out = 0

    async def run(self) -> None:
        last_expire = time.monotonic()
        in_a_row = 0
        while True:
            if not self.queue.empty():
                if in_a_row >= self.yield_every:  # before taking the next: a cancel here loses nothing
                    in_a_row = 0
                    await asyncio.sleep(0)
                    continue
                item = self.queue.get_nowait()  # the busy path: no timer per event
                in_a_row += 1
            else:
                in_a_row = 0
                # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel
                # that lands as the queue hands over an item, and the loop never ends.
                try:
                    async with asyncio.timeout(self.expire_every):
                        item = await self.queue.get()
                except TimeoutError:
                    item = None
            if time.monotonic() - last_expire >= self.expire_every:
                self.tracker.expire(time.time())
                last_expire = time.monotonic()
            if item is None:
                continue
            if self.observe is not None:
                self._observe(item)
            for event in self._track(item):
                await self._deliver(event)
            if isinstance(item, Snapshot) and self.on_resync is not None:
                try:
                    self.on_resync(set(self.tracker.call_ids()))
                except Exception:
                    log.exception("resync observer failed")

    def _observe(self, item) -> None:
        try:
            self.observe(item)  # type: ignore[misc]
        except Exception:
            log.exception("ami observer failed item=%s", item.get("Event") if isinstance(item, dict) else type(item).__name__)

    def _track(self, item) -> list[CallEvent]:
        if isinstance(item, dict):
            self.events_in += 1
            return self.tracker.feed(item)
        if isinstance(item, LinkUp):
            log.info("ami link up reconnect=%s banner=%r calls_in_progress=%d", item.reconnect, item.banner, self.tracker.active_calls)
            self.tracker.link_up()
        elif isinstance(item, Snapshot):
            events = self.tracker.resync(item)
            log.info("ami resync channels=%d waiting=%d call_events=%d", len(item.channels), len(item.queue_entries), len(events))
            return events
        elif isinstance(item, LinkDown):
            self.tracker.link_down()
            level = logging.INFO if item.reason == "stopped" else logging.WARNING
            log.log(level, "ami link down reason=%s calls_in_progress=%d", item.reason, self.tracker.active_calls)
        return []

    async def _deliver(self, event: CallEvent) -> None:
        self.calls_out += 1
        log.debug("call event type=%s call_id=%s", event.type, event.call_id)
        try:
            result = self.deliver(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("call event delivery failed type=%s call_id=%s", event.type, event.call_id)
