"""Record reads on a read-only SQLite file, one trip to a worker thread each.

Why not SQLAlchemy on aiosqlite, as for the phone scan: every step of a
fetch through it (checkout, cursor, execute, fetch, close, rollback) is its
own trip to aiosqlite's thread and back through the event loop, five to
eight per record.  Under load each trip waits for the busy loop, so a 1 ms
query took hundreds of milliseconds, missed the lookup's deadline and opened
the breaker.  Here the whole read (open if needed, query, first row) is one
function run on a small thread pool, and the loop is woken once.

A read whose caller stops waiting (the lookup's deadline passed, the
process is closing) is interrupted in SQLite itself
(``sqlite3.Connection.interrupt``): a runaway query would otherwise keep its
worker thread, and the process that wants to exit, for as long as it runs.

Each worker thread keeps its own connection to the file (read-only URI, so
a missing file is an error, never a new empty database).  A connection is
used only while the path is still the file it opened (device and inode): a
file that was replaced or removed is opened anew, or fails plainly.
"""
from __future__ import annotations

import asyncio
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

from adapters.engine import file_identity


class ConnectFailed(Exception):
    """The file could not be opened (missing, unreadable): the source is down,
    not its query."""


PROGRESS_STEPS = 10_000  # SQLite VM instructions between two looks at "abandoned" (well under a millisecond)


class _Read:
    """One read in progress: the connection running it, while it runs."""

    __slots__ = ("conn", "abandoned")

    def __init__(self) -> None:
        self.conn: sqlite3.Connection | None = None
        self.abandoned = False


class SqliteReader:
    def __init__(self, path: str, sql: str, *, name: str = "sqlite", workers: int = 4, busy_timeout: float = 5.0):
        self.path = path
        self.sql = sql
        self.busy_timeout = busy_timeout
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"sqlite-{name}")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[sqlite3.Connection] = []
        self._running: set[_Read] = set()

    async def first_row(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """The query's first row as a mapping of column to value (None: no row).

        Cancelled (the caller's deadline), the read is interrupted in SQLite
        and its thread is free at once."""
        read = _Read()
        future = self._executor.submit(self._read, params, read)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            self._interrupt(read)
            raise

    @property
    def running(self) -> int:
        """Reads executing in SQLite right now (tests, diagnostics)."""
        with self._lock:
            return sum(1 for read in self._running if read.conn is not None)

    async def close(self) -> None:
        """Interrupt reads in progress, wait for their threads, then close
        every thread's connection."""
        with self._lock:
            running = list(self._running)
        for read in running:
            self._interrupt(read)
        await asyncio.get_running_loop().run_in_executor(None, lambda: self._executor.shutdown(wait=True, cancel_futures=True))
        with self._lock:
            conns, self._open = self._open, []
        for conn in conns:
            conn.close()

    # ------------------------------------------------------------ worker side

    def _interrupt(self, read: _Read) -> None:
        """Stop ``read`` in SQLite.  Under the lock the worker takes to leave
        the read, so the interrupt can never land on the next read of the
        same connection."""
        with self._lock:
            read.abandoned = True
            if read.conn is not None:
                read.conn.interrupt()

    def _read(self, params: dict[str, Any], read: _Read) -> dict[str, Any] | None:
        conn = self._connection()
        with self._lock:
            if read.abandoned:
                return None  # nobody waits for it any more
            read.conn = conn
            self._running.add(read)
        cursor = None
        # interrupt() stops only a statement already running: one abandoned
        # between the lines above and execute() would run to its end.  The
        # progress handler sees the flag every few thousand VM steps and
        # stops it then (sqlite3.OperationalError: interrupted).
        conn.set_progress_handler(lambda: 1 if read.abandoned else 0, PROGRESS_STEPS)
        try:
            cursor = conn.execute(self.sql, params)
            row = cursor.fetchone()
            if row is None:
                return None
            return dict(zip([d[0] for d in cursor.description], row))
        finally:
            conn.set_progress_handler(None, 0)
            with self._lock:
                read.conn = None
                self._running.discard(read)
            if cursor is not None:
                cursor.close()

    def _connection(self) -> sqlite3.Connection:
        current = file_identity(self.path)
        held = getattr(self._local, "held", None)
        if held is not None and held[1] != current:
            self._forget(held[0])
            held = self._local.held = None
        if held is None:
            if current is None:
                raise ConnectFailed(f"SQLite file {self.path} does not exist")
            try:
                conn = sqlite3.connect(f"file:{quote(self.path)}?mode=ro", uri=True, timeout=self.busy_timeout,
                                       check_same_thread=False)
            except sqlite3.Error as exc:
                raise ConnectFailed(str(exc)) from exc
            with self._lock:
                self._open.append(conn)
            held = self._local.held = (conn, current)
        return held[0]

    def _forget(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            if conn in self._open:
                self._open.remove(conn)
        conn.close()
