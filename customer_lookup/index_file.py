"""The in-process phone index, saved to a SQLite file beside the service's data.

Without Redis the phone index lives in the process that built it, so
another process saw none: ``screenpop lookup`` rebuilt the whole index for
one number (2.2 s on the demo's 20,000 customers) and ``screenpop index
stats`` reported 0 numbers right after a rebuild.  Asking the sources for
one number instead cannot be made right: ``phones_query`` is any SELECT and
its phones are stored in any format, so finding a number means normalizing
every stored phone, which is the rebuild.

So whoever builds the in-process index saves it here (the service after
every build, ``index rebuild`` after its own), and one-shot commands read
the saved copy: a lookup is one indexed query.  A saved source is used only
when it was built from the same source definition (kind, DSN or URL, phones
query, region) and is younger than ``index_refresh_seconds`` (the age the
running service lets its own copy reach), so the CLI answers from exactly
what the agents' pops are answered from; otherwise the CLI builds the index
and saves it for the next call.  Incremental updates between builds (a
record healed away on a miss) are not saved: the next build carries them.

Written to a temporary file and renamed over the old one: a reader sees the
previous build or the new one, never half of one.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import quote

log = logging.getLogger(__name__)

FILE_NAME = "phone-index.sqlite3"
VERSION = "1"


def index_file_for(settings) -> Path | None:
    """Where the in-process index of this configuration is saved: beside the
    interaction log's SQLite file (``var/demo/phone-index.sqlite3`` for the
    demo).  None when the log is not a SQLite file (a PostgreSQL deployment
    shares its index through Redis)."""
    from adapters.engine import sqlite_file

    try:
        path = sqlite_file(settings.storage.dsn)
    except Exception:
        return None
    return None if path is None else Path(path).with_name(FILE_NAME)


def fingerprint(source, region: str) -> str:
    """What the saved index of a source was built from; a change means rebuild."""
    what = [source.kind, source.dsn, source.url, source.phones_query, region.upper()]
    return hashlib.sha256(json.dumps(what).encode()).hexdigest()[:24]


@dataclass(slots=True)
class SavedSource:
    name: str
    fingerprint: str
    region: str
    built_at: float
    numbers: int
    entries: int
    build: dict[str, Any] | None


@dataclass(slots=True)
class SourceExport:
    """One source's index as the memory index hands it over for saving."""

    name: str
    fingerprint: str
    region: str
    built_at: float
    numbers: int
    entries: int
    build: dict[str, Any] | None
    pairs: Iterable[tuple[str, str]]  # (index key, record key)


