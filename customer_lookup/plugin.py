"""Wiring: configuration in, a running lookup out.

The service, the CLI and the tests all build the lookup the same way here,
so "works in the tests" means "works in ``serve``".  With ``[bus] redis_url``
(or a Redis client passed in) the phone index, the card cache and pushed
balances live in Redis and every node shares them; without it they live in
this process, which is right for the embedded demo and for one node.

The phone index is rebuilt at start and then every ``index_refresh_seconds``.
On Redis a source another node rebuilt recently is not rebuilt again, and
two nodes never rebuild one source at the same time, so N nodes cost the
company databases one scan per period, not N.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Awaitable, Callable

from customer_lookup.balances import MemoryBalanceStore, PushedBalance, RedisBalanceStore
from customer_lookup.breaker import CircuitBreaker
from customer_lookup.cache import MemoryCardCache, RedisCardCache
from customer_lookup.card import CustomerCard
from customer_lookup.index import IndexBuildStats, MemoryPhoneIndex
from customer_lookup.service import LateCallback, LookupService

log = logging.getLogger(__name__)

History = Callable[[str], Awaitable[list[dict]]]
BuildProgress = Callable[[str, int], None]  # (source, rows read so far)


@dataclass(slots=True)
class BuildOutcome:
    """One source's part of an index rebuild: stats, or why there are none."""

    source: str
    stats: IndexBuildStats | None = None
    error: str | None = None  # the source failed: its previous index stays
    skipped: str | None = None  # not due, or another node is building it


