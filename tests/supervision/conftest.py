"""Real databases for the day's figures: a SQLite file, and a uniquely named
PostgreSQL database dropped afterwards.  PostgreSQL being down FAILS these
tests; it never skips them."""
from __future__ import annotations

import uuid

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from screenpop.db import create_engine
from screenpop.interactions.migrate import migrate
from tests.conftest import POSTGRES_DSN


def _plain(dsn: str) -> str:
    return make_url(dsn).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(_plain(POSTGRES_DSN), timeout=5)
    except Exception as exc:  # pragma: no cover - the point is to fail loudly
        pytest.fail(f"PostgreSQL is required at {POSTGRES_DSN} and is not reachable: {exc}")


@pytest.fixture(params=["sqlite", "postgresql"])
async def log_dsn(request, tmp_path):
    """A migrated, empty interaction log on each engine."""
    if request.param == "sqlite":
        dsn = f"sqlite+aiosqlite:///{tmp_path}/interactions.sqlite3"
        await migrate(dsn)
        yield dsn
        return
    name = f"sp_supervision_{uuid.uuid4().hex[:10]}"
    admin = await _admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = make_url(POSTGRES_DSN).set(database=name).render_as_string(hide_password=False)
    try:
        await migrate(dsn)
        yield dsn
    finally:
        admin = await _admin()
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def log_engine(log_dsn):
    engine = create_engine(log_dsn)
    try:
        yield engine
    finally:
        await engine.dispose()
