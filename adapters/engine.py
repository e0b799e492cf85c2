"""One place that knows how to open a company database safely.

Both the SQL source (reads) and the demo seed (writes) need the same
driver-specific care, and getting it wrong shows up only in production:

* PostgreSQL through asyncpg: a server-side ``statement_timeout`` so a bad
  plan cannot hold a connection for minutes, a connect timeout (asyncpg's
  default is 60 s), an ``application_name`` so DBAs see who is querying, and
  for sources ``default_transaction_read_only`` so a mistyped query cannot
  write to the company's database.  A ``search_path`` query parameter in the
  DSN (our extension, asyncpg has no URL form for it) selects a schema:
  ``postgresql+asyncpg://u@h/db?search_path=sales``.
* SQLite: sources open the file read-only through a SQLite URI, so a missing
  file is an error instead of a new empty database, and without a pool
  (opening a local file costs well under a millisecond): a pooled connection
  would keep answering from a deleted or replaced file's old inode forever,
  and discarding one from inside the pool leaves aiosqlite's thread to finish
  after the event loop, which an orderly close never does.
* Everything else: the DSN goes to SQLAlchemy unchanged, with a small pool
  and pre-ping.  A DSN without a driver (``postgresql://``, ``sqlite:///``)
  gets the async one.
"""
from __future__ import annotations

import os
import sqlite3
from urllib.parse import quote

from sqlalchemy import event

from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool


def make_engine(
    dsn: str,
    *,
    read_only: bool = True,
    statement_timeout: float | None = None,
    connect_timeout: float = 5.0,
    pool_size: int = 4,
    max_overflow: int = 4,
    pool_timeout: float = 5.0,
    application_name: str = "screenpop",
) -> AsyncEngine:
    url = async_url(dsn)
    backend, driver = url.get_backend_name(), url.get_driver_name()
    kwargs: dict = {"pool_pre_ping": True}
    connect_args: dict = {}
    sqlite_path: str | None = None
    if backend == "sqlite":
        url, sqlite_path = _sqlite_url(url, read_only)
        connect_args["timeout"] = max(pool_timeout, 1.0)  # SQLite's busy wait on a locked file
    elif backend == "postgresql" and driver == "asyncpg":
        query = dict(url.query)
        search_path = query.pop("search_path", None)
        url = url.set(query=query)
        settings = {"application_name": application_name[:63]}
        if statement_timeout:
            settings["statement_timeout"] = str(max(1, int(statement_timeout * 1000)))
        if search_path:
            settings["search_path"] = str(search_path)
        if read_only:
            settings["default_transaction_read_only"] = "on"
        connect_args = {"server_settings": settings, "timeout": connect_timeout}
    if sqlite_path is not None:
        kwargs = {"poolclass": NullPool}
    elif backend != "sqlite":  # in-memory SQLite gets a StaticPool: no sizing
        kwargs.update(pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout, pool_recycle=1800)
    engine = create_async_engine(url, connect_args=connect_args, **kwargs)
    if sqlite_path is not None and read_only:
        _refuse_missing_file(engine, sqlite_path)
    return engine


def _refuse_missing_file(engine: AsyncEngine, path: str) -> None:
    """Say plainly that the file is gone, before aiosqlite tries: its failed
    connect stops its thread without waiting, and that thread then calls
    into an event loop that may already be closed."""

    @event.listens_for(engine.sync_engine, "do_connect")
    def _exists(dialect, record, cargs, cparams):
        if not os.path.exists(path):
            raise sqlite3.OperationalError(f"SQLite file {path} does not exist")


ASYNC_DRIVERS = {"postgresql": "asyncpg", "sqlite": "aiosqlite", "mysql": "aiomysql", "mariadb": "aiomysql"}


def async_url(dsn: str | URL) -> URL:
    """``postgresql://...`` as written in every other tool's config means
    ``postgresql+asyncpg://...`` here (likewise SQLite): a sync driver name
    would only fail later with a less helpful message."""
    url = make_url(dsn)
    if url.drivername in ASYNC_DRIVERS:
        url = url.set(drivername=f"{url.drivername}+{ASYNC_DRIVERS[url.drivername]}")
    elif url.drivername == "postgres":
        url = url.set(drivername="postgresql+asyncpg")
    return url


def _sqlite_url(url: URL, read_only: bool) -> tuple[URL, str | None]:
    """The URL to open and the file it names (None: in memory or a URI we leave alone)."""
    database = url.database or ""
    if not database or database == ":memory:" or "uri" in url.query or database.startswith("file:"):
        return url, None
    path = os.path.abspath(database)
    if not read_only:
        return url.set(database=path), path
    query = dict(url.query)
    query.update(mode="ro", uri="true")
    return url.set(database="file:" + quote(path), query=query), path
