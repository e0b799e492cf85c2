"""The service's own database (interaction log, users): one MetaData, one
engine factory.  SQLite for the demo, PostgreSQL in production; every table
of the service is declared on :data:`metadata` so Alembic sees them all."""
from __future__ import annotations

import asyncio
import contextlib
import weakref
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.types import TypeDecorator
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

# Stable constraint names, so migrations can refer to them on every backend.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def create_engine(dsn: str, **options) -> AsyncEngine:
    """An async engine; for a SQLite file, its folder is created first."""
    url = make_url(dsn)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_for_a_service)
        return engine
    options.setdefault("pool_pre_ping", True)
    options.setdefault("pool_size", 10)
    return create_async_engine(url, **options)


def _sqlite_for_a_service(dbapi_connection, _record) -> None:
    """The demo's one SQLite file serves the interaction writer, logins and the
    supervisors' figures at once: WAL lets readers run beside the writer
    instead of failing with "database is locked".  Writers still take turns;
    the service's own writers queue in :func:`writing`, the driver's 5 s busy
    timeout is left for writers of other processes (the CLI)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


class _WriteTurn:
    """One engine's writers on one event loop: whose turn it is."""

    __slots__ = ("lock", "owner")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.owner: asyncio.Task | None = None


# loop -> engine -> turn.  Per loop because an asyncio.Lock belongs to the loop
# it was first used on (tests run several loops); weak so that neither a
# closed loop nor a disposed engine is kept alive by it.
_write_turns: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, weakref.WeakKeyDictionary[Engine, _WriteTurn]]" = (
    weakref.WeakKeyDictionary()
)


def _write_turn(engine: AsyncEngine) -> _WriteTurn:
    per_engine = _write_turns.setdefault(asyncio.get_running_loop(), weakref.WeakKeyDictionary())
    turn = per_engine.get(engine.sync_engine)
    if turn is None:
        turn = per_engine[engine.sync_engine] = _WriteTurn()
    return turn


@contextlib.asynccontextmanager
async def writing(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """The one way the service opens a write transaction: ``async with
    writing(engine) as conn`` is ``engine.begin()`` (commit on exit, rollback
    on an exception), taken in turn on SQLite.

    Why: SQLite has one write lock per file.  Writers on different pooled
    connections (the interaction writer, the audit trail, logins and
    sessions, tokens) that find it taken wait in SQLite's busy handler, which
    sleeps with backoff, serves nobody in order and gives up with "database
    is locked" after the driver's 5 s busy timeout.  A transaction holds that
    lock across every statement's round trip through the driver's thread and
    the event loop, so under a busy loop the interaction writer held it long
    enough that most audit batches timed out (the soak benchmark lost two
    thirds of the ``pop.delivered`` entries).  Here the writers of one
    process wait for an :class:`asyncio.Lock` of the engine instead: in
    order, without a timeout, and only one of them at a time asks SQLite.
    It also makes a read-then-write transaction (check a row, then update it)
    atomic against the process's other writers, which SQLite's deferred
    transactions alone do not.  On PostgreSQL (row locks, MVCC) it is just
    ``engine.begin()``.

    Not re-entrant: a task must not open a write inside its own write (on
    SQLite it would wait for itself), so that raises at once.  Only the
    write transaction belongs inside; slow work (hashing, lookups) goes
    before or after it."""
    if engine.dialect.name != "sqlite":
        async with engine.begin() as conn:
            yield conn
        return
    turn, task = _write_turn(engine), asyncio.current_task()
    if task is not None and turn.owner is task:
        raise RuntimeError("a write transaction inside another one on the same SQLite engine would wait for itself")
    async with turn.lock:
        turn.owner = task
        try:
            async with engine.begin() as conn:
                yield conn
        finally:
            turn.owner = None


class UtcDateTime(TypeDecorator):
    """Aware UTC datetimes in and out, whatever the backend keeps: PostgreSQL
    has ``TIMESTAMP WITH TIME ZONE``, SQLite keeps naive UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)
