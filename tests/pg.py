"""Scratch PostgreSQL databases for tests: uniquely named, dropped afterwards.

One place for it, so every package's tests fail the same clear way when
PostgreSQL is down (they never skip) and clean up the same way."""
from __future__ import annotations

import contextlib
import uuid

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_DSN


def asyncpg_dsn(dsn: str = POSTGRES_DSN) -> str:
    """asyncpg's own form of a SQLAlchemy DSN."""
    return make_url(dsn).set(drivername="postgresql").render_as_string(hide_password=False)


async def admin(**options) -> asyncpg.Connection:
    """A connection to the server's test database, or a test failure saying
    why; ``options`` go to :func:`asyncpg.connect` (``server_settings``...)."""
    try:
        return await asyncpg.connect(asyncpg_dsn(), timeout=5, **options)
    except Exception as exc:  # pragma: no cover - the point is to fail loudly
        pytest.fail(f"PostgreSQL is required at {POSTGRES_DSN} and is not reachable: {exc}")


async def create_database(prefix: str) -> str:
    """A new empty database; returns its SQLAlchemy (asyncpg) DSN."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = await admin()
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(POSTGRES_DSN).set(database=name).render_as_string(hide_password=False)


async def drop_database(dsn: str) -> None:
    """Drop it even if a test left it refusing connections or still connected."""
    name = make_url(dsn).database
    conn = await admin()
    try:
        await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except asyncpg.InvalidCatalogNameError:
        pass  # the test dropped it itself
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def scratch_database(prefix: str):
    dsn = await create_database(prefix)
    try:
        yield dsn
    finally:
        await drop_database(dsn)


@pytest.fixture(name="proxy")
async def postgres_proxy():
    """A TCP proxy in front of the test PostgreSQL server (tests/faults/proxy.py):
    a test cuts and restores the database by cutting the proxy.  Modules that
    use it import it: ``from tests.pg import postgres_proxy  # noqa: F401``."""
    from tests.faults.proxy import TcpProxy

    url = make_url(POSTGRES_DSN)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    yield proxy
    await proxy.stop()
