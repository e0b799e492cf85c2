"""Bulk writing of demo rows into one database, as fast as its driver allows.

A million customers are some thirteen million rows across the three systems,
so the generic "SQLAlchemy insert with a list of dicts" path (fine for a few
thousand rows) is only the fallback for engines we do not special-case:

* PostgreSQL (asyncpg): binary ``COPY`` through ``copy_records_to_table``.
* SQLite (aiosqlite): one prepared ``INSERT`` run with ``executemany`` on
  the driver's own thread, values converted once to what SQLAlchemy itself
  would have stored (naive UTC ``YYYY-MM-DD HH:MM:SS``, REAL for NUMERIC), so
  SQLAlchemy-based readers and the demo queries see ordinary rows.

Everything happens inside the caller's transaction: an interrupted seed
leaves nothing half-written behind.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from operator import itemgetter
from typing import Any, Callable

from sqlalchemy import Boolean, Date, DateTime, Numeric, Table
from sqlalchemy.ext.asyncio import AsyncConnection


def _sqlite_datetime(v: dt.datetime | None) -> str | None:
    if v is None:
        return None
    if v.tzinfo is not dt.timezone.utc and v.utcoffset():
        v = v.astimezone(dt.timezone.utc)
    return v.isoformat(" ", "seconds")[:19]


def _sqlite_converter(column) -> Callable[[Any], Any] | None:
    kind = column.type
    if isinstance(kind, DateTime):
        return _sqlite_datetime
    if isinstance(kind, Date):
        return lambda v: None if v is None else v.isoformat()
    if isinstance(kind, Numeric):
        return lambda v: None if v is None else float(v) if isinstance(v, Decimal) else v
    if isinstance(kind, Boolean):
        return lambda v: None if v is None else int(v)
    return None


class TableWriter:
    """Appends rows (dicts with every column of the table) to one table of one database."""

    def __init__(self, conn: AsyncConnection, table: Table, schema: str | None = None):
        self.conn = conn
        self.table = table
        self.columns = [c.name for c in table.columns]
        self._values = itemgetter(*self.columns)  # a row dict to a tuple, in C
        self.schema = schema
        self.kind = conn.dialect.name if conn.dialect.driver in ("asyncpg", "aiosqlite") else "generic"
        if self.kind == "sqlite":
            converters = [_sqlite_converter(c) for c in table.columns]
            self._convert = [(i, f) for i, f in enumerate(converters) if f is not None]
            marks = ", ".join("?" * len(self.columns))
            self._sql = f'INSERT INTO "{table.name}" ({", ".join(self.columns)}) VALUES ({marks})'

    def prepare(self, rows: list[dict[str, Any]]) -> list:
        """Rows to what the driver takes (tuples in column order, SQLite
        values as SQLAlchemy would store them); pure CPU, no I/O."""
        values = self._values
        if self.kind == "postgresql":
            return [values(row) for row in rows]
        if self.kind == "sqlite":
            convert = self._convert
            records = []
            for row in rows:
                record = list(values(row))
                for i, f in convert:
                    record[i] = f(record[i])
                records.append(record)
            return records
        return rows

    async def write(self, records: list) -> int:
        """Write what :meth:`prepare` returned."""
        if not records:
            return 0
        if self.kind == "postgresql":
            raw = await self.conn.get_raw_connection()
            await raw.driver_connection.copy_records_to_table(
                self.table.name, records=records, columns=self.columns, schema_name=self.schema)
        elif self.kind == "sqlite":
            raw = await self.conn.get_raw_connection()
            await raw.driver_connection.executemany(self._sql, records)
        else:
            await self.conn.execute(self.table.insert(), records)
        return len(records)
