"""The interaction log's queries and its writer's transactions in one trip each.

Why: on SQLite (the embedded node) SQLAlchemy's async engine runs every step
of a query (checkout, cursor, execute, fetch, close) as its own trip to
aiosqlite's thread and back through the event loop.  Under load each trip
waits for the busy loop: the caller's call-history query, 1 ms of SQL, took
a p95 of 100 to 200 ms and was the slowest part of a cold pop, and the
interaction writer's transaction (merging and converting a batch of records
between its statements) held the loop up to 30 ms at a time.  Here a read
or a write transaction is one plain function run on a thread with a
synchronous engine on the same file; the loop is woken once.  WAL mode lets
the readers run beside the writer; the writer still takes its turn among
the process's writers (:func:`screenpop.db.write_turn`).

On PostgreSQL (asyncpg) and in-memory SQLite the same function runs through
the async engine (``AsyncConnection.run_sync``): one code path serves both.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from screenpop.db import _sqlite_for_a_service, write_turn, writing

T = TypeVar("T")
Trip = Callable[..., T]  # fn(sync Connection, *args) -> T


class Trips:
    """``await trips.read(fn, *args)`` / ``await trips.write(fn, *args)``: ``fn(conn, *args)``
    with a synchronous connection; a write commits when ``fn`` returns."""

    def __init__(self, engine: AsyncEngine, *, readers: int = 4):
        self.engine = engine
        self._reads = self._writes = None
        url = engine.url
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            # A connection per trip (NullPool; opening one is ~0.1 ms, on the
            # thread): a pooled one would go on using a file that was replaced
            # or moved away (a restore) instead of failing or seeing the new one.
            sync_url = url.set(drivername="sqlite")
            self._read_engine = sqlalchemy.create_engine(sync_url, poolclass=NullPool)
            event.listen(self._read_engine, "connect", _read_only)
            self._write_engine = sqlalchemy.create_engine(sync_url, poolclass=NullPool)
            event.listen(self._write_engine, "connect", _sqlite_for_a_service)
            self._reads = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="db-reads")
            self._writes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-writes")

    async def read(self, fn: Trip[T], *args: Any) -> T:
        if self._reads is None:
            async with self.engine.connect() as conn:
                return await conn.run_sync(fn, *args)
        return await asyncio.wrap_future(self._reads.submit(_run, self._read_engine.connect, fn, args))

    async def write(self, fn: Trip[T], *args: Any) -> T:
        if self._writes is None:
            async with writing(self.engine) as conn:
                return await conn.run_sync(fn, *args)
        async with write_turn(self.engine):
            done = asyncio.wrap_future(self._writes.submit(_run, self._write_engine.begin, fn, args))
            try:
                return await asyncio.shield(done)
            except asyncio.CancelledError:
                # The thread still holds SQLite's write lock: keep the turn until
                # it has committed or rolled back, then let the cancel through.
                while not done.done():
                    try:
                        await asyncio.wait([done])
                    except asyncio.CancelledError:
                        pass
                raise

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for pool in (self._writes, self._reads):
            if pool is not None:
                await loop.run_in_executor(None, pool.shutdown)
        self._reads = self._writes = None
        if hasattr(self, "_read_engine"):
            self._read_engine.dispose()
            self._write_engine.dispose()


def _run(open_connection, fn, args):
    with open_connection() as conn:
        return fn(conn, *args)


def _read_only(dbapi_connection, _record) -> None:
    """The readers only read: a stray write fails loudly instead of taking
    the write lock outside the writers' turns."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA query_only = ON")
    finally:
        cursor.close()
