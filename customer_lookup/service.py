"""Lookup: one caller number in, one customer card out, in milliseconds.

Normalize once, try the cache, read the phone index, then ask every source
that knows the number at the same time, each under its own deadline.  What
has not answered by then is marked on the card (``pending`` while it may
still arrive, ``timeout`` or ``error`` when it will not) and never holds the
card back; when late data does arrive, ``on_late`` receives the completed
card (the screen pop pushes it as a ``card`` update).  A source that keeps
failing is skipped for a while (circuit breaker).

Cards are cached per number.  A cached card is served at once; when it is
older than ``fresh_seconds``, or has a gap, it is refreshed in the
background and the refreshed card goes to ``on_late`` too, so a repeat
caller never waits on a slow system and still gets the newest data.  A gap
is retried at most every ``gap_retry_seconds`` per card, and only while one
of the missing sources may be asked (its breaker is not open): a ring-all
queue looks the same card up once per ringing agent, and refetching a card
whose source is known to be failing on every hit kept the other sources busy
and the breaker open under load.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Protocol

from customer_lookup.balances import apply_balance
from customer_lookup.breaker import CircuitBreaker
from customer_lookup.card import (
    ERROR,
    KNOWN,
    MULTIPLE,
    NO_MATCH,
    OK,
    PENDING,
    SKIPPED,
    TIMEOUT,
    UNKNOWN,
    WITHHELD,
    CustomerCard,
    SourceStatus,
)
from customer_lookup.merge import SourceRecord, merge
from customer_lookup.phones import normalize, possible_keys

log = logging.getLogger(__name__)

LateCallback = Callable[[CustomerCard], Awaitable[None]]
MAX_LATE_HISTORY = 16  # history queries past the deadline left to finish; more are cancelled


class Source(Protocol):
    name: str

    async def fetch(self, key: str) -> dict[str, Any] | None: ...


@dataclass(slots=True)
class _Fetch:
    """One source's part of one lookup."""

    source: str
    task: asyncio.Task
    started: float


