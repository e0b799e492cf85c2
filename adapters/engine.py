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
  file is an error instead of a new empty database.  They keep a small pool:
  opening a connection is not the "well under a millisecond" of opening a
  file, it is a new aiosqlite thread, a file open and a close, and at 50
  calls/s (three fetches each) that was most of a cold lookup's CPU.  What a
  pool would otherwise get wrong is a deleted or replaced file (a re-seed
  that writes a new file, an operator's copy): a pooled connection keeps
  reading the old inode forever.  So every connection remembers the file's
  (device, inode) when it opened, and a checkout whose file is gone or is a
  different file now discards it (inside the checkout, awaited, so aiosqlite's
  thread is stopped in order) and opens the file anew, which fails plainly
  when there is none.  A re-seed in place (same file) needs nothing: SQLite
  sees the new rows.  Connections are also recycled every few minutes, so an
  idle pool does not hold a deleted file's disk space for long.  Files opened
  for writing (the seed) are not pooled.
* Everything else: the DSN goes to SQLAlchemy unchanged, with a small pool
  and pre-ping.  A DSN without a driver (``postgresql://``, ``sqlite:///``)
  gets the async one.
"""
from __future__ import annotations

import os
import re
import sqlite3
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:  # SQLAlchemy is imported where an engine is made: a SQLite source's
    # record reads never need it, and 'screenpop lookup' starts 0.4 s sooner without it.
    from sqlalchemy.engine import URL
    from sqlalchemy.ext.asyncio import AsyncEngine


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
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import AsyncAdaptedQueuePool, NullPool

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
    if sqlite_path is not None and read_only:
        # No reset (ROLLBACK) when a connection comes back: nothing is ever
        # written through it, and pysqlite opens no transaction for a SELECT,
        # so it was one more trip through aiosqlite's thread per fetch.  A
        # connection costs a thread and a file handle, no server: the pool is
        # twice the size asked for (a busy event loop makes each fetch hold
        # its connection longer, and waiting for a free one is what delays).
        kwargs = {"poolclass": AsyncAdaptedQueuePool, "pool_size": 2 * pool_size, "max_overflow": 2 * max_overflow,
                  "pool_timeout": pool_timeout, "pool_recycle": SQLITE_RECYCLE_SECONDS, "pool_reset_on_return": None}
    elif sqlite_path is not None:
        kwargs = {"poolclass": NullPool}  # a writer (the seed): one connection, closed when done
    elif backend != "sqlite":  # in-memory SQLite gets a StaticPool: no sizing
        kwargs.update(pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout, pool_recycle=1800)
    engine = create_async_engine(url, connect_args=connect_args, **kwargs)
    if sqlite_path is not None and read_only:
        _refuse_missing_file(engine, sqlite_path)
        _same_file_on_checkout(engine, sqlite_path)
    return engine


SQLITE_RECYCLE_SECONDS = 300.0
_FILE_ID = "screenpop_sqlite_file"  # key in a pooled connection's record: (st_dev, st_ino) when it opened


def file_identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of ``path``, None when there is no such file."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _same_file_on_checkout(engine: AsyncEngine, path: str) -> None:
    """A pooled connection is used only while its file is still the one at
    ``path``; otherwise the pool discards it and opens the path again."""
    from sqlalchemy import event
    from sqlalchemy.exc import DisconnectionError

    @event.listens_for(engine.sync_engine, "connect")
    def _remember(dbapi_connection, record):
        record.info[_FILE_ID] = file_identity(path)

    @event.listens_for(engine.sync_engine, "checkout")
    def _check(dbapi_connection, record, proxy):
        opened = record.info.get(_FILE_ID)
        if opened is None or file_identity(path) != opened:
            raise DisconnectionError(f"SQLite file {path} was removed or replaced")


def _refuse_missing_file(engine: AsyncEngine, path: str) -> None:
    """Say plainly that the file is gone, before aiosqlite tries: its failed
    connect stops its thread without waiting, and that thread then calls
    into an event loop that may already be closed."""
    from sqlalchemy import event

    @event.listens_for(engine.sync_engine, "do_connect")
    def _exists(dialect, record, cargs, cparams):
        if not os.path.exists(path):
            raise sqlite3.OperationalError(f"SQLite file {path} does not exist")


ASYNC_DRIVERS = {"postgresql": "asyncpg", "sqlite": "aiosqlite", "mysql": "aiomysql", "mariadb": "aiomysql"}


def async_url(dsn: str | URL) -> URL:
    """``postgresql://...`` as written in every other tool's config means
    ``postgresql+asyncpg://...`` here (likewise SQLite): a sync driver name
    would only fail later with a less helpful message."""
    from sqlalchemy.engine import make_url

    url = make_url(dsn)
    if url.drivername in ASYNC_DRIVERS:
        url = url.set(drivername=f"{url.drivername}+{ASYNC_DRIVERS[url.drivername]}")
    elif url.drivername == "postgres":
        url = url.set(drivername="postgresql+asyncpg")
    return url


def sqlite_file(dsn: str | URL) -> str | None:
    """The absolute path of the SQLite file a DSN names (None: not a SQLite
    file, e.g. in memory, a URI we leave alone, or another database)."""
    if isinstance(dsn, str):
        plain = _PLAIN_SQLITE_FILE.match(dsn)
        if plain is not None:  # the common case, read without loading SQLAlchemy
            database = plain.group("database")
            return None if database == ":memory:" or database.startswith("file:") else os.path.abspath(database)
    url = async_url(dsn)
    if url.get_backend_name() != "sqlite":
        return None
    return _sqlite_url(url, read_only=False)[1]


# 'sqlite:///rel/path' or 'sqlite+aiosqlite:////abs/path': no host, no query, nothing escaped.
_PLAIN_SQLITE_FILE = re.compile(r"^sqlite(?:\+\w+)?:///(?P<database>[^?%#]+)$")


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
