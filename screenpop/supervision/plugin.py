"""Wiring of the supervisors' view: monitor, service, day figures, notifier,
and the two background loops (the clock tick; reading the day's figures
after calls move).

The node hands it the AMI link's items (``on_ami``), the call events
(``on_call_event``) and the cards (``on_card``); supervisors' sockets get
``replay()`` when they open and pushes afterwards.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from screenpop.config import SupervisionSettings
from screenpop.supervision.notifier import Notifier
from screenpop.supervision.services import SupervisionService
from screenpop.supervision.stats import StatsCache
from telephony.agents import AgentResolver
from telephony.queues import QueueMonitor

log = logging.getLogger(__name__)


class Supervision:
    def __init__(
        self,
        settings: SupervisionSettings,
        delivery,
        *,
        engine=None,
        writer=None,
        agents: AgentResolver | None = None,
        tick_seconds: float = 1.0,
        stats_min_interval: float = 2.0,
        phone=None,
    ):
        """``stats_min_interval``: the day's figures are read at most this
        often (each read flushes the interaction writer and folds every call
        that moved; at 0.5 s and 50 calls/s that was a visible share of the
        service's CPU, and supervisors do not need the day's totals faster).

        ``delivery`` has ``send_to_supervisors`` (the hub); ``engine`` is the
        interaction log's (None: no day figures); ``writer`` is flushed before
        each read so the call that just ended is counted; ``phone(raw)``
        writes a caller's number as the reader reads it (customer_lookup.display)."""
        self.settings = settings
        self.tick_seconds = tick_seconds
        self.stats_min_interval = stats_min_interval
        self.monitor = QueueMonitor(agents, wrap_up_max=settings.wrap_up_max_seconds)
        self.stats = None
        if engine is not None:
            self.stats = StatsCache(engine, settings.threshold_for, settings.timezone,
                                    before_read=writer.flush if writer is not None else None)
        self._stats_wanted = asyncio.Event()
        self.service = SupervisionService(settings, self.monitor, stats=self.stats, notify=self._mark,
                                          want_stats=self._stats_wanted.set, phone=phone)
        self.notifier = Notifier(delivery.send_to_supervisors, self.service.queue_message, self.service.agent_message,
                                 fingerprint=self.service.fingerprint,
                                 interval=settings.push_interval_seconds)
        self._tasks: list[asyncio.Task] = []

    # the node's inputs
    @property
    def events_read(self) -> frozenset[str]:
        return self.monitor.events_read

    def on_ami(self, item: Any) -> None:
        self.service.on_ami(item)

    def on_call_event(self, event) -> None:
        self.service.on_call_event(event)

    def on_card(self, call_id: str, card) -> None:
        self.service.on_card(call_id, card)

    def figures_changed(self) -> None:
        """Calls were written outside the call events (the reconciliation
        with Asterisk's records): read the day's figures again."""
        self._stats_wanted.set()

    def replay(self) -> list[dict[str, Any]]:
        return self.service.snapshot()

    def _mark(self, changes) -> None:
        self.notifier.mark(changes)

    # lifecycle
    async def start(self) -> None:
        if self.stats is not None:
            try:
                await self.stats.refresh()
            except Exception as exc:  # the log is down at start: figures follow when it is back
                log.warning("supervision stats unavailable at start error=%s", f"{type(exc).__name__}: {exc}")
                self._stats_wanted.set()
            self._tasks.append(asyncio.create_task(self._stats_loop(), name="supervision-stats"))
        self._tasks.append(asyncio.create_task(self._tick_loop(), name="supervision-tick"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self.notifier.close()

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_seconds)
            try:
                self.service.tick()
            except Exception:
                log.exception("supervision tick failed")

    async def _stats_loop(self) -> None:
        """Read the day's figures after calls move: at most once per
        ``stats_min_interval``, and again a minute later in any case (the day
        changes, delayed writes)."""
        assert self.stats is not None
        while True:
            try:
                await asyncio.wait_for(self._stats_wanted.wait(), 60.0)
            except asyncio.TimeoutError:
                pass
            await asyncio.sleep(self.stats_min_interval)
            self._stats_wanted.clear()
            try:
                changed = await self.stats.refresh()
            except Exception as exc:
                log.warning("supervision stats refresh failed error=%s", f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(5.0)
                self._stats_wanted.set()
                continue
            self.service.stats_changed(changed, self.stats.agents_changed)
