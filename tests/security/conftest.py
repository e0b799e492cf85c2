"""Databases for the security tests: a SQLite file, and a scratch
PostgreSQL database (created, then dropped; PostgreSQL down fails the test,
it never skips)."""
from __future__ import annotations

import pytest

from screenpop.db import create_engine
from screenpop.interactions.migrate import migrate
from tests.pg import scratch_database
from tests.security.node import running_node


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def dsn(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/service.sqlite3"
    else:
        async with scratch_database("screenpop_security") as found:
            yield found


@pytest.fixture
async def engine(dsn):
    """The service's engine on ``dsn``, migrated."""
    await migrate(dsn)
    engine = create_engine(dsn)
    yield engine
    await engine.dispose()


@pytest.fixture
async def node(tmp_path):
    """A node on SQLite (the web edge does not depend on the backend)."""
    async with running_node(f"sqlite+aiosqlite:///{tmp_path}/node.sqlite3", tmp_path) as found:
        yield found
