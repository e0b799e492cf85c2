"""screenpop.db_trips: a read or a write transaction is one function on a
thread for a SQLite file, the same function through the async engine
elsewhere (PostgreSQL, memory)."""
from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

from screenpop.db import create_engine, writing
from screenpop.db_trips import Trips
from tests.pg import scratch_database


def where_and_what(conn):
    return threading.current_thread().name, conn.execute(text("select 40 + 2")).scalar_one()


def insert(conn, value, fail=False):
    conn.execute(text("insert into t values (:x)"), {"x": value})
    if fail:
        raise ValueError("after the insert")
    return threading.current_thread().name


def values(conn):
    return [row.x for row in conn.execute(text("select x from t order by x"))]


@pytest.fixture
async def sqlite_file(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'service.sqlite3'}")
    async with engine.begin() as conn:
        await conn.execute(text("create table t (x integer)"))
    trips = Trips(engine)
    yield engine, trips
    await trips.close()
    await engine.dispose()


async def test_a_sqlite_file_is_read_on_reader_threads_that_never_write(sqlite_file):
    _, trips = sqlite_file
    thread, answer = await trips.read(where_and_what)
    assert thread.startswith("db-reads") and answer == 42
    with pytest.raises(OperationalError, match="readonly|read-only|query_only"):
        await trips.read(insert, 1)


async def test_a_write_commits_or_rolls_back_whole_in_its_turn(sqlite_file):
    engine, trips = sqlite_file
    await trips.write(insert, 1)
    with pytest.raises(ValueError):
        await trips.write(insert, 2, True)
    order = []

    async def async_writer():
        async with writing(engine) as conn:
            order.append("other in")
            await conn.execute(text("insert into t values (10)"))
            await asyncio.sleep(0.2)  # holds the turn (and SQLite's lock) across awaits
            order.append("other out")

    first = asyncio.create_task(async_writer())
    await asyncio.sleep(0.05)
    await trips.write(insert, 20)  # waits for the turn: never "database is locked"
    order.append("trip done")
    await first
    assert order == ["other in", "other out", "trip done"]
    assert await trips.read(values) == [1, 10, 20]


async def test_memory_sqlite_and_postgresql_go_through_the_async_engine():
    memory = create_async_engine("sqlite+aiosqlite:///:memory:")
    trips = Trips(memory)
    thread, answer = await trips.read(where_and_what)
    assert not thread.startswith("db-") and answer == 42  # a second engine would see another database
    await trips.close()
    await memory.dispose()
    async with scratch_database("db_trips") as dsn:
        pg = create_engine(dsn)
        async with pg.begin() as conn:
            await conn.execute(text("create table t (x integer)"))
        trips = Trips(pg)
        try:
            thread, answer = await trips.read(where_and_what)
            assert not thread.startswith("db-") and answer == 42
            await trips.write(insert, 5)
            with pytest.raises(ValueError):
                await trips.write(insert, 6, True)
            assert await trips.read(values) == [5]
        finally:
            await trips.close()
            await pg.dispose()
