"""Fill the three demo databases: the personas plus N random customers.

The work is streamed: customers are generated in chunks, each chunk's rows
are written to the three databases concurrently and then dropped, so memory
stays flat whatever N is.  Each database is loaded in one transaction
(tables, rows, then indexes, which is faster than maintaining them row by
row), and a database that already holds demo tables is refused unless
``force`` is set, because silently replacing someone's data is worse than
one more flag.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.schema import CreateIndex, CreateTable

from adapters.demo import schema
from adapters.demo.load import TableWriter
from adapters.demo.personas import persona_rows
from adapters.demo.plan import make_plan, nightly_run
from adapters.demo.queries import DEFAULT_DSNS, SYSTEMS
from adapters.demo.world import World, catalog
from adapters.engine import make_engine
from adapters.sql import describe

log = logging.getLogger(__name__)

CHUNK = 2000  # customers per round trip: big enough for COPY, small enough for flat memory
MAX_CUSTOMERS = 50_000_000


class SeedError(Exception):
    """A seed that cannot proceed; the message is one line a user can act on."""


class SeedExists(SeedError):
    """Demo tables are already there (and ``force`` was not given)."""

    def __init__(self, message: str, present: dict[str, list[str]]):
        super().__init__(message)
        self.present = present  # system -> its demo tables found

    @property
    def complete(self) -> bool:
        return all(len(self.present.get(s, ())) == len(schema.SYSTEMS[s].tables) for s in SYSTEMS)


@dataclass(slots=True)
class SeedProgress:
    phase: str  # load | index | done
    customers_done: int
    customers_total: int
    rows_done: int
    rows_total: int
    seconds: float

    @property
    def fraction(self) -> float:
        return self.rows_done / self.rows_total if self.rows_total else 1.0


@dataclass(slots=True)
class SeedResult:
    customers: int
    rows: dict[str, int]  # "system.table" -> rows written
    seconds: float


ProgressCallback = Callable[[SeedProgress], None]


async def seed_demo(
    dsns: dict[str, str] | None = None,
    customers: int = 1000,
    seed: int = 1,
    progress: ProgressCallback | None = None,
    *,
    force: bool = False,
    today: dt.date | None = None,
) -> SeedResult:
    """Seed sales, billing and support (``dsns`` by system name; missing ones
    default to ``var/demo/<system>.sqlite3``).  Deterministic for a given
    ``seed`` and ``today`` (dates are relative to today so the demo always
    looks current)."""
    if not 0 <= customers <= MAX_CUSTOMERS:
        raise SeedError(f"customers must be between 0 and {MAX_CUSTOMERS:,}, got {customers}")
    dsns = {**DEFAULT_DSNS, **(dsns or {})}
    unknown = sorted(set(dsns) - set(SYSTEMS))
    if unknown:
        raise SeedError(f"unknown system(s) {', '.join(unknown)}; expected {', '.join(SYSTEMS)}")
    today = today or dt.datetime.now(dt.timezone.utc).date()
    started = time.monotonic()
    plan = await asyncio.to_thread(make_plan, customers, seed)  # seconds for millions: off the event loop
    night = nightly_run(today)  # read once: personas and the world share one snapshot time
    people = persona_rows(today, night)
    products = catalog(seed)
    totals = {name: plan.totals.get(name, 0) + len(people.get(name, ())) for name in _table_names()}
    totals["sales.products"] = len(products)
    rows_total = sum(totals.values())
    report = _Reporter(progress, customers, rows_total, started)

    # One connection per distinct database: systems may share one (a single
    # SQLite file takes one writer at a time), and then share its transaction.
    engines = {dsn: _engine(dsn) for dsn in dict.fromkeys(dsns[s] for s in SYSTEMS)}
    conns: dict[str, AsyncConnection] = {}
    try:
        for dsn, engine in engines.items():
            conns[dsn] = await _open(engine, dsn)
        present = {system: await _present(conns[dsns[system]], system, dsns[system]) for system in SYSTEMS}
        for system in SYSTEMS:  # all checked before anything is touched
            if present[system] and not force:
                where = make_url(dsns[system]).render_as_string(hide_password=True)
                raise SeedExists(f"{system} database {where} already has demo tables ({', '.join(present[system])}); "
                                 "use --force to replace them", present)
        for system in SYSTEMS:
            await _prepare(conns[dsns[system]], system, present[system])
        writers = {name: TableWriter(conns[dsns[name.split(".")[0]]], table, _schema_of(dsns[name.split(".")[0]]))
                   for name, table in _tables().items()}
        written = defaultdict(int)

        async def flush(batch: dict[str, list]) -> None:  # table -> prepared records
            by_database: dict[str, list[str]] = defaultdict(list)
            for name in batch:
                by_database[dsns[name.split(".")[0]]].append(name)

            async def one_database(names: list[str]) -> None:
                for name in names:  # one connection: its tables go one after another
                    written[name] += await writers[name].write(batch[name])

            await asyncio.gather(*(one_database(names) for names in by_database.values()))

        report("load", 0, 0)
        await flush({name: writers[name].prepare(rows) for name, rows in {"sales.products": products, **people}.items()})
        world = World(plan, seed, today, products, night)
        done = 0
        while done < customers:
            # Generated inline: on a thread, overlapping with the writes, it
            # measured no faster on two cores (the GIL and the database's own
            # work leave nothing to overlap) and only added machinery.
            end = min(customers, done + CHUNK)
            batch: dict[str, list[dict]] = defaultdict(list)
            for i in range(done, end):
                world.customer(i, batch)
            await flush({name: writers[name].prepare(rows) for name, rows in batch.items()})
            done = end
            report("load", done, sum(written.values()))
        report("index", done, sum(written.values()))

        async def index(dsn: str) -> None:
            for system in SYSTEMS:
                if dsns[system] == dsn:
                    await _indexes(conns[dsn], system)

        await asyncio.gather(*(index(dsn) for dsn in conns))
        for conn in conns.values():
            await conn.commit()
    except SeedError:
        raise
    except Exception as exc:
        raise SeedError(f"seed failed: {describe(exc, 'write', 0)}") from exc
    finally:
        for conn in conns.values():
            try:
                await conn.close()
            except Exception:  # the original error matters more
                pass
        for engine in engines.values():
            await engine.dispose()
    seconds = time.monotonic() - started
    report("done", customers, sum(written.values()))
    log.info("seed done customers=%d rows=%d seconds=%.1f", customers, sum(written.values()), seconds)
    return SeedResult(customers, dict(written), seconds)


async def ensure_seeded(
    dsns: dict[str, str] | None = None,
    customers: int = 1000,
    seed: int = 1,
    progress: ProgressCallback | None = None,
) -> SeedResult | None:
    """Seed unless all three databases already hold the demo tables (then
    None: an operator's earlier, perhaps bigger, seed is kept).  Half-present
    demo data is replaced, since the demo cannot run on it.  For ``screenpop
    demo``, which must work on a fresh checkout without a separate step."""
    try:
        return await seed_demo(dsns, customers, seed, progress)
    except SeedExists as exc:
        if exc.complete:
            return None
        log.warning("demo data incomplete, seeding again present=%s", exc.present)
        return await seed_demo(dsns, customers, seed, progress, force=True)


# ------------------------------------------------------------------ helpers


def _table_names() -> list[str]:
    return list(_tables())


def _tables():
    return {f"{system}.{table.name}": table for system, meta in schema.SYSTEMS.items() for table in meta.sorted_tables}


def _schema_of(dsn: str) -> str | None:
    path = make_url(dsn).query.get("search_path")
    if isinstance(path, tuple):
        path = path[0]
    return path.split(",")[0].strip() if path else None


def _engine(dsn: str) -> AsyncEngine:
    url = make_url(dsn)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(url.database)), exist_ok=True)
    return make_engine(dsn, read_only=False, pool_size=1, max_overflow=0, application_name="screenpop-seed")


async def _open(engine: AsyncEngine, dsn: str) -> AsyncConnection:
    """Connect; a PostgreSQL database that does not exist yet is created."""
    where = make_url(dsn).render_as_string(hide_password=True)
    try:
        conn = await engine.connect()
    except Exception as exc:
        if "does not exist" in str(exc) and make_url(dsn).get_backend_name() == "postgresql":
            await _create_database(dsn)
            try:
                conn = await engine.connect()
            except Exception as again:
                raise SeedError(f"cannot connect to {where}: {describe(again, 'connect', 5)}") from again
        else:
            raise SeedError(f"cannot connect to {where}: {describe(exc, 'connect', 5)}") from exc
    if conn.dialect.name == "sqlite":
        # A bulk load that can be redone: no fsync per page, journal in memory.
        await conn.exec_driver_sql("PRAGMA synchronous = OFF")
        await conn.exec_driver_sql("PRAGMA journal_mode = MEMORY")
        await conn.exec_driver_sql("PRAGMA cache_size = -16384")
        # The sqlite3 module would run DDL outside any transaction; an explicit
        # BEGIN puts tables, rows and indexes in one, as on PostgreSQL.
        await conn.exec_driver_sql("BEGIN")
    return conn


async def _create_database(dsn: str) -> None:
    url = make_url(dsn)
    name = url.database
    admin = make_engine(url.set(database="postgres").render_as_string(hide_password=False), read_only=False,
                        pool_size=1, max_overflow=0)
    try:
        async with admin.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        log.info("seed created database=%s", name)
    except Exception as exc:
        raise SeedError(f"database {name} does not exist and cannot be created: {describe(exc, 'connect', 5)}") from exc
    finally:
        await admin.dispose()


async def _present(conn: AsyncConnection, system: str, dsn: str) -> list[str]:
    """The demo tables of ``system`` that already exist in its database."""
    meta = schema.SYSTEMS[system]
    schema_name = _schema_of(dsn)
    if schema_name and conn.dialect.name == "postgresql":
        await conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema_name}"')
    return await conn.run_sync(
        lambda sync: [t.name for t in meta.sorted_tables if inspect(sync).has_table(t.name, schema_name)])


async def _prepare(conn: AsyncConnection, system: str, present: list[str]) -> None:
    meta = schema.SYSTEMS[system]
    for table in reversed(meta.sorted_tables):  # only our tables: a shared database keeps the rest
        if table.name in present:
            await conn.exec_driver_sql(f'DROP TABLE "{table.name}"')
    for table in meta.sorted_tables:
        await conn.execute(CreateTable(table))


async def _indexes(conn: AsyncConnection, system: str) -> None:
    for table in schema.SYSTEMS[system].sorted_tables:
        for index in table.indexes:
            await conn.execute(CreateIndex(index))
        if conn.dialect.name == "postgresql":
            await conn.execute(text(f'ANALYZE "{table.name}"'))


class _Reporter:
    """Calls ``progress`` at most about ten times a second: a callback that
    redraws a terminal must not slow the load down."""

    def __init__(self, callback: ProgressCallback | None, customers: int, rows_total: int, started: float):
        self.callback = callback
        self.customers = customers
        self.rows_total = rows_total
        self.started = started
        self.last = 0.0

    def __call__(self, phase: str, done: int, rows: int) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        if phase == "load" and done < self.customers and now - self.last < 0.1:
            return
        self.last = now
        self.callback(SeedProgress(phase, done, self.customers, rows, self.rows_total, now - self.started))
