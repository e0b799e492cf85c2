"""The audit log: who opened which customer's card, who changed which record.

Written off the request path: :meth:`AuditTrail.record` only appends to a
bounded in-memory queue and returns; a background task writes batches.  A
page view must not wait on, nor fail because of, the audit table.  The
writer takes everything queued, up to ``batch_size`` (1,000) rows per
statement and transaction, so it keeps up with a pop on every agent's
screen (one ``pop.delivered`` row per agent and pop) at a fraction of a
transaction per pop; on SQLite it waits its turn with the service's other
writers (:func:`screenpop.db.writing`) instead of timing out.  A batch
that fails goes back to the front of the queue and is written again (at
least once: a failure after the commit writes it twice).  While the
database is down the queue holds up to ``max_pending`` entries besides the
batch being written, then the oldest are dropped, counted and logged; the
writer retries with a back-off (up to 5 s) that new entries do not cut
short.  Nothing is silently lost while there is room.

Actions (``action``, ``target_type``):

* ``card.viewed`` (call) — a call's record and card read through the API
  (the interaction page loads it the same way);
* ``pop.delivered`` (call) — a card popped on an agent's screen;
* ``outcome.set`` / ``note.added`` (call) — the agent's outcome form;
* ``user.created`` / ``user.disabled`` / ``user.enabled`` / ``user.password_changed`` (user);
* ``token.created`` / ``token.revoked`` (token);
* ``audit.searched`` (audit) — reading the audit log is itself audited;
* ``audit.purged`` (audit) — entries older than a time deleted, by the
  retention task or ``screenpop audit purge`` (who, before when, how many).

Entries name people and customers but never carry a secret: a token is
named, never shown; a note's text is not copied (its length is).

Retention (``[security] audit_retention_days``, 0 = keep forever): rows are
never updated, and deleted only by :meth:`AuditStore.purge`, which removes
those older than a time ``PURGE_BATCH`` (5,000) rows per statement, each
statement a write transaction of its own taken in turn with the service's
other writers (:func:`screenpop.db.writing`), so a purge of millions of
rows never holds SQLite's write lock for long.  :class:`AuditRetention`
runs it at start and every hour beside the writer; ``screenpop audit purge
--before DATE`` runs it once.  Both leave an ``audit.purged`` entry.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from screenpop.auth.accounts import utcnow
from screenpop.db import writing
from screenpop.security.models import audit_log

log = logging.getLogger(__name__)

CARD_VIEWED, POP_DELIVERED = "card.viewed", "pop.delivered"
OUTCOME_SET, NOTE_ADDED = "outcome.set", "note.added"
USER_CREATED, USER_DISABLED, USER_ENABLED, USER_PASSWORD = "user.created", "user.disabled", "user.enabled", "user.password_changed"
TOKEN_CREATED, TOKEN_REVOKED = "token.created", "token.revoked"
AUDIT_SEARCHED, AUDIT_PURGED = "audit.searched", "audit.purged"
ACTIONS = (CARD_VIEWED, POP_DELIVERED, OUTCOME_SET, NOTE_ADDED, USER_CREATED, USER_DISABLED, USER_ENABLED,
           USER_PASSWORD, TOKEN_CREATED, TOKEN_REVOKED, AUDIT_SEARCHED, AUDIT_PURGED)
MAX_LIMIT = 500
PURGE_BATCH = 5_000  # rows per DELETE (and per write transaction) of a purge
RETENTION_ACTOR = "system:retention"  # the actor of the retention task's audit.purged entries


def _cut(value: str | None, size: int) -> str | None:
    return None if value is None else str(value)[:size]


@dataclass(frozen=True, slots=True)
class AuditEvent:
    actor: str
    action: str
    target_type: str
    target_id: str
    actor_role: str | None = None
    customer: str | None = None
    remote: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=utcnow)

    def row(self) -> dict[str, Any]:
        return {"at": self.at, "actor": _cut(self.actor, 128), "actor_role": _cut(self.actor_role, 32),
                "action": _cut(self.action, 64), "target_type": _cut(self.target_type, 32),
                "target_id": _cut(self.target_id, 128), "customer": _cut(self.customer, 255),
                "remote": _cut(self.remote, 64), "detail": self.detail}

    def as_json(self) -> dict[str, Any]:
        return {**self.row(), "at": self.at.isoformat()}


def customer_of_keys(keys: Any) -> str | None:
    """``{"sales": ["c-17"], "billing": ["a-9"]}`` -> ``billing:a-9 sales:c-17``: a
    stable name for "whose card" that survives a customer renaming."""
    if not isinstance(keys, dict) or not keys:
        return None
    parts = [f"{source}:{key}" for source in sorted(keys) for key in (keys[source] or [])]
    return " ".join(parts) or None


def customer_of_card(card: dict[str, Any] | None) -> str | None:
    """Every customer record a card shows (several when the number is shared)."""
    if not card:
        return None
    merged: dict[str, list[str]] = {}
    for person in card.get("persons") or []:
        for source, keys in (person.get("keys") or {}).items():
            merged.setdefault(source, []).extend(keys or [])
    return customer_of_keys(merged)


def cli_actor() -> str:
    """Who ran a CLI command, as far as the machine knows."""
    try:
        name = os.getlogin()
    except OSError:
        import getpass

        try:
            name = getpass.getuser()
        except Exception:
            name = "unknown"
    return f"cli:{name}"


@dataclass(frozen=True, slots=True)
class AuditQuery:
    actor: str | None = None
    action: str | None = None
    target_id: str | None = None
    customer: str | None = None  # substring of the customer column
    since: datetime | None = None
    until: datetime | None = None  # exclusive
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True, slots=True)
class AuditPage:
    items: list[AuditEvent]
    total: int


class AuditStore:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    async def write(self, events: Sequence[AuditEvent]) -> int:
        if not events:
            return 0
        async with writing(self.engine) as conn:
            await conn.execute(audit_log.insert(), [e.row() for e in events])
        return len(events)

    async def search(self, q: AuditQuery) -> AuditPage:
        c = audit_log.c
        where = []
        if q.actor:
            where.append(c.actor == q.actor)
        if q.action:
            where.append(c.action == q.action)
        if q.target_id:
            where.append(c.target_id == q.target_id)
        if q.customer:
            escaped = q.customer.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append(c.customer.like(f"%{escaped}%", escape="\\"))
        if q.since is not None:
            where.append(c.at >= q.since)
        if q.until is not None:
            where.append(c.at < q.until)
        limit = max(1, min(q.limit, MAX_LIMIT))
        async with self.engine.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(audit_log).where(*where))).scalar_one()
            rows = (await conn.execute(select(audit_log).where(*where).order_by(c.at.desc(), c.id.desc())
                                       .limit(limit).offset(max(0, q.offset)))).all()
        items = [AuditEvent(r.actor, r.action, r.target_type, r.target_id, r.actor_role, r.customer, r.remote,
                            r.detail or {}, r.at) for r in rows]
        return AuditPage(items, total)

    async def purge(self, before: datetime, *, batch_size: int = PURGE_BATCH) -> int:
        """Delete the entries older than ``before`` (strictly), oldest first,
        ``batch_size`` rows per statement; returns how many.

        Each statement is a transaction of its own in the service's turn of
        writers (:func:`screenpop.db.writing`): between two batches the audit
        writer, the interaction log and logins get their turn on SQLite, and a
        purge stopped half-way keeps what it deleted."""
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        c = audit_log.c
        oldest = select(c.id).where(c.at < before).order_by(c.at, c.id).limit(batch_size)
        statement = delete(audit_log).where(c.id.in_(oldest))
        total = 0
        while True:
            async with writing(self.engine) as conn:
                count = (await conn.execute(statement)).rowcount
            total += count
            if count < batch_size:
                return total
            await asyncio.sleep(0)  # the other writers queued meanwhile go first


@dataclass(slots=True)
class AuditStats:
    written: int = 0
    dropped: int = 0
    failures: int = 0

    @property
    def as_dict(self) -> dict[str, int]:
        return {"written": self.written, "dropped": self.dropped, "failures": self.failures}


class AuditTrail:
    """Non-blocking front of :class:`AuditStore` for the service (see the module doc)."""

    def __init__(self, store: AuditStore, *, max_pending: int = 10_000, batch_size: int = 1_000,
                 flush_interval: float = 0.2, clock: Callable[[], datetime] = utcnow):
        self.store = store
        self.max_pending = max_pending
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.clock = clock
        self.stats = AuditStats()
        self._pending: collections.deque[AuditEvent] = collections.deque()
        self._writing: list[AuditEvent] = []  # the batch out to the database, back in _pending if it fails
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._lock: asyncio.Lock | None = None

    @property
    def pending(self) -> int:
        """Entries not written yet (queued, and the batch being written)."""
        return len(self._pending) + len(self._writing)

    def record(self, actor: str, action: str, target_type: str, target_id: str, **extra: Any) -> None:
        """Queue one entry and return at once (``extra``: the other AuditEvent fields)."""
        self.add(AuditEvent(actor, action, target_type, target_id, at=self.clock(), **extra))

    def add(self, event: AuditEvent) -> None:
        self._pending.append(event)
        if len(self._pending) > self.max_pending:
            self._drop_oldest()
        if self._wake is not None and len(self._pending) >= self.batch_size:
            self._wake.set()

    def _drop_oldest(self) -> None:
        """Past ``max_pending``: the oldest go, counted, logged at the first and every 1,000th."""
        before = self.stats.dropped
        while len(self._pending) > self.max_pending:
            self._pending.popleft()
            self.stats.dropped += 1
        if before == 0 or before // 1000 != self.stats.dropped // 1000:
            log.error("audit entries dropped count=%d reason=queue-full max_pending=%d", self.stats.dropped, self.max_pending)

    async def start(self) -> None:
        self._wake, self._lock = asyncio.Event(), asyncio.Lock()
        self._task = asyncio.create_task(self._run(), name="audit-writer")

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop the writer and try once more to write what is queued."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            await asyncio.wait_for(self.flush(), timeout)
        except Exception as exc:
            log.error("audit entries lost at stop count=%d reason=%s", self.pending, type(exc).__name__)

    async def flush(self) -> int:
        """Write everything queued now, ``batch_size`` rows per statement (the
        writer, tests, shutdown); raises if the database does, the failed
        batch back at the front of the queue."""
        lock = self._lock or asyncio.Lock()
        written = 0
        async with lock:
            while self._pending:
                batch = self._writing = [self._pending.popleft() for _ in range(min(self.batch_size, len(self._pending)))]
                try:
                    await self.store.write(batch)
                except BaseException:  # cancelled too (stop): flushed again there
                    self._pending.extendleft(reversed(batch))
                    if len(self._pending) > self.max_pending:
                        self._drop_oldest()
                    raise
                finally:
                    self._writing = []
                written += len(batch)
                self.stats.written += len(batch)
        return written

    async def _run(self) -> None:
        failed = 0
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
                failed = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats.failures += 1
                failed += 1
                delay = min(5.0, self.flush_interval * 2 ** min(failed, 20))
                log.warning("audit write failed pending=%d reason=%s retry_in=%.1f", self.pending, type(exc).__name__, delay)
                await asyncio.sleep(delay)  # a full queue's wake-ups must not turn the back-off into a busy retry


class AuditRetention:
    """``[security] audit_retention_days``: deletes the entries older than that
    many days at start and then every ``interval`` seconds (an hour), in
    batches (:meth:`AuditStore.purge`), logging ``audit entries purged
    count=N before=...`` and leaving an ``audit.purged`` entry when it
    deleted something.  A failed run (the database away) is logged and tried
    again at the next one."""

    def __init__(self, store: AuditStore, days: int, *, interval: float = 3600.0, batch_size: int = PURGE_BATCH,
                 clock: Callable[[], datetime] = utcnow):
        if days < 1:
            raise ValueError("days must be >= 1 (0 keeps entries forever: no retention task)")
        self.store = store
        self.days = days
        self.interval = interval
        self.batch_size = batch_size
        self.clock = clock
        self.purged = 0  # entries deleted since start
        self.runs = 0

    def cutoff(self) -> datetime:
        return self.clock() - timedelta(days=self.days)

    async def purge_once(self) -> int:
        before = self.cutoff()
        count = await self.store.purge(before, batch_size=self.batch_size)
        self.runs += 1
        self.purged += count
        log.info("audit entries purged count=%d before=%s retention_days=%d", count, before.isoformat(), self.days)
        if count:
            await self.store.write([AuditEvent(RETENTION_ACTOR, AUDIT_PURGED, "audit", before.isoformat(), "system",
                                               detail={"before": before.isoformat(), "deleted": count,
                                                       "retention_days": self.days}, at=self.clock())])
        return count

    async def run(self) -> None:
        while True:
            try:
                await self.purge_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("audit purge failed reason=%s retry_in=%.0f", type(exc).__name__, self.interval)
            await asyncio.sleep(self.interval)
