"""The lookup service against real sources: SQLite files and PostgreSQL
through the real SqlSource, an aiohttp server through the real HttpSource."""
from __future__ import annotations

import asyncio
import json
import sqlite3
import time

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.http import HttpSource
from customer_lookup.balances import MemoryBalanceStore, PushedBalance
from customer_lookup.breaker import CircuitBreaker
from customer_lookup.cache import MemoryCardCache
from customer_lookup.card import ERROR, KNOWN, MULTIPLE, NO_MATCH, OK, PENDING, SKIPPED, TIMEOUT, UNKNOWN, WITHHELD
from customer_lookup.index import MemoryPhoneIndex
from customer_lookup.service import LookupService
from tests.lookup.worlds import HOSTILE_NAME, SALES_ROWS, PgDatabase, PgSchema, pg_billing, sqlite_sources, sqlite_world


async def make_service(sources, **options) -> LookupService:
    index = options.pop("index", None) or MemoryPhoneIndex()
    for source in sources:
        await index.replace_source(source.name, source.iter_phones(), default_region="ES")
    options.setdefault("deadline_ms", 1000)
    return LookupService(sources, index, options.pop("cache", None) or MemoryCardCache(), options.pop("balances", None) or MemoryBalanceStore(), default_region="ES", **options)


@pytest.fixture
async def world(tmp_path):
    sales, billing = sqlite_world(tmp_path)
    sources = sqlite_sources(sales, billing)
    yield sources, sales, billing
    for source in sources:
        await source.close()


@pytest.fixture
async def pg_schema():
    schema = await PgSchema().create()
    yield schema
    await schema.drop()


async def close(service: LookupService) -> None:
    await service.close()
    for source in service.sources.values():
        await source.close()


# ------------------------------------------------------------------ who is calling


@pytest.mark.parametrize(
    "caller",
    ["+34912345678", "912345678", "0034912345678", "+34 912 34 56 78", "34912345678", "912-34-56-78", "sip:+34912345678@pbx"],
)
async def test_every_caller_format_finds_the_customer(world, caller):
    service = await make_service(world[0])
    card = await service.lookup(caller)
    assert card.status == KNOWN and card.e164 == "+34912345678" and card.caller_number == caller
    person = card.person
    assert person.name == "Ana García" and person.vip
    assert person.keys == {"sales": ["1"], "billing": ["AC-001"]}  # merged by email
    assert person.billing["balance"] == "-42.10" and person.sales["lifetime_value"] == "1250.40"
    assert card.sources["sales"].status == OK and card.sources["billing"].status == OK
    await service.close()


async def test_every_stored_format_is_found(world):
    """Each row's phones, however typed, lead back to that row."""
    service = await make_service(world[0])
    expected = {1: ["+34912345678", "+34600112233"], 2: ["+34955123456"], 3: ["+34933111222", "+34611000000"], 8: ["+14155550100"], 7: ["12345"]}
    for record, callers in expected.items():
        for caller in callers:
            card = await service.lookup(caller, use_cache=False)
            assert any(str(record) in p.keys.get("sales", []) for p in card.persons), (record, caller, card)
    await service.close()


async def test_several_customers_behind_one_number(world):
    service = await make_service(world[0])
    card = await service.lookup("910000001")
    assert card.status == MULTIPLE and card.person is None
    assert sorted(p.name for p in card.persons) == ["Dora Vidal", "Eloy Vidal"]
    await service.close()


async def test_unknown_and_withheld(world):
    service = await make_service(world[0])
    unknown = await service.lookup("+34 987 654 321")
    assert unknown.status == UNKNOWN and unknown.persons == [] and unknown.e164 == "+34987654321"
    assert {s.status for s in unknown.sources.values()} == {NO_MATCH} and not unknown.missing_sources
    for caller in (None, "", "anonymous", "<unknown>", "Restricted"):
        card = await service.lookup(caller)
        assert card.status == WITHHELD and card.persons == [] and card.e164 is None
    junk = await service.lookup("x" * 5000)
    assert junk.status == UNKNOWN
    await service.close()


