"""A business system reached through its own SQL database, read-only.

Plugs into an existing schema with nothing but a DSN and two queries, so the
company never has to add a view or a column for us:

``phones_query``
    Any SELECT whose first two columns are the record key and a phone number
    as stored (names do not matter; further columns are ignored).  A person
    with two phones is two rows.  Rows whose key or phone is NULL or blank are
    skipped: there is nothing to index.  Read through a server-side cursor in
    chunks, so a million rows never sit in memory at once.
``record_query``
    A SELECT with one bound ``:key`` parameter returning the record.  Only
    the FIRST row is used (order it if it matters): child rows such as
    recent orders belong in an aggregated column.  A column named
    ``<name>_json`` holding JSON text (``json_agg`` on PostgreSQL,
    ``json_group_array`` on SQLite) is parsed and returned as ``<name>``,
    which is how one portable query returns nested lists.  Values are made
    JSON-safe by :mod:`adapters.values` (Decimal -> str, UTC datetimes ->
    ISO ``...Z``).

Keys travel as strings (the phone index stores strings).  On PostgreSQL
through asyncpg, which will not send a string for an integer parameter, the
key is converted to the parameter's type, learnt once by preparing the query;
a key that cannot be that type ("abc" for an integer id) finds no record.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any, AsyncIterator, Callable, Iterable

from adapters.base import SourceError
from adapters.engine import make_engine, sqlite_file
from adapters.sqlite_reader import ConnectFailed, SqliteReader
from adapters.values import jsonable, jsonable_row

log = logging.getLogger(__name__)

CLIENT_GRACE = 1.0  # seconds the client waits past the server's statement_timeout
_NO_KEY = object()  # the key cannot exist in a column of this type
_PG_KEY_TYPES: dict[str, Callable[[str], Any]] = {
    "int2": int,
    "int4": int,
    "int8": int,
    "numeric": Decimal,
    "float4": float,
    "float8": float,
    "uuid": uuid.UUID,
    "date": dt.date.fromisoformat,
}


class SqlSource:
    def __init__(
        self,
        name: str,
        dsn: str,
        phones_query: str,
        record_query: str,
        fields: Iterable[str] = (),
        *,
        record_timeout: float = 5.0,
        phones_timeout: float = 900.0,
        connect_timeout: float = 5.0,
        pool_size: int = 4,
        chunk: int = 1000,  # rows per fetch of the phone scan: each is processed on the loop in one step
    ):
        self.name = name
        self.fields = frozenset(fields)
        self._dsn = dsn
        self._phones_query, self._record_query = phones_query, record_query
        if not _BIND_KEY.search(record_query):
            raise ValueError(f"source {name!r}: record_query needs a :key parameter")
        self._record_timeout = record_timeout
        self._phones_timeout = phones_timeout
        self._chunk = chunk
        self._engine_options = dict(
            read_only=True,
            statement_timeout=record_timeout,
            connect_timeout=connect_timeout,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=record_timeout,
            application_name=f"screenpop-{name}",
        )
        self._made: tuple | None = None  # (engine, reader, phones statement, record statement), made on first use
        self._key_type: Callable[[str], Any] | None = None
        # A SQLite file's records are read in one trip to a worker thread
        # (adapters.sqlite_reader), without SQLAlchemy: a one-shot
        # 'screenpop lookup' then never loads it (0.4 s of its start-up).
        # The phone scan stays on the engine.
        path = sqlite_file(dsn)
        self._sqlite = None if path is None else SqliteReader(
            path, sqlite_named(record_query), name=name, workers=pool_size, busy_timeout=max(record_timeout, 1.0))
        self._detached: set[asyncio.Future] = set()  # fetches whose caller stopped waiting, still finishing
        if self._sqlite is None:
            self._make()  # a bad DSN is refused at once, as before

    @property
    def _engine(self):
        return self._make()[0]

    @property
    def _reader(self):
        return self._make()[1]

    def _make(self) -> tuple:
        if self._made is None:
            from sqlalchemy import text

            engine = make_engine(self._dsn, **self._engine_options)
            # Record reads need no transaction.  On PostgreSQL AUTOCOMMIT saves the
            # BEGIN/ROLLBACK around each fetch; a SQLite source is opened read-only
            # and pysqlite never begins a transaction for a SELECT.
            reader = engine if engine.dialect.name == "sqlite" else engine.execution_options(isolation_level="AUTOCOMMIT")
            self._made = (engine, reader, text(self._phones_query), text(self._record_query))
        return self._made

    @classmethod
    def from_settings(cls, settings, **options: Any) -> "SqlSource":
        return cls(settings.name, settings.dsn, settings.phones_query, settings.record_query, settings.fields, **options)

    @property
    def _where(self) -> str:
        """The DSN with its password hidden, for messages."""
        from sqlalchemy.engine import make_url

        return make_url(self._dsn).render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"SqlSource({self.name!r}, {self._where!r})"

    async def iter_phones(self) -> AsyncIterator[tuple[str, str]]:
        phase = "connect"
        try:
            from sqlalchemy import text

            engine, _reader, phones_sql, _record_sql = self._make()
            async with engine.connect() as conn:
                phase = "phones_query"
                if conn.dialect.name == "postgresql":
                    # The full scan may legitimately outlast the record timeout.
                    await conn.execute(text(f"SET LOCAL statement_timeout = {int(self._phones_timeout * 1000)}"))
                result = await conn.stream(phones_sql, execution_options={"yield_per": self._chunk})
                async for rows in result.partitions(self._chunk):
                    for row in rows:
                        if len(row) < 2:
                            raise SourceError("phones_query must return two columns: record key, phone", source=self.name)
                        key, phone = row[0], row[1]
                        if key is None or phone is None:
                            continue
                        phone = str(jsonable(phone))
                        if phone.strip():
                            yield str(jsonable(key)), phone
        except SourceError:
            raise
        except Exception as exc:
            raise self._error(exc, phase) from exc

    async def fetch(self, key: str) -> dict[str, Any] | None:
        """The record of ``key`` (None: no such record).

        A caller that stops waiting (the lookup's deadline cancels this)
        stops the query at the source, so a slow database never collects
        queries nobody waits for:

        * SQLite: the read is interrupted in SQLite itself
          (:class:`adapters.sqlite_reader.SqliteReader`).
        * PostgreSQL: the connection's ``statement_timeout`` is
          ``record_timeout``, which the lookup sets to the moment it gives up
          on the source (its deadline, plus the time late data is still
          taken in the service), so the server cancels the statement then.
          Meanwhile the query runs on, detached, and its connection goes back
          to the pool whole: cancelling inside the driver's call would lose
          the connection (SQLAlchemy terminates it when the garbage collector
          finds it) and the next fetch would pay a new one."""
        if self._sqlite is not None:
            return await self._fetch_sqlite(key)
        query = asyncio.ensure_future(self._fetch(key))
        try:
            return await asyncio.shield(query)
        except asyncio.CancelledError:
            if not query.done():
                self._detached.add(query)
                query.add_done_callback(self._settle_detached)
            raise

    def _settle_detached(self, query: asyncio.Future) -> None:
        self._detached.discard(query)
        if not query.cancelled():
            query.exception()  # retrieved: nobody waits for it any more

    async def _fetch(self, key: str) -> dict[str, Any] | None:
        phase = "connect"
        try:
            # The server's statement_timeout cuts the query at record_timeout
            # and keeps the connection; this client-side limit, a little
            # later, only covers a server or network that stopped answering.
            async with asyncio.timeout(self._record_timeout + CLIENT_GRACE):
                async with self._reader.connect() as conn:
                    phase = "record_query"
                    param = await self._key_param(conn, key)
                    if param is _NO_KEY:
                        return None
                    result = await conn.execute(self._make()[3], {"key": param})
                    row = result.first()
        except SourceError:
            raise
        except Exception as exc:
            raise self._error(exc, phase) from exc
        return None if row is None else self._record(row._mapping)

    async def _fetch_sqlite(self, key: str) -> dict[str, Any] | None:
        try:
            async with asyncio.timeout(self._record_timeout):
                row = await self._sqlite.first_row({"key": key})
        except ConnectFailed as exc:
            log.debug("source %s failed in connect", self.name, exc_info=exc)
            raise SourceError(f"database unavailable: {exc}", source=self.name) from exc
        except Exception as exc:
            raise self._error(exc, "record_query") from exc
        return None if row is None else self._record(row)

    async def close(self) -> None:
        for query in list(self._detached):
            query.cancel()
        await asyncio.gather(*self._detached, return_exceptions=True)
        if self._sqlite is not None:
            await self._sqlite.close()
        if self._made is not None:
            await self._made[0].dispose()

    # ---------------------------------------------------------------- private

    async def _key_param(self, conn, key: str) -> Any:
        if self._key_type is None:
            self._key_type = await self._learn_key_type(conn)
        try:
            return self._key_type(key)
        except (ValueError, TypeError, InvalidOperation):
            return _NO_KEY

    async def _learn_key_type(self, conn) -> Callable[[str], Any]:
        if conn.dialect.driver != "asyncpg":
            return str  # other drivers send text and let the server cast
        sql = str(self._make()[3].compile(dialect=conn.dialect))
        raw = await conn.get_raw_connection()
        statement = await raw.driver_connection.prepare(sql)
        parameters = statement.get_parameters()
        return _PG_KEY_TYPES.get(parameters[0].name, str) if parameters else str

    def _record(self, mapping) -> dict[str, Any]:
        record = jsonable_row(mapping)
        for column in [c for c in record if c.endswith("_json") and len(c) > 5]:
            value = record.pop(column)
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    raise SourceError(f"column {column} is not valid JSON", source=self.name) from None
            record[column[:-5]] = value
        return record

    def _error(self, exc: BaseException, phase: str) -> SourceError:
        log.debug("source %s failed in %s", self.name, phase, exc_info=exc)
        return SourceError(describe(exc, phase, self._record_timeout), source=self.name)


# SQLAlchemy's text() bind parameter syntax: ':name', not after ':', a word
# character or a backslash ('\:' is a literal colon), not '::' (a cast).
_BIND_KEY = re.compile(r"(?<![:\w\\]):key(?![:\w])")


def sqlite_named(query: str) -> str:
    """``query`` as SQLAlchemy's ``text()`` compiles it for sqlite3's named
    parameters: binds stay ``:name``, an escaped ``\\:`` becomes ``:``."""
    return query.replace("\\:", ":")


_CLASS_PREFIX = re.compile(r"^(<class '[\w.]+'>: )+")


def describe(exc: BaseException, phase: str, timeout: float) -> str:
    """A one-line reason a supervisor can act on, without the traceback.

    ``phase`` is ``connect`` or the query that was running: SQLite reports a
    syntax error and a vanished file with the same exception class, so only
    where it happened tells "the database is down" from "the query is wrong".
    """
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, sa_exc.TimeoutError):
        return f"no free database connection within {timeout:g} s"
    if isinstance(exc, sa_exc.DBAPIError):
        message = _CLASS_PREFIX.sub("", str(exc.orig) or type(exc.orig).__name__)
        message = message.splitlines()[0] if message else type(exc.orig).__name__
        if "statement timeout" in message or "canceling statement" in message:
            return f"{phase} timed out in the database: {message}"
        if phase == "connect" or exc.connection_invalidated:
            return f"database unavailable: {message}"
        return f"{phase} failed: {message}"
    if isinstance(exc, OSError):
        return f"database unavailable: {exc.strerror or exc}"
    prefix = "database unavailable" if phase == "connect" else f"{phase} failed"
    if isinstance(exc, sa_exc.SQLAlchemyError):
        return f"{prefix}: {str(exc).splitlines()[0]}"
    return f"{prefix}: {type(exc).__name__}: {exc}"
