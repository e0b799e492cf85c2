"""Small business databases for the lookup tests: SQLite files and real
PostgreSQL schemas/databases, read through the real adapters."""
from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import asyncpg

from adapters.sql import SqlSource
from tests.conftest import POSTGRES_DSN
from tests.pg import admin, asyncpg_dsn, create_database, drop_database

HOSTILE_NAME = "<script>alert('x')</script> O'Brien; DROP TABLE customers; -- \u202eevil"

# Sales keeps phones in whatever format the salesperson typed.
SALES_ROWS = [
    # id, name, email, phone, mobile, vip, lifetime_value
    (1, "Ana García", "ana@example.com", "+34 912 34 56 78", "600 11 22 33", 1, "1250.40"),
    (2, "Bruno Díaz", "bruno@example.com", "0034955123456", None, 0, "80.00"),
    (3, "Carla Ruiz", "carla@example.com", "(+34) 933.111.222", "0034-611-000-000", 0, "15.00"),
    (4, "Dora Vidal", "dora@shared.example", "910 000 001", None, 0, "0"),  # same switchboard
    (5, "Eloy Vidal", "eloy@shared.example", "+34910000001", None, 0, "0"),  # as Dora
    (6, HOSTILE_NAME, "hostile@example.com", "+34 699 999 999", None, 0, "1"),
    (7, "Reception", "desk@example.com", "12345", None, 0, "0"),  # a short internal number
    (8, "Fay Long", "fay@example.com", "+1 (415) 555-0100 ext. 12", None, 0, "3"),
]
# Billing shares emails with sales: that is how the merge links them.
BILLING_ROWS = [
    ("AC-001", "ana@example.com", "912345678", "-42.10", "EUR"),
    ("AC-002", "bruno@example.com", "+34 955 12 34 56", "0.00", "EUR"),
    ("AC-006", "hostile@example.com", "699999999", "1.00", "EUR"),
]

SALES_PHONES = "SELECT id, phone FROM customers UNION ALL SELECT id, mobile FROM customers WHERE mobile IS NOT NULL"
SALES_RECORD = "SELECT name, email, vip, lifetime_value FROM customers WHERE id = :key"
BILLING_PHONES = "SELECT account_no, phone FROM accounts"
BILLING_RECORD = "SELECT account_no, email, balance, currency FROM accounts WHERE account_no = :key"


def sqlite_world(directory: Path, name: str = "world") -> tuple[Path, Path]:
    """Two SQLite files (sales, billing); returns their paths."""
    sales, billing = directory / f"{name}-sales.sqlite3", directory / f"{name}-billing.sqlite3"
    with sqlite3.connect(sales) as db:
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT, phone TEXT, mobile TEXT, vip INTEGER, lifetime_value TEXT)")
        db.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?)", SALES_ROWS)
    with sqlite3.connect(billing) as db:
        db.execute("CREATE TABLE accounts (account_no TEXT PRIMARY KEY, email TEXT, phone TEXT, balance TEXT, currency TEXT)")
        db.executemany("INSERT INTO accounts VALUES (?, ?, ?, ?, ?)", BILLING_ROWS)
    return sales, billing


def sqlite_dsn(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def sqlite_sources(sales: Path, billing: Path, **options) -> list[SqlSource]:
    return [
        SqlSource("sales", sqlite_dsn(sales), SALES_PHONES, SALES_RECORD, **options),
        SqlSource("billing", sqlite_dsn(billing), BILLING_PHONES, BILLING_RECORD, **options),
    ]


class PgSchema:
    """A uniquely named schema holding the billing table; dropped on ``drop``."""

    def __init__(self) -> None:
        self.name = f"lk_{uuid.uuid4().hex[:10]}"

    @property
    def dsn(self) -> str:
        return f"{POSTGRES_DSN}?search_path={self.name}"

    async def create(self, rows=BILLING_ROWS) -> "PgSchema":
        conn = await admin()
        try:
            await conn.execute(f"CREATE SCHEMA {self.name}")
            await conn.execute(
                f"CREATE TABLE {self.name}.accounts (account_no text PRIMARY KEY, email text, phone text, balance numeric(12,2), currency text, delay float DEFAULT 0)"
            )
            await conn.executemany(f"INSERT INTO {self.name}.accounts VALUES ($1, $2, $3, $4::numeric, $5)", rows)
        finally:
            await conn.close()
        return self

    async def execute(self, sql: str, *args) -> None:
        conn = await admin(server_settings={"search_path": self.name})
        try:
            await conn.execute(sql, *args)
        finally:
            await conn.close()

    async def drop(self) -> None:
        conn = await admin()
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {self.name} CASCADE")
        finally:
            await conn.close()


# A record query that sleeps as long as the row's ``delay`` says (pg_sleep on the server).
PG_BILLING_RECORD = (
    "SELECT account_no, email, balance, currency FROM accounts, LATERAL (SELECT pg_sleep(delay)) AS s WHERE account_no = :key"
)


def pg_billing(schema: PgSchema, name: str = "billing", **options) -> SqlSource:
    return SqlSource(name, schema.dsn, BILLING_PHONES, PG_BILLING_RECORD, **options)


class PgDatabase:
    """A whole database of its own (:func:`tests.pg.create_database`), so a test can make it vanish."""

    def __init__(self) -> None:
        self.dsn = ""

    async def create(self) -> "PgDatabase":
        self.dsn = await create_database("lk")
        conn = await asyncpg.connect(asyncpg_dsn(self.dsn))
        try:
            await conn.execute("CREATE TABLE accounts (account_no text PRIMARY KEY, email text, phone text, balance numeric(12,2), currency text)")
            await conn.executemany("INSERT INTO accounts VALUES ($1, $2, $3, $4::numeric, $5)", BILLING_ROWS)
        finally:
            await conn.close()
        return self

    async def drop(self) -> None:
        """Idempotent: a test drops it to make it vanish, and again when done."""
        await drop_database(self.dsn)