class IndexFile:
    """Read and write one saved index.  Synchronous: reads are one indexed
    query (well under a millisecond); :meth:`save` runs on a worker thread."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def sources(self) -> dict[str, SavedSource]:
        """The saved sources ({} when there is no readable saved index)."""
        conn = self._open()
        if conn is None:
            return {}
        try:
            rows = conn.execute("SELECT source, fingerprint, region, built_at, numbers, entries, build FROM sources").fetchall()
        except sqlite3.Error as exc:
            log.warning("saved phone index unreadable path=%s reason=%r", self.path, str(exc))
            return {}
        finally:
            conn.close()
        return {r[0]: SavedSource(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]) if r[6] else None) for r in rows}

    def lookup_many(self, keys: list[str], sources: Iterable[str]) -> dict[str, dict[str, list[str]]]:
        """index key -> source -> record keys, for ``keys``, in ``sources`` only."""
        wanted = set(sources)
        found: dict[str, dict[str, list[str]]] = {}
        conn = self._open()
        if conn is None or not keys:
            return found
        try:
            marks = ",".join("?" * len(keys))
            for key, source, record in conn.execute(
                f"SELECT key, source, record FROM phones WHERE key IN ({marks}) ORDER BY key, source, record", keys
            ):
                if source in wanted:
                    found.setdefault(key, {}).setdefault(source, []).append(record)
        finally:
            conn.close()
        return found

    def save(self, exports: list[SourceExport], keep: Iterable[str] = ()) -> None:
        """Write ``exports`` and, copied from the current file, the sources
        named in ``keep``; then rename the new file over the old one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        conn = sqlite3.connect(tmp)
        try:
            conn.executescript(
                "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"
                "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT);"
                "CREATE TABLE sources (source TEXT PRIMARY KEY, fingerprint TEXT, region TEXT, built_at REAL,"
                " numbers INTEGER, entries INTEGER, build TEXT);"
                "CREATE TABLE phones (key TEXT, source TEXT, record TEXT, PRIMARY KEY (key, source, record)) WITHOUT ROWID;"
            )
            conn.execute("INSERT INTO meta VALUES ('version', ?)", (VERSION,))
            kept = [name for name in keep if name not in {e.name for e in exports}]
            if kept and self.path.exists():
                conn.execute("ATTACH DATABASE ? AS old", (str(self.path),))
                for name in kept:
                    conn.execute("INSERT INTO sources SELECT * FROM old.sources WHERE source = ?", (name,))
                    conn.execute("INSERT INTO phones SELECT key, source, record FROM old.phones WHERE source = ?", (name,))
                conn.commit()
                conn.execute("DETACH DATABASE old")
            for e in exports:
                conn.execute("INSERT INTO sources VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (e.name, e.fingerprint, e.region, e.built_at, e.numbers, e.entries, json.dumps(e.build)))
                conn.executemany("INSERT OR IGNORE INTO phones VALUES (?, ?, ?)", _rows(e.name, e.pairs))
            conn.commit()
        except BaseException:
            conn.close()
            tmp.unlink(missing_ok=True)
            raise
        conn.close()
        os.replace(tmp, self.path)

    def _open(self) -> sqlite3.Connection | None:
        if not self.path.exists():
            return None
        try:
            conn = sqlite3.connect(f"file:{quote(str(self.path.resolve()))}?mode=ro", uri=True, timeout=2.0)
            version = conn.execute("SELECT value FROM meta WHERE name = 'version'").fetchone()
        except sqlite3.Error as exc:
            log.warning("saved phone index unreadable path=%s reason=%r", self.path, str(exc))
            return None
        if version is None or version[0] != VERSION:
            conn.close()
            return None
        return conn


def _rows(source: str, pairs: Iterable[tuple[str, str]]) -> Iterator[tuple[str, str, str]]:
    for key, record in pairs:
        yield key, source, record


def export_pairs(items: list[tuple[str, Any]]) -> Iterator[tuple[str, str]]:
    """(index key, record key) pairs from a memory table's items (a lone
    record is a bare string there, several a set)."""
    from customer_lookup.index import members

    for key, records in items:
        for record in list(members(records)):
            yield key, record


class SavedPhoneIndex:
    """A saved index read as a :class:`customer_lookup.index.PhoneIndex`, for
    one-shot commands.  Read-only: a record healed away on a miss stays until
    the next build saves the index again."""

    def __init__(self, file: IndexFile, sources: Iterable[str]):
        self.file = file
        self._sources = list(sources)

    async def lookup(self, key: str) -> dict[str, list[str]]:
        return (await self.lookup_many([key])).get(key, {}) if key else {}

    async def lookup_many(self, keys: list[str]) -> dict[str, dict[str, list[str]]]:
        return self.file.lookup_many([k for k in keys if k], self._sources)

    async def remove_record(self, source: str, record_key: str) -> None:
        return None

    async def update_record(self, source: str, record_key: str, phones: list[str], *, default_region: str) -> None:
        return None

    async def stats(self) -> dict:
        from customer_lookup.index import totals

        saved = self.file.sources()
        return totals({
            name: {"numbers": s.numbers, "entries": s.entries, "built_at": s.built_at, "build": s.build, "region": s.region}
            for name, s in sorted(saved.items()) if name in self._sources
        })
