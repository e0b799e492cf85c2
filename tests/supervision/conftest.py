"""Real databases for the day's figures: a SQLite file, and a uniquely named
PostgreSQL database dropped afterwards (:mod:`tests.pg`).  PostgreSQL being
down FAILS these tests; it never skips them."""
from __future__ import annotations

import pytest

from screenpop.db import create_engine
from screenpop.interactions.migrate import migrate
from tests.pg import scratch_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def log_dsn(request, tmp_path):
    """A migrated, empty interaction log on each engine."""
    if request.param == "sqlite":
        dsn = f"sqlite+aiosqlite:///{tmp_path}/interactions.sqlite3"
        await migrate(dsn)
        yield dsn
        return
    async with scratch_database("sp_supervision") as dsn:
        await migrate(dsn)
        yield dsn


@pytest.fixture
async def log_engine(log_dsn):
    engine = create_engine(log_dsn)
    try:
        yield engine
    finally:
        await engine.dispose()
