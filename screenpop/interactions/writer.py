"""The interaction writer: call events in, rows in the interaction log out,
never in the way of a pop.

``submit`` and ``submit_lookup`` only fold into a dict in memory (no I/O, no
await, no exception escapes): the orchestrator calls them on the pop path.
A background task writes what accumulated in batches through
:meth:`InteractionStore.upsert`, which merges with the stored row, so a batch
written twice (a retry after a commit whose answer was lost) changes nothing.

When the database is down, records stay in memory and the task retries with
backoff.  Past ``max_pending`` calls in memory, they are appended to the
spill file (in the writer's own thread, in order) rather than dropped; so is
whatever is still queued when the writer stops during an outage.  The spill
file is replayed first whenever the database answers, also after a restart.
Records are only dropped when there is no spill file or it cannot be written,
and that is logged as an error with the count.
"""
from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from sqlalchemy.exc import DataError, IntegrityError

from screenpop.interactions import spill
from screenpop.interactions.record import InteractionRecord, apply, lookup_from_card, merge, with_lookup
from screenpop.interactions.store import InteractionStore
from telephony.events import CallEvent

log = logging.getLogger(__name__)


@dataclass(slots=True)
class WriterStats:
    """Counters for metrics and tests; ``pending`` is calls waiting in memory."""

    submitted: int = 0
    rows_written: int = 0
    batches: int = 0
    failures: int = 0
    spilled: int = 0
    replayed: int = 0
    dropped: int = 0
    rejected: int = 0
    pending: int = 0
    outage: bool = False