async def test_short_number_matches_however_written(tmp_path):
    sales, billing = sqlite_world(tmp_path)
    service = await make_service(sqlite_sources(sales, billing))
    for caller in ("12345", "+3412345", "003412345"):
        card = await service.lookup(caller, use_cache=False)
        assert card.status == KNOWN and card.person.name == "Reception", caller
    await close(service)


async def test_hostile_strings_come_back_verbatim(world):
    service = await make_service(world[0])
    card = await service.lookup("+34699999999")
    assert card.person.name == HOSTILE_NAME
    assert json.loads(json.dumps(card.to_dict()))["persons"][0]["name"] == HOSTILE_NAME
    await service.close()


async def test_history_hook_and_its_failure(world):
    calls: list[str] = []

    async def history(e164: str) -> list[dict]:
        calls.append(e164)
        return [{"call_id": "c1", "disposition": "sale"}]

    service = await make_service(world[0], history=history)
    card = await service.lookup("912345678")
    assert calls == ["+34912345678"] and card.person.history == [{"call_id": "c1", "disposition": "sale"}]

    async def broken(e164: str) -> list[dict]:
        raise ConnectionError("interaction log down")

    service.history = broken
    card = await service.lookup("955123456")
    assert card.status == KNOWN and card.person.history == []
    await service.close()


# ------------------------------------------------------------------ failing sources


async def test_slow_postgres_source_times_out_without_holding_the_rest(world, pg_schema):
    await pg_schema.execute("UPDATE accounts SET delay = 2 WHERE account_no = 'AC-001'")
    sales = world[0][0]
    service = await make_service([sales, pg_billing(pg_schema)], deadline_ms=300)
    started = time.perf_counter()
    card = await service.lookup("912345678")
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, elapsed
    assert card.status == KNOWN and card.person.name == "Ana García"
    assert card.sources["billing"].status == TIMEOUT and "300 ms" in card.sources["billing"].detail
    assert card.missing_sources == ["billing"]
    fast = await service.lookup("955123456")  # another account answers at once
    assert fast.sources["billing"].status == OK and fast.person.billing["balance"] == "0.00"
    await close(service)


async def test_late_postgres_data_arrives_through_on_late(world, pg_schema):
    await pg_schema.execute("UPDATE accounts SET delay = 0.6 WHERE account_no = 'AC-001'")
    service = await make_service([world[0][0], pg_billing(pg_schema)], deadline_ms=150, late_ms=5000)
    late: asyncio.Queue = asyncio.Queue()

    async def on_late(card):
        await late.put(card)

    started = time.perf_counter()
    first = await service.lookup("912345678", on_late=on_late)
    assert time.perf_counter() - started < 0.5
    assert first.sources["billing"].status == PENDING and first.person.billing is None
    assert first.person.name == "Ana García"
    update = await asyncio.wait_for(late.get(), 5)
    assert update.sources["billing"].status == OK and update.person.billing["balance"] == "-42.10"
    assert update.person.keys == {"sales": ["1"], "billing": ["AC-001"]}
    cached = await service.lookup("912345678")  # the completed card is what gets cached
    assert cached.cached and cached.person.billing["balance"] == "-42.10"
    await close(service)


async def test_source_too_late_even_for_on_late(world, pg_schema):
    await pg_schema.execute("UPDATE accounts SET delay = 3 WHERE account_no = 'AC-001'")
    service = await make_service([world[0][0], pg_billing(pg_schema)], deadline_ms=100, late_ms=300)
    late: asyncio.Queue = asyncio.Queue()
    first = await service.lookup("912345678", on_late=late.put)
    assert first.sources["billing"].status == PENDING
    update = await asyncio.wait_for(late.get(), 3)
    assert update.sources["billing"].status == TIMEOUT and update.person.name == "Ana García"
    await close(service)


