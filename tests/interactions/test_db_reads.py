"""screenpop.db_reads: a read is one function on a thread for a SQLite file,
the same function through the async engine elsewhere (PostgreSQL, memory)."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

from screenpop.db import create_engine
from screenpop.db_reads import Reads
from tests.pg import scratch_database


def where_and_what(conn):
    return threading.current_thread().name, conn.execute(text("select 40 + 2")).scalar_one()


async def test_a_sqlite_file_is_read_on_the_reads_threads_and_never_written(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'service.sqlite3'}")
    async with engine.begin() as conn:
        await conn.execute(text("create table t (x integer)"))
    reads = Reads(engine)
    try:
        thread, answer = await reads.run(where_and_what)
        assert thread.startswith("db-reads") and answer == 42
        with pytest.raises(OperationalError, match="readonly|read-only|query_only"):
            await reads.run(lambda conn: conn.execute(text("insert into t values (1)")))
    finally:
        await reads.close()
        await engine.dispose()


async def test_memory_sqlite_and_postgresql_go_through_the_async_engine():
    memory = create_async_engine("sqlite+aiosqlite:///:memory:")
    reads = Reads(memory)
    thread, answer = await reads.run(where_and_what)
    assert not thread.startswith("db-reads") and answer == 42  # a second engine would see another database
    await reads.close()
    await memory.dispose()
    async with scratch_database("db_reads") as dsn:
        pg = create_engine(dsn)
        reads = Reads(pg)
        try:
            thread, answer = await reads.run(where_and_what)
            assert not thread.startswith("db-reads") and answer == 42
        finally:
            await reads.close()
            await pg.dispose()