class InteractionWriter:
    def __init__(
        self,
        store: InteractionStore,
        *,
        spill_path: str | Path | None = None,
        max_pending: int = 10_000,
        batch_size: int = 200,
        flush_interval: float = 0.2,
        retry_min: float = 0.5,
        retry_max: float = 30.0,
        write_timeout: float = 15.0,
        on_stats: Callable[[WriterStats], None] | None = None,
    ):
        self.store = store
        self.spill_path = Path(spill_path) if spill_path else None
        self.max_pending = max_pending
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.retry_min = retry_min
        self.retry_max = retry_max
        self.write_timeout = write_timeout
        self.on_stats = on_stats
        self.stats = WriterStats()
        self._pending: dict[str, InteractionRecord] = {}
        self._in_flight: dict[str, InteractionRecord] = {}  # the batch being written
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._retry = retry_min
        self._outage_since: float | None = None
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="interaction-spill")
        self._io_busy: set[asyncio.Future] = set()
        self._replay_offset = 0
        self._round_lock = asyncio.Lock()  # one round at a time: two would race on one call's row

    @property
    def replay_path(self) -> Path | None:
        return self.spill_path.with_name(self.spill_path.name + ".replay") if self.spill_path else None

    # ------------------------------------------------------ the pop path

    def submit(self, event: CallEvent) -> None:
        """Take one call event; never blocks, never raises."""
        try:
            self._add(apply(None, event))
        except Exception as exc:
            log.error("interaction event refused call_id=%s type=%s error=%r", getattr(event, "call_id", None), getattr(event, "type", None), exc)

    def submit_lookup(self, call_id: str, card: Any) -> None:
        """Take the customer card of a call; never blocks, never raises."""
        try:
            lookup = lookup_from_card(card)
            if lookup["lookup_at"] is None:
                lookup["lookup_at"] = datetime.now(timezone.utc).isoformat()
            self._add(with_lookup(InteractionRecord(call_id=call_id), **lookup))
        except Exception as exc:
            log.error("interaction lookup refused call_id=%s error=%r", call_id, exc)

    def _add(self, partial: InteractionRecord) -> None:
        self.stats.submitted += 1
        old = self._pending.get(partial.call_id)
        if old is None and len(self._pending) >= self.max_pending and not self._make_room(partial.call_id):
            return
        self._pending[partial.call_id] = partial if old is None else merge(old, partial)
        self._publish()
        if len(self._pending) >= self.batch_size:
            self._wake.set()

    def _make_room(self, call_id: str) -> bool:
        """The memory bound is hit: hand everything to the spill file (its own
        thread) and start again from empty.  Without a spill file, refuse."""
        if self.spill_path is None:
            self.stats.dropped += 1
            if self.stats.dropped == 1 or self.stats.dropped % 1000 == 0:
                log.error(
                    "interaction queue full, record dropped call_id=%s max_pending=%d dropped=%d (no spill file configured)",
                    call_id, self.max_pending, self.stats.dropped,
                )
            return False
        self._spill(list(self._pending.values()), why="queue full")
        self._pending.clear()
        return True

    def _spill(self, records: list[InteractionRecord], why: str) -> None:
        if not records:
            return
        assert self.spill_path is not None
        log.warning(
            "interaction records spilled to file reason=%r calls=%d path=%s first_call_id=%s",
            why, len(records), self.spill_path, records[0].call_id,
        )
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the service's loop: just write
            self._spill_now(records)
            return
        future = loop.run_in_executor(self._io, self._spill_now, records)
        self._io_busy.add(future)
        future.add_done_callback(self._io_busy.discard)

    def _spill_now(self, records: list[InteractionRecord]) -> None:
        try:
            self.stats.spilled += spill.append(self.spill_path, records)
        except OSError as exc:
            self.stats.dropped += len(records)
            log.error(
                "interaction spill failed, records lost calls=%d path=%s error=%s call_ids=%s",
                len(records), self.spill_path, exc, ",".join(r.call_id for r in records[:20]),
            )

    def peek(self, call_id: str) -> InteractionRecord | None:
        """What is waiting in memory for this call (not yet in the database):
        lets a page show a call that ended a moment ago."""
        views = [v for v in (self._in_flight.get(call_id), self._pending.get(call_id)) if v is not None]
        return merge(*views) if len(views) == 2 else (views[0] if views else None)

    # -------------------------------------------------------- lifecycle

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="interaction-writer")

    async def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued (for at most ``timeout``); what cannot be
        written goes to the spill file, to be replayed at the next start."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except asyncio.TimeoutError:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        elif self._pending or self._has_spill():  # never started: one attempt
            try:
                await asyncio.wait_for(self._round(), timeout)
            except BaseException as exc:
                if not isinstance(exc, Exception):
                    raise
                self._failed(exc)
        if self._pending:
            if self.spill_path is not None:
                self._spill(list(self._pending.values()), why="stopping while the database is unreachable")
            else:
                self.stats.dropped += len(self._pending)
                log.error(
                    "interaction records lost at stop calls=%d (database unreachable, no spill file) call_ids=%s",
                    len(self._pending), ",".join(list(self._pending)[:20]),
                )
            self._pending.clear()
        await self._io_idle()
        self._publish()

    async def flush(self) -> bool:
        """Write everything queued now, spill file included; True when all of
        it reached the database (tests, shutdown hooks)."""
        try:
            await self._round()
        except Exception:
            return False
        return not self._pending and not self._has_spill()

    # ------------------------------------------------------ the loop

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self._round()
            except Exception as exc:
                self._failed(exc)
                if self._stopping:
                    return
                try:
                    await asyncio.wait_for(self._wake.wait(), self._retry)
                except asyncio.TimeoutError:
                    pass
                self._retry = min(self.retry_max, self._retry * 2)
                continue
            self._recovered()
            if self._stopping:
                return

    async def _round(self) -> None:
        """Replay the spill file, then write memory, batch by batch; raises on
        the first batch the database refuses (it is back in the queue)."""
        async with self._round_lock:
            await self._replay_spill()
            while self._pending:
                call_ids = list(self._pending)[: self.batch_size]
                batch = [self._pending.pop(c) for c in call_ids]
                self._in_flight = {r.call_id: r for r in batch}
                try:
                    await self._write(batch)
                except BaseException:  # cancelled at stop too: the batch must not vanish
                    self._requeue(batch)
                    raise
                finally:
                    self._in_flight = {}

    async def _write(self, batch: list[InteractionRecord]) -> None:
        try:
            written = await asyncio.wait_for(self.store.upsert(batch), self.write_timeout)
        except (DataError, IntegrityError, ValueError, TypeError) as exc:
            # Something in the batch itself is wrong, not the database: write
            # one by one so a single bad record cannot hold the others back.
            log.warning("interaction batch refused, writing one by one calls=%d error=%s", len(batch), _short(exc))
            written = 0
            for record in batch:
                try:
                    written += await asyncio.wait_for(self.store.upsert([record]), self.write_timeout)
                except (DataError, IntegrityError, ValueError, TypeError) as one:
                    self.stats.rejected += 1
                    log.error("interaction record rejected call_id=%s error=%s", record.call_id, _short(one))
        self.stats.batches += 1
        self.stats.rows_written += written
        log.debug("interaction batch written calls=%d rows_changed=%d", len(batch), written)

    def _requeue(self, batch: list[InteractionRecord]) -> None:
        """Back in front of what arrived meanwhile (the newer view merges last)."""
        newer = self._pending
        self._pending = {r.call_id: r for r in batch}
        for call_id, record in newer.items():
            self._pending[call_id] = merge(self._pending[call_id], record) if call_id in self._pending else record
        if len(self._pending) > self.max_pending and self.spill_path is not None:
            self._spill(list(self._pending.values()), why="queue full")
            self._pending.clear()
        self._publish()

    async def _replay_spill(self) -> None:
        if self.spill_path is None:
            return
        await self._io_idle()
        loop = asyncio.get_running_loop()
        path, replay = self.spill_path, self.replay_path
        if not await loop.run_in_executor(self._io, spill.rotate, path, replay):
            return
        while True:
            records, offset, at_end = await loop.run_in_executor(self._io, spill.read_chunk, replay, self._replay_offset, self.batch_size)
            if records:
                await self._write(records)  # raises: the file stays, retried from this offset
                self.stats.replayed += len(records)
            self._replay_offset = offset
            if at_end:
                break
        await loop.run_in_executor(self._io, spill.remove, replay)
        self._replay_offset = 0
        log.warning("interaction spill file replayed into the database path=%s replayed=%d", path, self.stats.replayed)

    def _has_spill(self) -> bool:
        return bool(self.spill_path and (self.spill_path.exists() or self.replay_path.exists()))

    async def _io_idle(self) -> None:
        if self._io_busy:
            await asyncio.gather(*list(self._io_busy), return_exceptions=True)

    # --------------------------------------------------------- state

    def _failed(self, exc: BaseException) -> None:
        self.stats.failures += 1
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            self.stats.outage = True
            log.warning(
                "interaction write failed, queueing call_ids=%s queued=%d retry_in=%.1fs error=%s",
                ",".join(list(self._pending)[:5]), len(self._pending), self._retry, _short(exc),
            )
        else:
            log.info("interaction write failed again queued=%d retry_in=%.1fs error=%s", len(self._pending), self._retry, _short(exc))
        self._publish()

    def _recovered(self) -> None:
        self._retry = self.retry_min
        if self._outage_since is not None:
            log.warning(
                "interaction log reachable again outage_seconds=%.1f rows_written=%d replayed=%d",
                time.monotonic() - self._outage_since, self.stats.rows_written, self.stats.replayed,
            )
            self._outage_since = None
            self.stats.outage = False
        self._publish()

    def _publish(self) -> None:
        self.stats.pending = len(self._pending)
        if self.on_stats is not None:
            try:
                self.on_stats(self.stats)
            except Exception:
                log.exception("interaction writer stats hook failed")


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{type(exc).__name__}: {text[:200]}"
