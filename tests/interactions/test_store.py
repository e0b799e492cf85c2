"""The store on SQLite and PostgreSQL: idempotent upserts, search filters,
outcomes with validation, notes, a caller's history."""
from __future__ import annotations

import asyncio
import dataclasses
from datetime import date, datetime, timezone

import pytest

from screenpop.interactions.record import InteractionRecord, fold, with_lookup
from screenpop.interactions.store import InteractionStore
from screenpop.interactions.validate import InteractionNotFound, InvalidInput, UnknownDisposition

from .conftest import by_call, capture_events

EVENT_VIEW = ("notes", "disposition", "follow_up", "outcome_by", "outcome_at")


def events_only(record: InteractionRecord) -> InteractionRecord:
    return dataclasses.replace(record, notes=(), disposition=None, follow_up=None, outcome_by=None, outcome_at=None)


async def load_captures(store: InteractionStore) -> dict[str, InteractionRecord]:
    records = {cid: fold(evs) for cid, evs in by_call(capture_events()).items()}
    lookups = {
        "1795383106.0": ("+34912345678", "Ana García", {"sales": ["C-17"], "billing": ["A-9"]}, "known"),
        "1795383127.6": ("+14155550100", "Bob Smith", {"sales": ["C-42"]}, "known"),
        "1795383152.12": ("+34912345679", None, {}, "unknown"),
        "1795383163.16": ("+34912345680", None, {"sales": ["C-17", "C-18"]}, "multiple"),
    }
    for cid, (e164, name, keys, status) in lookups.items():
        records[cid] = with_lookup(records[cid], e164, name, keys, status, "2026-11-22T21:40:00Z")
    assert await store.upsert(records.values()) == len(records)
    return records


