"""Real databases for the adapter tests: SQLite files in tmp_path and
uniquely named PostgreSQL databases on the local server, dropped afterwards.
PostgreSQL being down fails these tests; it never skips them."""
from __future__ import annotations

import datetime as dt
import uuid

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url

from adapters.demo import SYSTEMS, seed_demo
from tests.conftest import POSTGRES_DSN

TODAY = dt.date(2026, 11, 23)  # fixed, so every run sees the same rows


def _plain(dsn: str) -> str:
    return make_url(dsn).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_pg_database(prefix: str = "sp_adapters") -> str:
    """A new empty database; returns its SQLAlchemy DSN."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        conn = await asyncpg.connect(_plain(POSTGRES_DSN), timeout=5)
    except Exception as exc:  # pragma: no cover - the point is to fail loudly
        pytest.fail(f"PostgreSQL is required at {POSTGRES_DSN} and is not reachable: {exc}")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(POSTGRES_DSN).set(database=name).render_as_string(hide_password=False)


async def drop_pg_database(dsn: str) -> None:
    name = make_url(dsn).database
    conn = await asyncpg.connect(_plain(POSTGRES_DSN), timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


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
