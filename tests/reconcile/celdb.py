"""Asterisk's CEL table for the tests: the real schema (tests/fixtures/cdr/
schema.sql, as cel_pgsql fills it) on PostgreSQL, the same columns on
SQLite; rows from the real CSV exports or from the simulator
(:meth:`CelSink.sink`, as Asterisk's module inserts while calls run)."""
from __future__ import annotations

import asyncio
import csv
import re
from datetime import datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

CDR = Path(__file__).resolve().parents[1] / "fixtures" / "cdr"
INSERT_COLUMNS = ("eventtype", "eventtime", "userdeftype", "cid_name", "cid_num", "cid_ani", "cid_rdnis", "cid_dnid",
                  "exten", "context", "channame", "appname", "appdata", "amaflags", "accountcode", "peeraccount",
                  "uniqueid", "linkedid", "userfield", "peer", "extra")


def cel_ddl(dialect: str) -> str:
    """The ``CREATE TABLE cel`` of schema.sql (SQLite: its id column spelled the SQLite way)."""
    ddl = re.search(r"CREATE TABLE cel \(.*?\);", (CDR / "schema.sql").read_text(), re.S).group(0)
    if dialect == "sqlite":
        ddl = ddl.replace("id SERIAL PRIMARY KEY", "id INTEGER PRIMARY KEY AUTOINCREMENT")
    elif dialect == "mysql":  # FreePBX's asteriskcdrdb.cel: the same columns, MySQL's types
        ddl = ddl.replace("id SERIAL PRIMARY KEY", "id INT AUTO_INCREMENT PRIMARY KEY")
        ddl = ddl.replace("TIMESTAMP WITHOUT TIME ZONE", "DATETIME(6)")
    return ddl


async def create_cel_table(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(cel_ddl(conn.dialect.name)))


async def insert_rows(engine: AsyncEngine, rows: list[dict]) -> None:
    if not rows:
        return
    names = ", ".join(INSERT_COLUMNS)
    values = ", ".join(f":{c}" for c in INSERT_COLUMNS)
    async with engine.begin() as conn:
        await conn.execute(text(f"INSERT INTO cel ({names}) VALUES ({values})"), [{c: r[c] for c in INSERT_COLUMNS} for r in rows])


def csv_rows(name: str) -> list[dict]:
    """The real rows Asterisk wrote (``<scenario>.cel.csv``), typed for an INSERT."""
    with (CDR / f"{name}.cel.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["eventtime"] = datetime.fromisoformat(row["eventtime"])
        row["amaflags"] = int(row["amaflags"])
    return rows


class CelSink:
    """The simulator's rows into the table, in the background, like cel_pgsql."""

    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self.buffer: list[dict] = []
        self.written = 0
        self._task: asyncio.Task | None = None

    def sink(self, rows: list[dict]) -> None:
        self.buffer.extend(rows)

    async def run(self, every: float = 0.05) -> None:
        while True:
            await self.flush()
            await asyncio.sleep(every)

    async def flush(self) -> None:
        rows, self.buffer = self.buffer, []
        await insert_rows(self.engine, rows)
        self.written += len(rows)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()


def sqlite_engine(path: Path) -> AsyncEngine:
    return create_async_engine(f"sqlite+aiosqlite:///{path}")
