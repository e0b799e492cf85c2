"""Wiring of the reconciliation: when to read Asterisk's records, and the
loop that does it beside the pops.

A pass runs after each resync (the window since the link went down), at
start (since the newest call the log holds, at most ``lookback_seconds``
back: calls that went by while no node was running), and every
``interval_seconds`` for the calls still in progress at the last pass
(their rows end with ``LINKEDID_END`` only when they are over).  The
interaction writer is flushed first, so what the resync concluded is in the
log before it is compared.  A failing pass (the CDR database down) keeps its
window for the next attempt; the pops never wait for any of it.
"""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Callable

from adapters.engine import make_engine
from screenpop.config import ReconcileSettings
from screenpop.reconcile.reader import CelReader
from screenpop.reconcile.services import PassResult, Reconciler
from telephony.agents import AgentResolver

log = logging.getLogger(__name__)


class Reconciliation:
    def __init__(self, settings: ReconcileSettings, store, writer, *, agents: AgentResolver | None = None,
                 on_pass: Callable[[PassResult], None] | None = None, clock: Callable[[], float] = time.time):
        """``store``: has ``get``, ``write_reconciled``, ``latest_event_at``
        (the interaction store); ``writer``: flushed before each pass."""
        self.settings = settings
        self.store = store
        self.writer = writer
        self.clock = clock
        self.on_pass = on_pass
        self.engine = make_engine(settings.dsn, read_only=True, statement_timeout=30.0, application_name="screenpop-reconcile")
        self.reconciler = Reconciler(CelReader(self.engine, settings.cel_table), store, agents,
                                     trust_unseen_numbers=settings.trust_unseen_numbers)
        self.pending: dict[str, float] = {}  # calls not over at the last pass -> when first seen so
        self.passes = 0
        self.totals = {"created": 0, "corrected": 0}
        self._windows: list[tuple[float, float]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    # ------------------------------------------------------------ triggers

    def outage(self, start: float, end: float) -> None:
        """The link was down from ``start`` to ``end`` (epoch seconds)."""
        margin = self.settings.margin_seconds
        self._windows.append((start - margin, end + margin))
        self._wake.set()

    async def started(self) -> None:
        """A node took up ingesting: look back to the newest call the log holds."""
        now = self.clock()
        try:
            latest = await self.store.latest_event_at()
        except Exception as exc:
            log.warning("reconcile cannot read the log's newest call error=%s", exc)
            latest = None
        since = now - self.settings.lookback_seconds
        if latest is not None:
            since = max(since, datetime.fromisoformat(latest.replace("Z", "+00:00")).timestamp())
        self.outage(since, now)

    # ----------------------------------------------------------------- loop

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="reconcile")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.engine.dispose()

    async def run(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.settings.interval_seconds):
                    await self._wake.wait()
                await asyncio.sleep(self.settings.settle_seconds)
            except TimeoutError:
                pass
            self._wake.clear()
            if not self._windows and not self.pending:
                continue
            windows, self._windows = self._windows, []
            try:
                await self.run_once(windows)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._windows = windows + self._windows  # tried again at the next turn
                log.warning("reconcile pass failed windows=%d pending=%d error=%s: %s", len(windows), len(self.pending),
                            type(exc).__name__, exc)

    async def run_once(self, windows: list[tuple[float, float]] = ()) -> PassResult:
        """One pass over ``windows`` and the calls pending from earlier passes."""
        await self.writer.flush()
        linkedids = set(self.pending)
        for start, end in windows:
            linkedids |= set(await self.reconciler.rows.calls_between(start, end))
        result = await self.reconciler.run_calls(linkedids)
        now = self.clock()
        done = linkedids - set(result.pending)
        for call_id in done:
            self.pending.pop(call_id, None)
        for call_id in result.pending:
            first = self.pending.setdefault(call_id, now)
            if now - first > self.settings.give_up_seconds:
                log.warning("reconcile gives up on a call with no end in Asterisk's records call_id=%s", call_id)
                self.pending.pop(call_id)
        self.passes += 1
        self.totals["created"] += len(result.created)
        self.totals["corrected"] += len(result.corrected)
        log.info("reconcile pass windows=%d calls=%d created=%d corrected=%d unchanged=%d pending=%d", len(windows),
                 len(linkedids), len(result.created), len(result.corrected), result.unchanged, len(self.pending))
        if self.on_pass is not None:
            self.on_pass(result)
        return result