@dataclass(slots=True)
class LookupRuntime:
    settings: Any  # screenpop.config.Settings
    sources: list
    index: Any
    cache: Any
    balances: Any
    service: LookupService
    shared: bool  # state lives in Redis
    regions: dict[str, str] = field(default_factory=dict)  # source -> region its stored numbers are read in
    index_file: Any = None  # customer_lookup.index_file.IndexFile: where the in-process index is saved (None: not saved)
    fingerprints: dict[str, str] = field(default_factory=dict)  # source -> what its saved index must have been built from
    _redis_owned: Any = None
    _refresher: asyncio.Task | None = None
    _build_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    # ------------------------------------------------------------- the calls

    async def lookup(self, caller_number: str | None, *, on_late: LateCallback | None = None) -> CustomerCard:
        """What the orchestrator calls; the runtime can be passed as its ``lookup``."""
        return await self.service.lookup(caller_number, on_late=on_late)

    async def on_balance(self, balance: PushedBalance, notify: Callable[[CustomerCard], Awaitable[Any]] | None = None) -> int:
        """After a billing push was stored: patch the cached cards showing the
        account and hand each to ``notify`` (``Orchestrator.card_changed``)."""
        patched = await self.service.patch_account(balance.account)
        for _key, card in patched:
            if notify is not None:
                await notify(card)
        return len(patched)

    async def invalidate_number(self, number: str | None) -> None:
        """A new interaction (or a changed record) makes the cached card of this number old."""
        await self.service.invalidate_number(number)

    async def update_record(self, source: str, record_key: str, phones: list[str]) -> None:
        """Incremental index update: a record's phones changed (or it is new)."""
        await self.index.update_record(source, record_key, phones, default_region=self.region_of(source))

    def region_of(self, source: str) -> str:
        """The region a source's numbers without a country code are read in:
        its own ``default_region``, else ``[lookup] default_region``."""
        return self.regions.get(source) or self.settings.lookup.default_region

    # ------------------------------------------------------------- the index

    async def rebuild_index(
        self, names: list[str] | None = None, *, progress: BuildProgress | None = None, older_than: float | None = None,
        background: bool = False,
    ) -> list[BuildOutcome]:
        """Rebuild the phone index of the named sources (default: all), all at
        once (in turn with ``background``).  A failing source keeps its previous index and is reported, never
        stopping the others.  ``older_than``: only sources never built or built
        more than that many seconds ago (``math.inf``: only the missing ones).

        ``background``: pops are being served meanwhile, so one source at a
        time, paced (see :func:`customer_lookup.index.normalized_batches`):
        three sources scanned at once kept the lookups' reads waiting on the
        GIL, p99 100 to 160 ms against 6 to 11 ms one at a time, paced."""
        unknown = sorted(set(names or ()) - {s.name for s in self.sources})
        if unknown:
            raise ValueError(f"no source named {', '.join(unknown)}; known: {', '.join(s.name for s in self.sources) or 'none'}")
        chosen = [s for s in self.sources if names is None or s.name in names]
        async with self._build_lock:
            due = await self._due(older_than) if older_than is not None else None
            if background:
                outcomes = [await self._rebuild_one(s, progress, due, paced=True) for s in chosen]
            else:
                outcomes = list(await asyncio.gather(*(self._rebuild_one(s, progress, due) for s in chosen)))
            if any(o.stats is not None for o in outcomes):
                await self.save_index()
            return outcomes

    async def save_index(self) -> bool:
        """Save the in-process index (:mod:`customer_lookup.index_file`) so
        other processes (``screenpop lookup``, ``index stats``) read what this
        one built.  Sources not built here keep their saved copy.  A failure
        is logged, never raised: the index in memory is what serves pops."""
        if self.index_file is None or self.shared:
            return False
        from customer_lookup.index_file import SourceExport, export_pairs

        exports = []
        for name in self.index.built_sources():
            exported = self.index.export(name)
            if exported is None or name not in self.fingerprints:
                continue
            table, items = exported
            exports.append(SourceExport(name, self.fingerprints[name], self.region_of(name), table.built_at,
                                        len(items), table.entries, asdict(table.build) if table.build else None,
                                        export_pairs(items)))
        keep = [s.name for s in self.sources]
        try:
            await asyncio.to_thread(self.index_file.save, exports, keep)
        except Exception as exc:
            log.warning("phone index not saved path=%s reason=%r", self.index_file.path, str(exc))
            return False
        log.info("phone index saved path=%s sources=%s", self.index_file.path, ",".join(e.name for e in exports))
        return True

    async def use_saved_index(self) -> list[BuildOutcome]:
        """For a one-shot command: answer from the index the service saved,
        when every source's saved copy was built from its current definition
        and is younger than ``index_refresh_seconds``; otherwise build the
        index here (and save it for the next call).  Returns the build's
        outcomes ([] when the saved index is used)."""
        if self.shared or self.index_file is None:
            return await self.rebuild_index(older_than=math.inf) if self.shared else await self.rebuild_index()
        from customer_lookup.index_file import SavedPhoneIndex

        usable = await asyncio.to_thread(self.saved_usable)
        if usable == {s.name for s in self.sources}:
            self.index = self.service.index = SavedPhoneIndex(self.index_file, usable)
            return []
        return await self.rebuild_index()

    def saved_usable(self, now: float | None = None) -> set[str]:
        """Sources whose saved index may answer for them now."""
        period = self.settings.lookup.index_refresh_seconds
        max_age = period if period > 0 else math.inf
        now = time.time() if now is None else now
        return {
            name for name, saved in self.index_file.sources().items()
            if self.fingerprints.get(name) == saved.fingerprint and now - saved.built_at < max_age
        }

    async def _rebuild_one(self, source, progress: BuildProgress | None, due: set[str] | None, *, paced: bool = False) -> BuildOutcome:
        from customer_lookup.index_redis import BuildInProgress

        if due is not None and source.name not in due:
            return BuildOutcome(source.name, skipped="built recently")
        report = (lambda rows: progress(source.name, rows)) if progress else None
        try:
            stats = await self.index.replace_source(
                source.name, source.iter_phones(), default_region=self.region_of(source.name), progress=report,
                paced=paced,
            )
        except BuildInProgress as exc:
            log.info("phone index build skipped source=%s reason=%r", source.name, str(exc))
            return BuildOutcome(source.name, skipped="being built by another node")
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
            log.warning("phone index build failed source=%s reason=%r (previous index kept)", source.name, reason)
            return BuildOutcome(source.name, error=reason)
        log.info(
            "phone index built source=%s rows=%d indexed=%d flagged=%d skipped=%d seconds=%.2f",
            source.name, stats.rows, stats.indexed, stats.flagged, stats.skipped, stats.seconds,
        )
        return BuildOutcome(source.name, stats=stats)

    async def _due(self, older_than: float) -> set[str]:
        try:
            built = (await self.index.stats())["sources"]
        except Exception as exc:  # cannot tell: try them all, each fails or succeeds on its own
            log.warning("phone index stats unavailable reason=%r", str(exc))
            built = {}
        now = time.time()
        return {
            s.name for s in self.sources
            if not (built.get(s.name) or {}).get("built_at") or now - built[s.name]["built_at"] >= older_than
            or built[s.name].get("region", self.region_of(s.name)) != self.region_of(s.name)  # read under another region
        }

    # ------------------------------------------------------------- lifecycle

    async def start(self, *, wait: bool = True) -> None:
        """Initial index build (only what is due, when shared), then the
        periodic refresh.  ``wait=False`` serves at once and builds meanwhile:
        until then lookups find nobody, which beats not answering."""
        first = asyncio.ensure_future(self.rebuild_index(older_than=self._period_due(), background=not wait))
        self._refresher = asyncio.create_task(self._refresh_forever(first))
        if wait:
            await asyncio.shield(first)

    async def _refresh_forever(self, first: asyncio.Future) -> None:
        try:
            await first
        except Exception:
            log.exception("initial phone index build failed")
        period = self.settings.lookup.index_refresh_seconds
        # A shared index is looked at more often than it is rebuilt: a Redis
        # restarted without its data has lost it, and whichever node notices
        # first rebuilds what is missing (the others find it built, or being built).
        tick = min(period, self.settings.lookup.index_check_seconds) if self.shared and period > 0 else period
        while tick > 0:
            await asyncio.sleep(tick)
            try:
                await self.rebuild_index(older_than=self._period_due(), background=True)
            except Exception:
                log.exception("periodic phone index build failed")

    def _period_due(self) -> float | None:
        """Shared index: skip what another node rebuilt within this period."""
        if not self.shared:
            return None
        period = self.settings.lookup.index_refresh_seconds
        return period * 0.9 if period > 0 else math.inf

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
        await self.service.close()
        for source in self.sources:
            try:
                await source.close()
            except Exception as exc:
                log.warning("source close failed source=%s reason=%r", source.name, str(exc))
        if self._redis_owned is not None:
            await self._redis_owned.aclose()


