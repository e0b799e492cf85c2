"""Real databases for the account tests: a SQLite file and a PostgreSQL
database of this test's own (created, then dropped).  PostgreSQL being down
fails the test with the reason; it never skips."""
from __future__ import annotations

import contextlib
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from screenpop.auth.accounts import LockoutPolicy, SessionPolicy
from screenpop.auth.models import sessions, users
from screenpop.auth.store import AccountStore
from screenpop.db import create_engine, metadata
from tests.conftest import POSTGRES_DSN
from tests.pg import admin, scratch_database

FAST_N = 2**4  # scrypt cost for tests: the real one is slow on purpose


class Clock:
    """A clock the test moves by hand (session expiry, lockout)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@contextlib.asynccontextmanager
async def postgres_schema():
    """A fresh schema of this test's own in the test database, dropped
    afterwards (a schema is much cheaper than a database).  Yields the DSN
    and the engine options that put the schema first on the search path."""
    name = f"auth_{uuid.uuid4().hex[:12]}"
    conn = await admin()
    try:
        await conn.execute(f'CREATE SCHEMA "{name}"')
        yield POSTGRES_DSN, {"connect_args": {"server_settings": {"search_path": name}}}
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        await conn.close()


def postgres_database():
    """The DSN of a fresh PostgreSQL database, dropped afterwards: for code
    that opens its own engine from a DSN (migrations, the CLI)."""
    return scratch_database("screenpop_auth")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def dsn(request, tmp_path):
    """An empty database of its own (SQLite file or PostgreSQL database)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/service.sqlite3"
    else:
        async with postgres_database() as found:
            yield found


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database(request, tmp_path):
    """(dsn, engine options) of an empty database: a SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/auth.sqlite3", {}
    else:
        async with postgres_schema() as found:
            yield found


@pytest.fixture
async def engine(database):
    dsn, options = database
    engine = create_engine(dsn, **options)
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: metadata.create_all(c, tables=[users, sessions]))
    yield engine
    await engine.dispose()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(engine, clock):
    return AccountStore(
        engine,
        lockout=LockoutPolicy(max_failures=3, lock_seconds=300),
        sessions=SessionPolicy(idle=timedelta(hours=1), absolute=timedelta(hours=8), touch_every=timedelta(seconds=60)),
        scrypt_n=FAST_N,
        clock=clock,
    )


@pytest.fixture(autouse=True)
def keep_root_logger():
    """The CLI tests call main(), which installs its own log handler on the root logger; put things back."""
    import logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level