async def test_source_with_broken_query_is_an_error(world):
    sales, billing = world[0]
    broken = type(billing)("billing", billing._where, "SELECT account_no, phone FROM accounts", "SELECT no_such_column FROM accounts WHERE account_no = :key")
    service = await make_service([sales, broken])
    card = await service.lookup("912345678")
    assert card.status == KNOWN and card.person.name == "Ana García"
    assert card.sources["billing"].status == ERROR and "no_such_column" in card.sources["billing"].detail
    await close(service)


async def test_sqlite_database_gone(world):
    sources, sales_path, billing_path = world
    service = await make_service(sources)
    assert (await service.lookup("955123456", use_cache=False)).sources["billing"].status == OK
    billing_path.unlink()
    card = await service.lookup("955123456", use_cache=False)
    assert card.person.name == "Bruno Díaz"
    assert card.sources["billing"].status == ERROR and "unavailable" in card.sources["billing"].detail
    await service.close()


async def test_postgres_database_gone(world):
    database = await PgDatabase().create()
    try:
        from adapters.sql import SqlSource
        from tests.lookup.worlds import BILLING_PHONES, BILLING_RECORD

        billing = SqlSource("billing", database.dsn, BILLING_PHONES, BILLING_RECORD, connect_timeout=2)
        service = await make_service([world[0][0], billing])
        assert (await service.lookup("955123456", use_cache=False)).sources["billing"].status == OK
        await database.drop()
        card = await service.lookup("955123456", use_cache=False)
        assert card.person.name == "Bruno Díaz"
        assert card.sources["billing"].status == ERROR, card.sources["billing"]
        assert card.sources["billing"].detail
        await close(service)
    finally:
        await database.drop()


async def test_failing_source_is_skipped_by_the_breaker(world, pg_schema):
    await pg_schema.execute("UPDATE accounts SET delay = 5")
    now = [0.0]
    service = await make_service(
        [world[0][0], pg_billing(pg_schema)], deadline_ms=100, breaker_factory=lambda: CircuitBreaker(3, 30.0, clock=lambda: now[0])
    )
    for _ in range(3):
        assert (await service.lookup("912345678", use_cache=False)).sources["billing"].status == TIMEOUT
    started = time.perf_counter()
    card = await service.lookup("912345678", use_cache=False)
    assert time.perf_counter() - started < 0.08  # no 100 ms wait: the source is not asked
    assert card.sources["billing"].status == SKIPPED and "retry in 30s" in card.sources["billing"].detail
    assert card.person.name == "Ana García"
    await pg_schema.execute("UPDATE accounts SET delay = 0")
    now[0] = 31.0  # cool-down over: one trial call, which succeeds and closes the circuit
    card = await service.lookup("912345678", use_cache=False)
    assert card.sources["billing"].status == OK and service.breakers["billing"].state == "closed"
    await close(service)


async def test_http_source_slow_and_failing(world):
    async def customer(request: web.Request) -> web.Response:
        key = request.match_info["key"]
        if key == "slow":
            await asyncio.sleep(2)
        if key == "boom":
            return web.Response(status=500, text="kaput")
        return web.json_response({"name": "Carla R.", "email": "CARLA@example.com", "open_tickets": [{"id": 7, "subject": "<b>refund</b>"}]})

    async def phones(request: web.Request) -> web.Response:
        return web.json_response({"items": [{"key": "slow", "phone": "912345678"}, {"key": "boom", "phone": "955123456"}, {"key": "ok", "phone": "933111222"}]})

    app = web.Application()
    app.router.add_get("/customers/{key}", customer)
    app.router.add_get("/phones", phones)
    server = TestServer(app)
    await server.start_server()
    try:
        support = HttpSource("support", str(server.make_url("/customers/{key}")).replace("%7Bkey%7D", "{key}"), phones_url="/phones")
        service = await make_service([world[0][0], support], deadline_ms=200)
        slow = await service.lookup("912345678")
        assert slow.sources["support"].status == TIMEOUT and slow.person.name == "Ana García"
        boom = await service.lookup("955123456")
        assert boom.sources["support"].status == ERROR and "500" in boom.sources["support"].detail
        ok = await service.lookup("933111222")
        assert ok.sources["support"].status == OK and ok.status == KNOWN  # linked to sales by the email
        assert ok.person.name == "Carla Ruiz" and ok.person.keys == {"sales": ["3"], "support": ["ok"]}
        assert ok.person.support == {"open_tickets": [{"id": 7, "subject": "<b>refund</b>"}]}
        await close(service)
    finally:
        await server.close()


