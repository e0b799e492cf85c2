"""Real databases for the adapter tests: SQLite files in tmp_path and
uniquely named PostgreSQL databases on the local server, dropped afterwards.
PostgreSQL being down fails these tests; it never skips them."""
from __future__ import annotations

import datetime as dt

import pytest
import pytest_asyncio

from adapters.demo import SYSTEMS, seed_demo
from tests.pg import create_database
from tests.pg import drop_database as drop_pg_database

TODAY = dt.date(2026, 11, 23)  # fixed, so every run sees the same rows


async def create_pg_database(prefix: str = "sp_adapters") -> str:
    return await create_database(prefix)


@pytest.fixture
async def pg_dsns():
    """Three fresh PostgreSQL databases, one per demo system."""
    dsns = {}
    try:
        for system in SYSTEMS:
            dsns[system] = await create_pg_database(f"sp_{system}")
        yield dsns
    finally:
        for dsn in dsns.values():
            await drop_pg_database(dsn)


@pytest.fixture
def sqlite_dsns(tmp_path):
    return {system: f"sqlite+aiosqlite:///{tmp_path}/{system}.sqlite3" for system in SYSTEMS}


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine_dsns(request, tmp_path):
    """The same test on both engines."""
    if request.param == "sqlite":
        yield {system: f"sqlite+aiosqlite:///{tmp_path}/{system}.sqlite3" for system in SYSTEMS}
        return
    dsns = {}
    try:
        for system in SYSTEMS:
            dsns[system] = await create_pg_database(f"sp_{system}")
        yield dsns
    finally:
        for dsn in dsns.values():
            await drop_pg_database(dsn)


WORLD_CUSTOMERS = 1500


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def world(request, tmp_path_factory):
    """A small seeded world on each engine, shared by a module's read-only tests."""
    if request.param == "sqlite":
        folder = tmp_path_factory.mktemp("world")
        dsns = {system: f"sqlite+aiosqlite:///{folder}/{system}.sqlite3" for system in SYSTEMS}
        yield dsns, await seed_demo(dsns, WORLD_CUSTOMERS, 7, today=TODAY)
        return
    dsns = {}
    try:
        for system in SYSTEMS:
            dsns[system] = await create_pg_database(f"sp_{system}")
        yield dsns, await seed_demo(dsns, WORLD_CUSTOMERS, 7, today=TODAY)
    finally:
        for dsn in dsns.values():
            await drop_pg_database(dsn)