class LookupService:
    def __init__(
        self,
        sources: list[Source],
        index,
        cache,
        balances,
        *,
        default_region: str = "ES",
        deadline_ms: int = 150,
        source_deadlines_ms: dict[str, int] | None = None,
        late_ms: int = 3000,
        fresh_seconds: float = 60.0,
        gap_retry_seconds: float = 10.0,
        history: Callable[[str], Awaitable[list[dict]]] | None = None,
        breaker_factory: Callable[[], CircuitBreaker] = CircuitBreaker,
        index_heals: bool = True,
        source_regions: dict[str, str] | None = None,
    ):
        self.sources = {s.name: s for s in sources}
        self.index = index
        self.cache = cache
        self.balances = balances
        self.default_region = default_region
        self.deadline = deadline_ms / 1000
        self.source_deadlines = {k: v / 1000 for k, v in (source_deadlines_ms or {}).items() if v}
        self.late = late_ms / 1000
        self.fresh_seconds = fresh_seconds
        self.gap_retry_seconds = gap_retry_seconds
        self.history = history
        self.breakers = {name: breaker_factory() for name in self.sources}
        self.index_heals = index_heals
        # The region each source's stored numbers were read in (its own
        # default_region, else the lookup's): where a caller's possible keys are looked for.
        self.source_regions = {name: (source_regions or {}).get(name, default_region).upper() for name in self.sources}
        self._refreshing: dict[str, tuple[asyncio.Task, list[LateCallback]]] = {}
        self._background: set[asyncio.Task] = set()
        self._late_history: set[asyncio.Future] = set()

    # ----------------------------------------------------------------- public

    async def lookup(self, caller_number: str | None, *, on_late: LateCallback | None = None, use_cache: bool = True) -> CustomerCard:
        phone = normalize(caller_number, self.default_region)
        if phone.key is None:
            # Nothing to look up.  Withheld (or blank) is the caller's choice;
            # anything else is junk the PBX sent: an unknown caller.
            status = WITHHELD if phone.kind in ("withheld", "empty") else UNKNOWN
            return self._card(status, caller_number, phone, [], {})
        if use_cache:
            cached = await self._cached(phone.key, caller_number, on_late)
            if cached is not None:
                return cached
        return await self._lookup(caller_number, phone, on_late)

    async def invalidate_number(self, number: str | None) -> None:
        """Forget the cached card of a number (as received or E.164): a new
        interaction changed its history, or a record behind it changed."""
        key = normalize(number, self.default_region).key
        if key is not None:
            try:
                await self.cache.invalidate(key)
            except Exception as exc:
                log.warning("card cache unavailable op=invalidate reason=%s", _reason(exc))

    async def patch_account(self, account: str) -> list[tuple[str, CustomerCard]]:
        """Lay a newly pushed balance over the cached cards that show it.

        Patched rather than dropped: the next pop of that number is still
        instant, and the caller can push the patched cards to open pops
        (``Orchestrator.card_changed``)."""
        pushed = (await self.balances.get_many([account])).get(account)
        patched: list[tuple[str, CustomerCard]] = []
        if pushed is None:
            return patched
        for key in await self.cache.keys_for_account(account):
            entry = await self.cache.get(key)
            if entry is None:
                continue
            for person in entry.card.persons:
                if person.billing and str(person.billing.get("account")) == account:
                    person.billing = apply_balance(person.billing, pushed)
            await self.cache.put(key, entry.card)
            patched.append((key, entry.card))
        return patched

    async def close(self) -> None:
        tasks = list(self._background) + list(self._late_history) + [task for task, _ in self._refreshing.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---------------------------------------------------------------- private

    async def _cached(self, key: str, caller_number, on_late: LateCallback | None) -> CustomerCard | None:
        try:
            entry = await self.cache.get(key)
        except Exception as exc:  # a cache outage degrades to a cold lookup
            log.warning("card cache unavailable op=get reason=%s", _reason(exc))
            return None
        if entry is None:
            return None
        card = entry.card
        card.cached = True
        card.caller_number = caller_number
        age = entry.age(time.time())
        if age > self.fresh_seconds or (card.missing_sources and self._gap_worth_retrying(card, age)):
            running = self._refreshing.get(key)
            if running is None:
                task = asyncio.create_task(self._refresh(key, card))
                running = self._refreshing[key] = (task, [])
                task.add_done_callback(lambda _t, k=key: self._refreshing.pop(k, None))
            if on_late is not None:
                running[1].append(on_late)
        return card

    def _gap_worth_retrying(self, card: CustomerCard, age: float) -> bool:
        """Refetch a card with a gap only once it has been cached for
        ``gap_retry_seconds`` (each refetch stores it anew, so that is also
        the time since the last try) and while a missing source's breaker is
        not open (a fetch now would only be skipped again)."""
        if age < self.gap_retry_seconds:
            return False
        return any(self.breakers[name].state != "open" for name in card.missing_sources if name in self.breakers)

    async def _refresh(self, key: str, served: CustomerCard) -> None:
        """Look the number up again, wait for late sources too, and hand the
        result to everyone who was served the stale card, if it changed."""
        try:
            loop = asyncio.get_running_loop()
            final: asyncio.Future[CustomerCard] = loop.create_future()

            async def arrived(card: CustomerCard) -> None:
                if not final.done():
                    final.set_result(card)

            phone = normalize(served.caller_number, self.default_region)
            card = await self._lookup(served.caller_number, phone, on_late=arrived)
            if any(s.status == PENDING for s in card.sources.values()):
                card = await final
            _task, waiters = self._refreshing.get(key, (None, []))
            if waiters and _content(card) != _content(served):
                for on_late in waiters:
                    await self._deliver(on_late, card, key)
        except Exception:
            log.exception("background card refresh failed key=%s", key)

    async def _deliver(self, on_late: LateCallback, card: CustomerCard, key: str) -> None:
        try:
            await on_late(card)
        except Exception:
            log.exception("late card delivery failed key=%s", key)

    async def _lookup(self, caller_number, phone, on_late: LateCallback | None) -> CustomerCard:
        started = time.perf_counter()
        try:
            refs, possible = await self._references(phone)
        except Exception as exc:
            log.warning("phone index unavailable key=%s reason=%s", phone.key, _reason(exc))
            statuses = {name: SourceStatus(ERROR, f"phone index unavailable: {_reason(exc)}") for name in self.sources}
            return self._card(UNKNOWN, caller_number, phone, [], statuses)
        statuses: dict[str, SourceStatus] = {}
        fetches: list[_Fetch] = []
        for name, source in self.sources.items():
            keys = refs.get(name) or []
            maybe = [key for key in possible.get(name, ()) if key not in keys]
            if not keys and not maybe:
                statuses[name] = SourceStatus(NO_MATCH)
                continue
            breaker = self.breakers[name]
            if not breaker.allow():
                statuses[name] = SourceStatus(SKIPPED, f"failing, retry in {breaker.retry_in():.0f}s")
                continue
            task = asyncio.create_task(self._fetch_all(source, keys + maybe, set(maybe)))
            fetches.append(_Fetch(name, task, time.perf_counter()))
        # Earlier calls come from the interaction log: asked at the same time as
        # the sources, not after them, so it never adds to the pop's wait.
        history_task = asyncio.create_task(self._history(phone)) if fetches else None
        records: list[SourceRecord] = []
        pending = await self._collect(fetches, statuses, records, self.deadline, final=on_late is None)
        history = await history_task if history_task is not None else []
        card = await self._build(caller_number, phone, records, statuses, history)
        if not pending:
            await self._store(phone.key, card)
        else:
            task = asyncio.create_task(self._finish_late(caller_number, phone, pending, statuses, records, on_late, history))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        log.info(
            "lookup key=%s status=%s persons=%d missing=%s ms=%.1f",
            phone.key, card.status, len(card.persons), ",".join(card.missing_sources) or "-", (time.perf_counter() - started) * 1000,
        )
        return card

    async def _references(self, phone) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """Records the index holds for the caller: sure (under the caller's
        key) and possible (under an invalid stored number of a source's own
        region that the caller's national number ends with), in one read."""
        candidates = possible_keys(phone, set(self.source_regions.values()))
        if not candidates:
            return await self.index.lookup(phone.key), {}
        found = await self.index.lookup_many([phone.key] + [key for _region, key in candidates])
        possible: dict[str, list[str]] = {}
        for region, key in candidates:
            for source, records in found.get(key, {}).items():
                if self.source_regions.get(source) == region:
                    possible.setdefault(source, []).extend(r for r in records if r not in possible[source])
        return found.get(phone.key, {}), possible

    async def _fetch_all(self, source: Source, keys: list[str], possible: set[str] = frozenset()) -> list[SourceRecord]:
        results = await asyncio.gather(*(source.fetch(key) for key in keys))
        for key, record in zip(keys, results):
            if record is None and self.index_heals:
                # The index still points at a record the source no longer has:
                # drop it now rather than at the next rebuild.
                await self._forget(source.name, key)
        return [SourceRecord(source.name, key, record, key in possible) for key, record in zip(keys, results) if record is not None]

    async def _forget(self, source: str, key: str) -> None:
        try:
            await self.index.remove_record(source, key)
            log.info("phone index: record gone source=%s key=%s", source, key)
        except Exception as exc:
            log.warning("phone index unavailable op=remove source=%s reason=%s", source, _reason(exc))

    async def _collect(self, fetches, statuses, records, budget: float, final: bool) -> list[_Fetch]:
        """Wait for each fetch up to its deadline; return those still running
        (``final``: cancel them and mark them timed out instead)."""
        deadline_of = {f.source: self.source_deadlines.get(f.source, budget) for f in fetches}
        start = time.perf_counter()
        waiting, late = list(fetches), []
        while waiting:
            for fetch in [f for f in waiting if f.task.done()]:
                waiting.remove(fetch)
                self._settle(fetch, statuses, records)
            elapsed = time.perf_counter() - start
            late += [f for f in waiting if elapsed >= deadline_of[f.source]]
            waiting = [f for f in waiting if elapsed < deadline_of[f.source]]
            if waiting:
                timeout = min(deadline_of[f.source] for f in waiting) - elapsed
                await asyncio.wait([f.task for f in waiting], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for fetch in late:
            elapsed_ms = (time.perf_counter() - fetch.started) * 1000
            limit_ms = deadline_of[fetch.source] * 1000
            limit = f"{limit_ms:.0f} ms"
            if final:
                fetch.task.cancel()
                self.breakers[fetch.source].failure()
                statuses[fetch.source] = SourceStatus(TIMEOUT, f"no answer within {limit}", elapsed_ms)
                log.warning("source timed out source=%s limit_ms=%.0f", fetch.source, limit_ms)
            else:
                statuses[fetch.source] = SourceStatus(PENDING, f"slower than {limit}", elapsed_ms)
        return [] if final else late

    def _settle(self, fetch: _Fetch, statuses, records) -> None:
        elapsed = (time.perf_counter() - fetch.started) * 1000
        exc = fetch.task.exception() if not fetch.task.cancelled() else asyncio.CancelledError()
        if exc is not None:
            self.breakers[fetch.source].failure()
            statuses[fetch.source] = SourceStatus(ERROR, _reason(exc), elapsed)
            log.warning("source failed source=%s reason=%r", fetch.source, _reason(exc))
            return
        self.breakers[fetch.source].success()
        found = fetch.task.result()
        records.extend(found)
        statuses[fetch.source] = SourceStatus(OK if found else NO_MATCH, None, elapsed, len(found))

    async def _finish_late(self, caller_number, phone, pending, statuses, records, on_late, history) -> None:
        for fetch in pending:
            del statuses[fetch.source]
        await self._collect(pending, statuses, records, self.late, final=True)
        card = await self._build(caller_number, phone, records, statuses, history)
        await self._store(phone.key, card)
        if on_late is not None:
            await self._deliver(on_late, card, phone.key)

    async def _history(self, phone) -> list[dict]:
        """Earlier calls, or [] when they do not come within the deadline.

        A late query is not cancelled but left to finish (up to
        ``MAX_LATE_HISTORY`` of them at once): cut mid-query it would lose
        its pooled connection, and under load the reconnects made the next
        queries later still."""
        if self.history is None or not phone.e164:
            return []
        query = asyncio.ensure_future(self.history(phone.e164))
        try:
            return await asyncio.wait_for(asyncio.shield(query), timeout=self.deadline)
        except Exception as exc:
            log.warning("call history unavailable key=%s reason=%r", phone.key, _reason(exc))
            if not query.done():
                if len(self._late_history) >= MAX_LATE_HISTORY:
                    query.cancel()
                self._late_history.add(query)
                query.add_done_callback(self._late_history_done)
            return []
        except asyncio.CancelledError:
            query.cancel()
            raise

    def _late_history_done(self, query: asyncio.Future) -> None:
        self._late_history.discard(query)
        if not query.cancelled():
            query.exception()  # retrieved: nobody waits for it any more

    async def _build(self, caller_number, phone, records, statuses, history: list[dict]) -> CustomerCard:
        persons = merge(records, list(self.sources))
        accounts = sorted({str(p.billing["account"]) for p in persons if p.billing and p.billing.get("account")})
        if accounts:
            try:
                pushed = await self.balances.get_many(accounts)
            except Exception as exc:
                log.warning("balance store unavailable reason=%r", _reason(exc))
                pushed = {}
            for person in persons:
                account = person.billing and str(person.billing.get("account"))
                if account in pushed:
                    person.billing = apply_balance(person.billing, pushed[account])
        for person in persons:
            person.history = history
        status = KNOWN if len(persons) == 1 else MULTIPLE if persons else UNKNOWN
        ordered = {name: statuses[name] for name in self.sources if name in statuses}  # as configured, not as answered
        return self._card(status, caller_number, phone, persons, ordered)

    async def _store(self, key: str, card: CustomerCard) -> None:
        try:
            await self.cache.put(key, card)
        except Exception as exc:
            log.warning("card cache unavailable op=put reason=%r", _reason(exc))

    def _card(self, status, caller_number, phone, persons, statuses) -> CustomerCard:
        return CustomerCard(
            status=status,
            caller_number=caller_number,
            e164=phone.e164,
            persons=persons,
            sources=statuses,
            generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            number_kind=phone.kind,
        )


def _content(card: CustomerCard) -> tuple:
    """What an agent sees: persons and which sources answered, not timings."""
    persons = card.to_dict()["persons"]
    return (card.status, persons, sorted((name, s.status) for name, s in card.sources.items()))


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:200]