async def test_record_gone_from_source_leaves_the_index(world):
    sources, sales_path, _ = world
    service = await make_service(sources)
    with sqlite3.connect(sales_path) as db:
        db.execute("DELETE FROM customers WHERE id = 3")
    card = await service.lookup("933111222")
    assert card.status == UNKNOWN and card.sources["sales"].status == NO_MATCH
    assert await service.index.lookup("+34933111222") == {}
    assert await service.index.lookup("+34611000000") == {}  # its other phone too
    await service.close()


# ------------------------------------------------------------------ the cache


async def test_cache_hit_is_served_without_asking_sources(world):
    sources, sales_path, billing_path = world
    service = await make_service(sources)
    first = await service.lookup("912345678")
    assert not first.cached
    sales_path.unlink()
    billing_path.unlink()
    again = await service.lookup("+34 912 345 678")
    assert again.cached and again.person.name == "Ana García" and again.caller_number == "+34 912 345 678"
    await service.close()


async def test_stale_card_is_served_then_refreshed(world):
    sources, sales_path, _ = world
    service = await make_service(sources, fresh_seconds=0)
    await service.lookup("912345678")
    with sqlite3.connect(sales_path) as db:
        db.execute("UPDATE customers SET name = 'Ana García-López' WHERE id = 1")
    updates: asyncio.Queue = asyncio.Queue()
    stale = await service.lookup("912345678", on_late=updates.put)
    assert stale.cached and stale.person.name == "Ana García"  # at once, no waiting
    fresh = await asyncio.wait_for(updates.get(), 3)
    assert fresh.person.name == "Ana García-López" and not fresh.cached
    assert (await service.lookup("912345678")).person.name == "Ana García-López"
    await service.close()


async def test_unchanged_refresh_sends_no_update(world):
    service = await make_service(world[0], fresh_seconds=0)
    await service.lookup("912345678")
    updates: asyncio.Queue = asyncio.Queue()
    await service.lookup("912345678", on_late=updates.put)
    while service._refreshing:
        await asyncio.sleep(0.01)
    assert updates.empty()
    await service.close()


async def test_card_with_a_gap_is_refreshed_on_the_next_call(world, pg_schema):
    await pg_schema.execute("UPDATE accounts SET delay = 2 WHERE account_no = 'AC-001'")
    service = await make_service([world[0][0], pg_billing(pg_schema)], deadline_ms=150, gap_retry_seconds=0)
    assert (await service.lookup("912345678")).sources["billing"].status == TIMEOUT
    await pg_schema.execute("UPDATE accounts SET delay = 0")
    updates: asyncio.Queue = asyncio.Queue()
    cached = await service.lookup("912345678", on_late=updates.put)
    assert cached.cached and cached.sources["billing"].status == TIMEOUT
    fresh = await asyncio.wait_for(updates.get(), 3)
    assert fresh.sources["billing"].status == OK and fresh.person.billing["balance"] == "-42.10"
    await close(service)


class Counted:
    """A source that counts its fetches; ``fail`` makes them raise."""

    def __init__(self, name: str, record: dict, fail: bool = False):
        self.name, self.record, self.fail, self.fetches = name, record, fail, 0

    async def fetch(self, key: str):
        self.fetches += 1
        if self.fail:
            raise RuntimeError(f"{self.name} is down")
        return dict(self.record)


async def gap_service(**options):
    sales = Counted("sales", {"id": "1", "name": "Ana García"})
    billing = Counted("billing", {"account_no": "AC-001"}, fail=True)
    index = MemoryPhoneIndex()
    await index.replace_source("sales", [("1", "912345678")], default_region="ES")
    await index.replace_source("billing", [("AC-001", "912345678")], default_region="ES")
    service = LookupService([sales, billing], index, MemoryCardCache(), MemoryBalanceStore(), default_region="ES",
                            deadline_ms=1000, **options)
    return service, sales, billing