async def test_upsert_is_idempotent_and_merges_with_what_is_stored(store):
    calls = by_call(capture_events())
    first_half = [fold(evs[: len(evs) // 2] or evs) for evs in calls.values()]
    assert await store.upsert(first_half) == len(calls)
    assert await store.upsert(first_half) == 0  # nothing written twice
    everything = [fold(evs) for evs in calls.values()]
    await store.upsert(everything)
    assert await store.upsert(everything) == 0
    for record in everything:
        assert await store.get(record.call_id) == record
    assert (await store.search(limit=1000)).total == len(calls)


async def test_get_reads_back_every_field(store):
    records = await load_captures(store)
    got = await store.get("1795383106.0")
    assert got == records["1795383106.0"]
    assert got.customer_keys == {"sales": ["C-17"], "billing": ["A-9"]} and got.customer_name == "Ana García"
    assert await store.get("no-such-call") is None


async def test_search_filters(store):
    await load_captures(store)

    async def ids(**kw):
        return [r.call_id for r in (await store.search(**kw)).items]

    assert await ids(number="912 34 56 78") == ["1795383106.0"]  # digits of the number as received
    assert await ids(number="+34 91 234 56 79") == ["1795383152.12"]  # received as 0034…, matched through E.164
    assert await ids(number="912345680") == ["1795383163.16"]
    assert await ids(customer="garcía") == ["1795383106.0"]  # any case, accents kept
    assert await ids(customer="GARCÍA") == ["1795383106.0"]
    assert await ids(customer="C-17") == ["1795383163.16", "1795383106.0"]  # a record key, newest first
    assert await ids(customer="billing:A-9") == ["1795383106.0"]
    assert await ids(customer="C-1") == []  # keys match whole, not by prefix
    assert await ids(customer="100%") == []  # LIKE wildcards are literal
    assert await ids(agent="1002") == ["1795383423.150", "1795383229.38"]  # took the transfer / answered
    assert await ids(agent="1003") == []  # rang, never answered
    assert await ids(queue="billing", number="0034") == ["1795383152.12"]
    assert len(await ids(queue="billing", limit=100)) == 4
    assert len(await ids(end_reason="abandoned", limit=100)) == 6
    assert await ids(end_reason="abandoned", queue="support") == []
    assert await ids(since="2026-11-22T21:33:00Z", until=datetime(2026, 11, 22, 21, 34, tzinfo=timezone.utc)) == ["1795383229.38"]
    assert await ids(since="2026-11-22T21:37:00", queue="support") == ["1795383423.150", "1795383422.140"]
    page1 = await store.search(limit=3)
    page2 = await store.search(limit=3, offset=3)
    assert page1.total == page2.total == 14 and len(page1.items) == 3
    assert not {r.call_id for r in page1.items} & {r.call_id for r in page2.items}
    starts = [r.started_at for r in (await store.search(limit=100)).items]
    assert starts == sorted(starts, reverse=True)
    await store.set_outcome("1795383127.6", "sale", by_user="bob")
    assert await ids(disposition="sale") == ["1795383127.6"]
    for bad in ({"number": "abc"}, {"limit": 0}, {"limit": 5000}, {"offset": -1}, {"since": "last week"}, {"customer": "a\x00b"}):
        with pytest.raises(InvalidInput):
            await store.search(**bad)


async def test_outcome_validation_and_update(store):
    await load_captures(store)
    with pytest.raises(UnknownDisposition) as err:
        await store.set_outcome("1795383106.0", "happy", by_user="ana")
    assert err.value.field == "disposition" and "resolved" in str(err.value)
    for kwargs, field in (
        ({"disposition": "", "by_user": "ana"}, "disposition"),
        ({"disposition": "sale", "by_user": ""}, "by"),
        ({"disposition": "sale", "by_user": "ana", "follow_up": "next tuesday"}, "follow_up"),
        ({"disposition": "sale", "by_user": "ana", "follow_up": datetime(2026, 12, 1, 10, 0)}, "follow_up"),
        ({"disposition": "sale", "by_user": "ana", "notes": "x" * 10_001}, "notes"),
        ({"disposition": "sale", "by_user": "ana", "notes": "nul\x00"}, "notes"),
    ):
        with pytest.raises(InvalidInput) as err:
            await store.set_outcome("1795383106.0", **kwargs)
        assert err.value.field == field, kwargs
    with pytest.raises(InteractionNotFound):
        await store.set_outcome("nope", "sale", by_user="ana")
    assert (await store.get("1795383106.0")).disposition is None  # nothing half-written

    r = await store.set_outcome("1795383106.0", "callback", "wants a call back", "2026-12-01", "ana")
    assert (r.disposition, r.follow_up, r.outcome_by) == ("callback", date(2026, 12, 1), "ana")
    assert r.outcome_at is not None and [(n.author, n.text) for n in r.notes] == [("ana", "wants a call back")]
    r2 = await store.set_outcome("1795383106.0", "resolved", by_user="lead", follow_up=None)
    assert (r2.disposition, r2.follow_up, r2.outcome_by) == ("resolved", None, "lead")
    assert r2.outcome_at >= r.outcome_at and len(r2.notes) == 1
    # the writer's later upserts never touch the outcome
    await store.upsert([InteractionRecord("1795383106.0", ended_at="2026-11-22T21:59:00.000000Z", end_reason="completed")])
    assert (await store.get("1795383106.0")).disposition == "resolved"


async def test_outcome_before_the_call_is_stored_merges_with_the_events_later(store):
    events = by_call(capture_events("direct_call"))["1795383163.16"]
    await store.set_outcome("1795383163.16", "wrong_number", by_user="1004", create_missing=True)
    await store.upsert([fold(events)])
    got = await store.get("1795383163.16")
    assert got.disposition == "wrong_number" and events_only(got) == fold(events)


async def test_configured_dispositions(engine):
    store = InteractionStore(engine, ["won", "lost"])
    await store.upsert([InteractionRecord("c1", started_at="2026-11-22T21:00:00.000000Z")])
    assert (await store.set_outcome("c1", "won", by_user="x")).disposition == "won"
    with pytest.raises(UnknownDisposition):
        await store.set_outcome("c1", "sale", by_user="x")


async def test_notes(store):
    await load_captures(store)
    first = await store.add_note("1795383127.6", "bob", "  asked about order 4411\nsecond line")
    second = await store.add_note("1795383127.6", "lead", "called back, fixed")
    assert first.id != second.id and first.text == "  asked about order 4411\nsecond line"
    notes = await store.notes("1795383127.6")
    assert [(n.author, n.text) for n in notes] == [("bob", first.text), ("lead", "called back, fixed")]
    assert (await store.get("1795383127.6")).notes == tuple(notes)
    with pytest.raises(InteractionNotFound):
        await store.add_note("nope", "bob", "hello")
    for author, text in (("", "x"), ("bob", ""), ("bob", "   "), ("bob", "a\x00"), ("x" * 200, "ok")):
        with pytest.raises(InvalidInput):
            await store.add_note("1795383127.6", author, text)


async def test_history_of_a_caller_newest_first_with_outcomes(store):
    await load_captures(store)
    base = InteractionRecord("h-old", caller_number="+34912345678", queue="sales", started_at="2026-11-01T09:00:00.000000Z")
    await store.upsert([with_lookup(base, "+34912345678", "Ana García", {}, "known")])
    await store.set_outcome("h-old", "complaint", "unhappy about invoice", None, "carl")
    await store.set_outcome("1795383106.0", "resolved", by_user="ana")
    history = await store.history("+34912345678")
    assert [h["call_id"] for h in history] == ["1795383106.0", "h-old"]
    assert history[0]["disposition"] == "resolved" and history[0]["answered_by"] == "1001"
    assert history[1]["notes"][0]["text"] == "unhappy about invoice" and history[1]["outcome_by"] == "carl"
    assert [h["call_id"] for h in await store.history("+34912345678", exclude_call_id="1795383106.0")] == ["h-old"]
    assert [h["call_id"] for h in await store.history("+34912345678", limit=1)] == ["1795383106.0"]
    assert [h["call_id"] for h in await store.history("+34912345678", before="2026-11-20")] == ["h-old"]
    assert await store.history("+10000000000") == [] and await store.history("") == []
    # no lookup logged (abandoned before any pop), but the PBX sent E.164
    await store.upsert([InteractionRecord("h-nolookup", caller_number="+34912345678", started_at="2026-10-01T09:00:00.000000Z")])
    assert [h["call_id"] for h in await store.history("+34912345678", limit=10)][-1] == "h-nolookup"


async def test_concurrent_upserts_of_one_call_lose_nothing(store):
    """Two writers at once (a restarted process replaying its spill file next
    to the old one) with different parts of the same new calls."""
    calls = by_call(capture_events())
    halves = [[], []]
    for events in calls.values():
        for i, event in enumerate(events):
            halves[i % 2].append(fold([event]))
    results = await asyncio.gather(*(store.upsert(h) for h in halves), return_exceptions=True)
    for half, result in zip(halves, results):  # a writer that lost a lock race retries, as the writer does
        if isinstance(result, Exception):
            await store.upsert(half)
    for call_id, events in calls.items():
        assert await store.get(call_id) == fold(events), call_id
