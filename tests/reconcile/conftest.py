"""An interaction store (migrated) and Asterisk's CEL table, on SQLite, on
PostgreSQL and (the CEL table, as FreePBX keeps it) on MySQL/MariaDB: the
reconciliation reads one and writes the other over real connections.  A
database server that is down FAILS these tests; they never skip."""
from __future__ import annotations

import pytest

from adapters.engine import make_engine
from screenpop.db import create_engine
from screenpop.interactions.migrate import migrate
from screenpop.interactions.store import InteractionStore
from tests.mysql import scratch_mysql_database
from tests.pg import create_database, drop_database
from tests.reconcile.celdb import create_cel_table


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
async def dbs(request, tmp_path):
    """(interaction store DSN, CEL DSN) on one engine kind (mysql: the CEL
    table on MariaDB, the log on SQLite)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/interactions.sqlite3", f"sqlite+aiosqlite:///{tmp_path}/asteriskcdr.sqlite3"
        return
    if request.param == "mysql":
        async with scratch_mysql_database("sp_asteriskcdr") as cdr:
            yield f"sqlite+aiosqlite:///{tmp_path}/interactions.sqlite3", cdr
        return
    log, cdr = await create_database("sp_reconcile"), await create_database("sp_asteriskcdr")
    try:
        yield log, cdr
    finally:
        await drop_database(log)
        await drop_database(cdr)


@pytest.fixture
async def store(dbs):
    await migrate(dbs[0])
    engine = create_engine(dbs[0])
    try:
        yield InteractionStore(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def cel_engine(dbs):
    """Writable, to fill the table as Asterisk would; the reconciler reads
    through its own read-only engine on the same DSN."""
    engine = make_engine(dbs[1], read_only=False)
    await create_cel_table(engine)
    try:
        yield engine
    finally:
        await engine.dispose()
