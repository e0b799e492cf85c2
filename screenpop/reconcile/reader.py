"""Reading Asterisk's CEL table (``cel_pgsql``, ``cel_odbc``, FreePBX's
``asteriskcdrdb.cel``) without touching its schema.

The table is named in config; only the columns :class:`telephony.cel.CelRow`
reads are selected, so a center's table may carry more.  ``eventtime`` is
naive UTC (``usegmtime=yes`` in ``cel_pgsql.conf``; the deployment guide says
so).  The engine is the adapters' read-only one: a statement timeout, a read
only transaction on PostgreSQL, a small pool.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from telephony.cel import CelRow

COLUMNS = ("id", "eventtype", "eventtime", "channame", "uniqueid", "linkedid", "cid_num", "cid_name", "appname",
           "appdata", "peer", "extra")


def cel_table(name: str = "cel", schema: str | None = None) -> Table:
    """The columns read, as SQLAlchemy sees them (no DDL is ever issued)."""
    return Table(
        name, MetaData(), Column("id", Integer), Column("eventtype", String), Column("eventtime", DateTime),
        *(Column(c, String) for c in COLUMNS if c not in ("id", "eventtype", "eventtime")), schema=schema,
    )


def naive_utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc).replace(tzinfo=None)


class CelReader:
    def __init__(self, engine: AsyncEngine, table: str = "cel", *, batch: int = 500):
        schema, _, name = table.rpartition(".")
        self.engine = engine
        self.table = cel_table(name, schema or None)
        self.batch = batch

    async def calls_between(self, start: float, end: float) -> list[str]:
        """The linkedids with any row in [start, end] (epoch seconds)."""
        t = self.table
        query = (select(t.c.linkedid).where(t.c.eventtime >= naive_utc(start), t.c.eventtime <= naive_utc(end))
                 .group_by(t.c.linkedid))
        async with self.engine.connect() as conn:
            return [row[0] for row in await conn.execute(query)]

    async def rows_of(self, linkedids: Iterable[str]) -> dict[str, list[CelRow]]:
        """Every row of these calls, grouped by linkedid, in batches."""
        ids = sorted(set(linkedids))
        t = self.table
        out: dict[str, list[CelRow]] = {}
        async with self.engine.connect() as conn:
            for i in range(0, len(ids), self.batch):
                chunk = ids[i:i + self.batch]
                query = select(*(t.c[c] for c in COLUMNS)).where(t.c.linkedid.in_(chunk)).order_by(t.c.eventtime, t.c.id)
                for row in await conn.execute(query):
                    cel = CelRow.from_mapping(row._mapping)
                    out.setdefault(cel.linkedid, []).append(cel)
        return out
