"""The phone index: normalized number -> record keys, per source.

Built from every source's ``(record_key, phone_as_stored)`` rows: one record
may have several phones, one phone may belong to several records (two people
sharing a switchboard), and the same number may live in several sources.
Phones go through :func:`customer_lookup.phones.normalize`; empty and
withheld values are skipped and counted, short and invalid ones kept under
their flagged key so that they still match each other.

Two implementations behind :class:`PhoneIndex`: in-process dicts for the
embedded demo (here), Redis for several nodes sharing one index
(:mod:`customer_lookup.index_redis`).  Both rebuild a
source off to the side and swap it in at once: a lookup never sees a
half-built source.  A record updated while its source is being rebuilt is
updated in both the live and the coming index, so the update survives the swap.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import AsyncIterable, AsyncIterator, Callable, Iterable, Protocol

from customer_lookup.phones import normalize

log = logging.getLogger(__name__)

BATCH = 2000  # rows per normalization batch and per Redis script call
SLICE = 0.002  # seconds of normalizing between two turns of the event loop
Rows = AsyncIterable[tuple[str, str]] | Iterable[tuple[str, str]]
Progress = Callable[[int], None]


@dataclass(slots=True)
class IndexBuildStats:
    """One build; ``rows == indexed + flagged + skipped``.  ``indexed`` counts
    rows under a valid E.164 key, ``flagged`` rows kept under a short/invalid
    key, ``skipped`` rows with nothing to index (empty, withheld, no record key)."""

    source: str
    rows: int = 0
    indexed: int = 0
    flagged: int = 0
    skipped: int = 0
    seconds: float = 0.0


class PhoneIndex(Protocol):
    async def lookup(self, key: str) -> dict[str, list[str]]: ...

    async def lookup_many(self, keys: list[str]) -> dict[str, dict[str, list[str]]]: ...

    async def replace_source(
        self, source: str, rows: Rows, *, default_region: str, progress: Progress | None = None, paced: bool = False
    ) -> IndexBuildStats: ...

    async def update_record(self, source: str, record_key: str, phones: list[str], *, default_region: str) -> None: ...

    async def remove_record(self, source: str, record_key: str) -> None: ...

    async def stats(self) -> dict: ...


class BuildInProgress(RuntimeError):
    """Another node is rebuilding this source right now."""


def phone_keys(phones: Iterable[str | None], default_region: str) -> list[str]:
    """The distinct index keys of one record's phones, in first-seen order."""
    keys = (normalize(phone, default_region).key for phone in phones)
    return list(dict.fromkeys(key for key in keys if key is not None))


async def normalized_batches(
    rows: Rows, default_region: str, stats: IndexBuildStats, progress: Progress | None, size: int = BATCH,
    *, paced: bool = False,
) -> AsyncIterator[list[tuple[str, str]]]:
    """``(record_key, index_key)`` pairs in batches, counting into ``stats``.

    Yields to the event loop every :data:`SLICE` of work, whatever the rows
    come from: a number the normalizer has not seen costs ~20 us, and a SQL
    source hands over a fetch's rows with no await between them, so the
    periodic rebuild of 50,000 phones held the loop 275 ms at a stretch and
    delayed pops by up to 1.6 s in the soak (bench/RESULTS.md).

    ``paced``: rest as long as it worked, for a rebuild while pops are
    served.  Yielding alone is not enough there: the lookups' source reads
    run on threads, and a loop thread busy normalizing keeps them waiting
    for the GIL (lookups during a rebuild: p50 30 ms instead of 3, some past
    their deadline).  A rebuild is background work: it may take twice as
    long, the pops may not."""
    batch: list[tuple[str, str]] = []
    turn = time.perf_counter() + SLICE

    def add(row) -> None:
        record, phone = row
        stats.rows += 1
        phone = normalize(phone, default_region, cached=False)
        if record is None or phone.key is None:
            stats.skipped += 1
            return
        if phone.valid:
            stats.indexed += 1
        else:
            stats.flagged += 1
        batch.append((str(record), phone.key))

    async def each(rows: Rows):
        if isinstance(rows, AsyncIterable):
            async for row in rows:
                yield row
        else:
            for row in rows:
                yield row

    async for row in each(rows):
        add(row)
        if len(batch) >= size:
            yield batch
            batch = []
            if progress:
                progress(stats.rows)
        if stats.rows % 32 == 0 and time.perf_counter() >= turn:
            await asyncio.sleep(SLICE if paced else 0)
            turn = time.perf_counter() + SLICE
    if batch:
        yield batch
    if progress:
        progress(stats.rows)


# --------------------------------------------------------------------------- memory


Members = str | set[str]  # one member as a bare string, several as a set


