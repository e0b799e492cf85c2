"""The interaction log's queries and its writer's transactions, each one function.

Why: on SQLite (the embedded node) SQLAlchemy's async engine runs every step
of a query (checkout, cursor, execute, fetch, close) as its own trip to
aiosqlite's thread and back through the event loop.  Under load each trip
waits for the busy loop: the caller's call-history query, 1 ms of SQL, took
a p95 of 100 to 200 ms and was the slowest part of a cold pop.  Here a read
is one plain function run on a thread with a synchronous engine on the same
file; the loop is woken once.  WAL mode lets these readers run beside the
writer.

Writes stay on the event loop (``AsyncConnection.run_sync`` inside
:func:`screenpop.db.writing`'s turn): moving the interaction writer's batch
(merging and converting records is CPU work) to a thread was measured
slower, as the thread and the loop then fight over the GIL in 5 ms slices
(cold pop p99 74-100 ms on the loop, 146-184 ms threaded).

On PostgreSQL (asyncpg) and in-memory SQLite reads run through the async
engine too: one code path serves both.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from screenpop.db import writing

T = TypeVar("T")
Trip = Callable[..., T]  # fn(sync Connection, *args) -> T


class Trips:
    """``await trips.read(fn, *args)`` / ``await trips.write(fn, *args)``: ``fn(conn, *args)``
    with a synchronous connection; a write commits when ``fn`` returns."""

    def __init__(self, engine: AsyncEngine, *, readers: int = 4):
        self.engine = engine
        self._reads: ThreadPoolExecutor | None = None
        url = engine.url
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            # A connection per read (NullPool; opening one is ~0.1 ms, on the
            # thread): a pooled one would go on reading a file that was replaced
            # or moved away (a restore) instead of failing or seeing the new one.
            self._read_engine = sqlalchemy.create_engine(url.set(drivername="sqlite"), poolclass=NullPool)
            event.listen(self._read_engine, "connect", _read_only)
            self._reads = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="db-reads")

    async def read(self, fn: Trip[T], *args: Any) -> T:
        if self._reads is None:
            async with self.engine.connect() as conn:
                return await conn.run_sync(fn, *args)
        return await asyncio.wrap_future(self._reads.submit(_run, self._read_engine.connect, fn, args))

    async def write(self, fn: Trip[T], *args: Any) -> T:
        async with writing(self.engine) as conn:
            return await conn.run_sync(fn, *args)

    async def close(self) -> None:
        if self._reads is not None:
            pool, self._reads = self._reads, None
            await asyncio.get_running_loop().run_in_executor(None, pool.shutdown)
            self._read_engine.dispose()


def _run(open_connection, fn, args):
    with open_connection() as conn:
        return fn(conn, *args)


def _read_only(dbapi_connection, _record) -> None:
    """The readers only read: a stray write fails loudly instead of taking
    the write lock outside the writers' turns (screenpop.db.writing)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA query_only = ON")
    finally:
        cursor.close()
