"""Real databases for the interaction log: a SQLite file in tmp_path, and a
uniquely named PostgreSQL database on the local server, dropped afterwards.
PostgreSQL being down FAILS these tests; it never skips them.

Events come from the real captures through ``telephony.replay``."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy.pool import NullPool

from screenpop.db import create_engine
from screenpop.interactions.migrate import migrate
from screenpop.interactions.store import InteractionStore
from telephony.events import CallEvent
from telephony.replay import replay
from tests.pg import create_database
from tests.pg import drop_database as drop_pg_database

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CAPTURES = ("support_answered", "sales_no_answer_then_next", "billing_abandoned", "direct_call", "blind_transfer", "burst_small")


def capture_events(*names: str) -> list[CallEvent]:
    events: list[CallEvent] = []
    for name in names or CAPTURES:
        events.extend(replay([(FIXTURES / f"{name}.ami").read_bytes()]))
    return events


def by_call(events: list[CallEvent]) -> dict[str, list[CallEvent]]:
    out: dict[str, list[CallEvent]] = defaultdict(list)
    for event in events:
        out[event.call_id].append(event)
    return dict(out)


async def create_pg_database() -> str:
    return await create_database("sp_interactions")


@pytest.fixture(params=["sqlite", "postgresql"])
async def dsn(request, tmp_path):
    """An empty database on each engine (not migrated)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/interactions.sqlite3"
        return
    dsn = await create_pg_database()
    try:
        yield dsn
    finally:
        await drop_pg_database(dsn)


@pytest.fixture
async def pg_dsn():
    dsn = await create_pg_database()
    try:
        yield dsn
    finally:
        await drop_pg_database(dsn)


@pytest.fixture
async def engine(dsn):
    """A migrated database on each engine.  SQLite without a pool, so a test
    can take the file away between two writes (the outage tests)."""
    await migrate(dsn)
    options = {"poolclass": NullPool} if dsn.startswith("sqlite") else {}
    engine = create_engine(dsn, **options)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def store(engine):
    return InteractionStore(engine)
