"""A source that misses its deadline is stopped at the source: the SQLite
read is interrupted, the PostgreSQL statement cancelled by the server, and
neither the CLI nor the service waits for (or piles up) queries nobody
wants.  Real SQLite files, a real PostgreSQL, the installed console script."""
from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid

import pytest

from adapters.sql import SqlSource
from customer_lookup.plugin import build_lookup
from screenpop.config import LookupSettings, Settings, SourceSettings, StorageSettings
from tests.lookup.test_cli_lookup import run
from tests.lookup.worlds import BILLING_PHONES, PG_BILLING_RECORD, SALES_PHONES, PgSchema, sqlite_dsn, sqlite_world
from tests.pg import admin

# Counts to 30 million before answering: 6 to 15 s on the test machine.
SLOW_SQLITE_RECORD = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 30000000) "
    "SELECT customers.name, (SELECT count(*) FROM c) AS counted FROM customers WHERE id = :key"
)


# Start-up (imports, config, the saved index) and exit on a 2-core machine
# shared with other test runs; the runaway query alone takes 6 s or more.
MARGIN = 1.5


def timed(*args) -> tuple[float, object]:
    started = time.monotonic()
    result = run(*args)
    return time.monotonic() - started, result


def startup_seconds(config: str) -> float:
    """What a lookup costs right now when no source is asked (a number nobody
    has): start-up, the saved index, exit, under the machine's current load."""
    return min(timed("lookup", "+34987654321", "--config", config)[0] for _ in range(2))


@pytest.fixture
async def pg_schema():
    schema = await PgSchema().create()
    await schema.execute("UPDATE accounts SET delay = 30")
    yield schema
    await schema.drop()


async def running_sleeps(application_name: str) -> int:
    """Statements of this application still running on the server."""
    conn = await admin()
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND query LIKE '%pg_sleep%'",
            application_name,
        )
    finally:
        await conn.close()


async def wait_for_zero(count, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        value = await count()
        if value == 0 or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


async def test_sqlite_read_is_interrupted_when_its_caller_gives_up(tmp_path):
    sales, _ = sqlite_world(tmp_path)
    source = SqlSource("sales", sqlite_dsn(sales), SALES_PHONES, SLOW_SQLITE_RECORD)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(source.fetch("1"), 0.3)
        # The read stops in SQLite itself, within moments, not after its 6+ s.
        assert await wait_for_zero(lambda: _async(source._sqlite.running), 0.5) == 0
        assert time.monotonic() - started < 1.5
    finally:
        await source.close()
    assert time.monotonic() - started < 2  # close() had nothing left to wait for


async def _async(value):
    return value


def _cli_config(tmp_path, billing_dsn: str, billing_record: str, sales_record: str = "SELECT name FROM customers WHERE id = :key",
                billing_name: str = "billing") -> str:
    sales, _ = sqlite_world(tmp_path)
    path = tmp_path / "slow.toml"
    path.write_text(
        f"""
[lookup]
default_region = "ES"
deadline_ms = 300

[storage]
dsn = "sqlite+aiosqlite:///{tmp_path}/interactions.sqlite3"

[[sources]]
name = "sales"
kind = "sql"
dsn = "{sqlite_dsn(sales)}"
phones_query = "{SALES_PHONES}"
record_query = "{sales_record}"

[[sources]]
name = "{billing_name}"
kind = "sql"
dsn = "{billing_dsn}"
phones_query = "{BILLING_PHONES}"
record_query = "{billing_record}"
""",
        encoding="utf-8",
    )
    return str(path)


def test_cli_exits_at_its_deadline_with_a_runaway_sqlite_query(tmp_path):
    _, billing = sqlite_world(tmp_path, "b")
    config = _cli_config(tmp_path, sqlite_dsn(billing), "SELECT account_no, email FROM accounts WHERE account_no = :key",
                         sales_record=SLOW_SQLITE_RECORD)
    run("lookup", "+34912345678", "--config", config)  # warm: the index is saved, as after a service's build
    baseline = startup_seconds(config)
    took, result = timed("lookup", "+34912345678", "--config", config)
    assert result.returncode == 0, result.stderr
    assert "source sales: timeout" in result.stdout and "no answer within 300 ms" in result.stdout
    assert took < baseline + MARGIN, f"the process took {took:.2f} s to exit after a 300 ms deadline (start-up {baseline:.2f} s)"


async def test_cli_leaves_no_postgres_query_running_after_its_deadline(tmp_path, pg_schema):
    name = f"slow{uuid.uuid4().hex[:8]}"
    config = _cli_config(tmp_path, pg_schema.dsn, PG_BILLING_RECORD, billing_name=name)
    await asyncio.to_thread(run, "lookup", "+34912345678", "--config", config)  # warm
    baseline = await asyncio.to_thread(startup_seconds, config)
    took, result = await asyncio.to_thread(timed, "lookup", "+34912345678", "--config", config)
    assert result.returncode == 0, result.stderr
    assert f"source {name}: timeout" in result.stdout
    assert took < baseline + MARGIN, f"the process took {took:.2f} s to exit after a 300 ms deadline (start-up {baseline:.2f} s)"
    assert await running_sleeps(f"screenpop-{name}") == 0


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
async def test_service_lookups_past_their_deadline_do_not_pile_up_queries(tmp_path, pg_schema, engine):
    """Five callers at once on a source that hangs: after the deadline plus
    the late window, none of their five queries is still running."""
    sales, _ = sqlite_world(tmp_path)
    name = f"slow{uuid.uuid4().hex[:8]}"
    if engine == "sqlite":
        source = SourceSettings(name=name, kind="sql", dsn=sqlite_dsn(sales), phones_query=SALES_PHONES, record_query=SLOW_SQLITE_RECORD)
    else:
        source = SourceSettings(name=name, kind="sql", dsn=pg_schema.dsn, phones_query=BILLING_PHONES, record_query=PG_BILLING_RECORD)
    settings = Settings(lookup=LookupSettings(default_region="ES", deadline_ms=100, late_ms=300), sources=[source],
                        storage=StorageSettings(dsn=f"sqlite+aiosqlite:///{tmp_path}/interactions.sqlite3"))
    runtime = await build_lookup(settings)
    await runtime.start()
    late_cards = []

    async def on_late(card):
        late_cards.append(card)

    try:
        if engine == "sqlite":
            numbers = ["912345678", "+34955123456", "933111222", "+34699999999", "910000001"]
            running = lambda: _async(runtime.sources[0]._sqlite.running)  # noqa: E731
        else:
            numbers = ["912345678", "+34955123456", "699999999"] * 2
            running = lambda: running_sleeps(f"screenpop-{name}")  # noqa: E731
        cards = await asyncio.gather(*(runtime.service.lookup(n, on_late=on_late, use_cache=False) for n in numbers))
        assert all(card.sources[name].status == "pending" for card in cards)
        assert await running() > 0  # they did start
        await asyncio.sleep(0.1 + 0.3)  # deadline + late window
        assert await wait_for_zero(running, 0.6) == 0
        assert len(late_cards) == len(numbers) and all(c.sources[name].status == "timeout" for c in late_cards)
    finally:
        started = time.monotonic()
        await runtime.close()
        assert time.monotonic() - started < 1.5