async def settle(service: LookupService) -> None:
    while service._refreshing or service._background:
        await asyncio.sleep(0.01)


async def test_card_with_a_gap_is_not_refetched_on_every_hit():
    service, sales, billing = await gap_service(gap_retry_seconds=60)
    assert (await service.lookup("912345678")).sources["billing"].status == ERROR
    for _ in range(5):  # a ring-all queue: one lookup per ringing agent
        card = await service.lookup("912345678", on_late=lambda card: asyncio.sleep(0))
        assert card.cached and card.missing_sources == ["billing"]
        await settle(service)
    assert (sales.fetches, billing.fetches) == (1, 1)
    await service.close()


async def test_card_with_a_gap_waits_for_its_sources_breaker():
    now = [0.0]
    service, sales, billing = await gap_service(
        gap_retry_seconds=0, breaker_factory=lambda: CircuitBreaker(failures_to_open=1, cooldown=15, clock=lambda: now[0]))
    await service.lookup("912345678")  # billing fails: its breaker opens
    for _ in range(3):
        assert (await service.lookup("912345678")).cached
        await settle(service)
    assert billing.fetches == 1 and sales.fetches == 1  # no refetch while the breaker says billing is failing
    now[0] = 16.0  # the breaker lets a trial through: the next hit refetches
    billing.fail = False
    await service.lookup("912345678")
    await settle(service)
    assert billing.fetches == 2
    card = await service.lookup("912345678")
    assert card.cached and not card.missing_sources and card.sources["billing"].status == OK
    await service.close()


async def test_late_call_history_is_left_to_finish_not_cut():
    finished, started = [], []

    async def history(e164):
        started.append(e164)
        await asyncio.sleep(0.3)
        finished.append(e164)
        return [{"call_id": "old"}]

    service, sales, billing = await gap_service(history=history)
    billing.fail = False
    service.deadline = 0.05
    card = await service.lookup("912345678")
    assert card.person.history == [] and started == ["+34912345678"]  # the pop did not wait for it
    await asyncio.sleep(0.4)
    assert finished == ["+34912345678"] and not service._late_history
    await service.close()


async def test_pushed_balance_patches_cached_cards(world):
    balances = MemoryBalanceStore()
    service = await make_service(world[0], balances=balances)
    await service.lookup("912345678")
    await balances.put(PushedBalance("AC-001", "5.00", "EUR", "2099-01-01T00:00:00.000000Z"))
    patched = await service.patch_account("AC-001")
    assert [key for key, _ in patched] == ["+34912345678"] and patched[0][1].person.billing["balance"] == "5.00"
    card = await service.lookup("912345678")
    assert card.cached and card.person.billing["balance"] == "5.00" and card.person.billing["pushed"]
    assert (await service.lookup("955123456")).person.billing["balance"] == "0.00"  # other accounts untouched
    await service.close()


async def test_pushed_balance_applies_to_fresh_lookups(world):
    balances = MemoryBalanceStore()
    await balances.put(PushedBalance("AC-002", "7.50", "EUR", "2099-01-01T00:00:00.000000Z"))
    service = await make_service(world[0], balances=balances)
    assert (await service.lookup("955123456")).person.billing["balance"] == "7.50"
    await service.close()


async def test_invalidate_number(world):
    sources, sales_path, _ = world
    service = await make_service(sources)
    await service.lookup("912345678")
    with sqlite3.connect(sales_path) as db:
        db.execute("UPDATE customers SET name = 'Ana Nueva' WHERE id = 1")
    await service.invalidate_number("+34 912 34 56 78")  # any format of the number
    card = await service.lookup("912345678")
    assert not card.cached and card.person.name == "Ana Nueva"
    await service.invalidate_number(None)  # harmless
    await service.close()


def test_sales_rows_cover_the_formats_the_tests_claim():
    assert any("(+34)" in (r[3] or "") for r in SALES_ROWS) and any("ext." in (r[3] or "") for r in SALES_ROWS)