def members(value: Members | None) -> Iterable[str]:
    """The strings held under one name of a :class:`_Table` side."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else value


def _put(side: dict[str, Members], name: str, item: str) -> bool:
    """Add ``item`` under ``name``; False when it was there already."""
    current = side.get(name)
    if current is None:
        side[name] = item
    elif isinstance(current, str):
        if current == item:
            return False
        side[name] = {current, item}
    elif item in current:
        return False
    else:
        current.add(item)
    return True


def _drop(side: dict[str, Members], name: str, item: str) -> bool:
    """Remove ``item`` from under ``name``; False when it was not there."""
    current = side.get(name)
    if current is None:
        return False
    if isinstance(current, str):
        if current != item:
            return False
        del side[name]
    elif item not in current:
        return False
    else:
        current.remove(item)
        if len(current) == 1:
            side[name] = next(iter(current))
    return True


def _held(side: dict[str, Members], name: str, item: str) -> str:
    """The string equal to ``item`` that ``side`` holds alone under ``name``,
    else ``item`` itself (a set's members are not looked through: a
    switchboard shared by thousands would make that quadratic)."""
    current = side.get(name)
    return current if current == item else item


@dataclass(slots=True)
class _Table:
    """One source's index: both directions, so that one record can be replaced.

    Nearly every number belongs to one record and nearly every record has
    one number, so a lone member is kept as the bare string: a set costs
    216 bytes even for one string, two per phone, which made the sets 60 %
    of the index and of every rebuild's high-water mark (bench/RESULTS.md,
    soak)."""

    by_key: dict[str, Members] = field(default_factory=dict)
    by_record: dict[str, Members] = field(default_factory=dict)
    entries: int = 0
    built_at: float | None = None
    build: IndexBuildStats | None = None
    region: str | None = None  # the region its stored numbers were read in

    def add(self, record: str, key: str) -> None:
        if _put(self.by_key, key, record):
            self.entries += 1
        _put(self.by_record, record, key)

    def add_like(self, previous: _Table, record: str, key: str) -> None:
        """:meth:`add`, with the strings of ``previous`` where it held the
        same pair: a rebuild then makes new dicts but keeps the old index's
        strings, instead of a second copy of every phone and record made
        among the traffic's objects and the first copy freed after it,
        which left the allocators' free space in pieces (+6 MiB per rebuild
        in the soak, bench/RESULTS.md)."""
        self.add(_held(previous.by_key, key, record), _held(previous.by_record, record, key))

    def replace(self, record: str, keys: list[str]) -> None:
        for key in members(self.by_record.pop(record, None)):
            if _drop(self.by_key, key, record):
                self.entries -= 1
        for key in keys:
            self.add(record, key)


class MemoryPhoneIndex:
    """In-process index for the embedded demo (one process serves everything)."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self._tables: dict[str, _Table] = {}
        self._building: dict[str, _Table] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._clock = clock

    async def lookup(self, key: str) -> dict[str, list[str]]:
        if not key:
            return {}
        found = {}
        for source, table in self._tables.items():
            records = table.by_key.get(key)
            if records:
                found[source] = sorted(members(records))
        return found

    async def lookup_many(self, keys: list[str]) -> dict[str, dict[str, list[str]]]:
        """Several keys at once (the caller's key and its possible ones): key -> source -> records."""
        found = {}
        for key in keys:
            refs = await self.lookup(key)
            if refs:
                found[key] = refs
        return found

    async def replace_source(self, source: str, rows: Rows, *, default_region: str, progress: Progress | None = None,
                             paced: bool = False) -> IndexBuildStats:
        async with self._locks.setdefault(source, asyncio.Lock()):
            started = time.perf_counter()
            stats = IndexBuildStats(source)
            table = self._building[source] = _Table()
            previous = self._tables.get(source, _Table())
            try:
                async for batch in normalized_batches(rows, default_region, stats, progress, paced=paced):
                    for record, key in batch:
                        table.add_like(previous, record, key)
            finally:
                del self._building[source]
            stats.seconds = time.perf_counter() - started
            table.built_at, table.build, table.region = self._clock(), stats, default_region.upper()
            self._tables[source] = table  # the swap: one assignment, never half visible
            # Out of the cyclic GC's walks: the sets of shared numbers and the
            # dicts holding them (with a set for every number, as before the
            # bare-string members, a full pass took 1.5 s at a 1M-customer
            # index, a stall of every pop).  They hold only strings (no
            # cycles), so reference counting still frees a replaced index.
            gc.freeze()
            return stats

    async def update_record(self, source: str, record_key: str, phones: list[str], *, default_region: str) -> None:
        keys = phone_keys(phones, default_region)
        for table in self._live_tables(source, create=bool(keys)):
            table.replace(str(record_key), keys)

    async def remove_record(self, source: str, record_key: str) -> None:
        for table in self._live_tables(source, create=False):
            table.replace(str(record_key), [])

    def export(self, source: str) -> tuple[_Table, list[tuple[str, Members]]] | None:
        """The built table of ``source`` and a copy of its (key, records)
        items, taken on the loop so a worker thread can write them out
        (:mod:`customer_lookup.index_file`) while lookups go on."""
        table = self._tables.get(source)
        if table is None or table.built_at is None:
            return None
        return table, list(table.by_key.items())

    def built_sources(self) -> list[str]:
        return [name for name, table in self._tables.items() if table.built_at is not None]

    async def stats(self) -> dict:
        sources = {
            name: {
                "numbers": len(table.by_key),
                "entries": table.entries,
                "built_at": table.built_at,
                "build": asdict(table.build) if table.build else None,
                "region": table.region,
            }
            for name, table in sorted(self._tables.items())
        }
        return totals(sources)

    def _live_tables(self, source: str, create: bool) -> list[_Table]:
        if source not in self._tables and create:
            self._tables[source] = _Table()
        return [t for t in (self._tables.get(source), self._building.get(source)) if t is not None]


def totals(sources: dict[str, dict]) -> dict:
    """Totals are sums over sources: a number known to two sources counts twice."""
    return {
        "numbers": sum(s["numbers"] for s in sources.values()),
        "entries": sum(s["entries"] for s in sources.values()),
        "sources": sources,
    }
