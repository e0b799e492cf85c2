"""Reads of the service's database in one trip each.

Why: on SQLite (the embedded node) SQLAlchemy's async engine runs every step
of a query (checkout, cursor, execute, fetch, close) as its own trip to
aiosqlite's thread and back through the event loop.  Under load each trip
waits for the busy loop: the caller's call-history query, 1 ms of SQL, took
a p95 of 100 to 200 ms, missed the lookup's deadline on cold cards and was
the slowest part of a cold pop (the sources' reads were fixed the same way,
see ``adapters/sqlite_reader.py``).  Here a read is one plain function
run on a small thread pool with a synchronous engine on the same file; the
loop is woken once.  WAL mode lets these readers run beside the writer.

On PostgreSQL (asyncpg) the same function runs through the async engine
(``AsyncConnection.run_sync``): its trips are cheap there, and one code path
serves both.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")
Read = Callable[..., T]  # fn(sync Connection, *args) -> T


class Reads:
    """``await reads.run(fn, *args)``: ``fn(conn, *args)`` with a synchronous connection."""

    def __init__(self, engine: AsyncEngine, *, workers: int = 4):
        self.engine = engine
        self._sync: sqlalchemy.Engine | None = None
        self._executor: ThreadPoolExecutor | None = None
        url = engine.url
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            self._sync = sqlalchemy.create_engine(url.set(drivername="sqlite"), pool_size=workers, max_overflow=0,
                                                  connect_args={"check_same_thread": False})
            event.listen(self._sync, "connect", _read_only)
            self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="db-reads")

    async def run(self, fn: Read[T], *args: Any) -> T:
        if self._executor is None:
            async with self.engine.connect() as conn:
                return await conn.run_sync(fn, *args)
        return await asyncio.wrap_future(self._executor.submit(self._in_thread, fn, args))

    def _in_thread(self, fn: Read[T], args: tuple) -> T:
        assert self._sync is not None
        with self._sync.connect() as conn:
            return fn(conn, *args)

    async def close(self) -> None:
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await asyncio.get_running_loop().run_in_executor(None, executor.shutdown)
        if self._sync is not None:
            self._sync.dispose()


def _read_only(dbapi_connection, _record) -> None:
    """These connections only read: a stray write fails loudly instead of
    taking the write lock outside :func:`screenpop.db.writing`'s turns."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA query_only = ON")
    finally:
        cursor.close()


__all__ = ["Connection", "Reads"]