# The adapter's own limit falls just after the lookup's: on a tie the
# source's error ("no answer within 0.7 s") could win the race and the card
# would say "error" where the lookup's "timeout" is meant.
GIVE_UP_GRACE = 0.1
_TIMEOUT_OPTION = {"sql": "record_timeout", "http": "timeout"}  # each adapter's name for its per-fetch limit


def give_up_seconds(lookup, source, waits_late: bool) -> float:
    """When the lookup stops waiting for ``source``: its deadline, plus
    ``late_ms`` when late data is still taken in.  A query still running
    then is wasted work on the company's database; the adapter stops it
    there (SQLite interrupt, PostgreSQL statement_timeout, HTTP request
    closed), so a slow source never piles up queries."""
    deadline = (source.deadline_ms or lookup.deadline_ms) / 1000
    return deadline + (lookup.late_ms / 1000 if waits_late else 0.0) + GIVE_UP_GRACE


async def build_lookup(
    settings,
    *,
    redis=None,
    history: History | None = None,
    prefix: str | None = None,
    sources: list | None = None,
    source_options: dict[str, Any] | None = None,
    waits_late: bool = True,
    save_index: bool | str = True,
) -> LookupRuntime:
    """Everything the lookup needs, from ``settings`` (``screenpop.config.Settings``).

    ``redis``: a ``redis.asyncio`` client to share state through; when None
    and ``[bus] redis_url`` is set, one is opened here (and closed by
    ``close()``).  ``history``: async e164 -> earlier calls, newest first.
    ``sources``: ready-made sources instead of ``[[sources]]`` (tests, demo).
    ``waits_late``: the lookup takes in late data (the service, ``late_ms``
    past the deadline); False for a one-shot lookup (the CLI) that gives up
    at the deadline.  Either way each source is told when it is given up on
    (:func:`give_up_seconds`), so its query is stopped there, at the source.
    ``save_index``: without Redis, save the in-process index after each build
    where :func:`customer_lookup.index_file.index_file_for` says (True), at
    this path (a string), or not at all (False).
    Nothing is built until :meth:`LookupRuntime.start`.
    """
    from adapters.base import build_source

    lookup = settings.lookup
    prefix = lookup.redis_prefix if prefix is None else prefix
    owned = None
    if redis is None and settings.bus.redis_url:
        import redis.asyncio as aioredis

        redis = owned = aioredis.from_url(settings.bus.redis_url)
    if sources is None:
        sources = [
            build_source(s, **{_TIMEOUT_OPTION.get(s.kind, "timeout"): give_up_seconds(lookup, s, waits_late), **(source_options or {})})
            for s in settings.sources
        ]
    if redis is not None:
        from customer_lookup.index_redis import RedisPhoneIndex

        # Keys depend on the default region: an index built under another one is another index.
        index = RedisPhoneIndex(redis, prefix=f"{prefix}phones:{lookup.default_region.upper()}:")
        cache = RedisCardCache(redis, prefix=prefix + "cache:", max_age_seconds=lookup.cache_ttl_seconds)
        balances = RedisBalanceStore(redis, key=prefix + "balances")
    else:
        index = MemoryPhoneIndex()
        cache = MemoryCardCache(max_entries=lookup.cache_max_entries, max_age_seconds=lookup.cache_ttl_seconds)
        balances = MemoryBalanceStore()
    regions = {s.name: (s.default_region or lookup.default_region).upper() for s in settings.sources}
    index_file = None
    if redis is None and save_index:
        from customer_lookup.index_file import IndexFile, index_file_for

        path = index_file_for(settings) if save_index is True else save_index
        index_file = IndexFile(path) if path is not None else None
    from customer_lookup.index_file import fingerprint

    fingerprints = {s.name: fingerprint(s, regions[s.name]) for s in settings.sources}
    service = LookupService(
        sources,
        index,
        cache,
        balances,
        default_region=lookup.default_region,
        deadline_ms=lookup.deadline_ms,
        source_deadlines_ms={s.name: s.deadline_ms for s in settings.sources if s.deadline_ms},
        late_ms=lookup.late_ms,
        fresh_seconds=lookup.cache_fresh_seconds,
        history=history,
        source_regions=regions,
        breaker_factory=lambda: CircuitBreaker(failures_to_open=lookup.breaker_failures, cooldown=lookup.breaker_cooldown_seconds),
    )
    return LookupRuntime(settings, sources, index, cache, balances, service, shared=redis is not None, regions=regions,
                         index_file=index_file, fingerprints=fingerprints, _redis_owned=owned)
