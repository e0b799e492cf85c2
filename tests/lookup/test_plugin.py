"""The wiring: settings in, a running lookup out; memory and Redis give the same cards."""
from __future__ import annotations

import asyncio
import sqlite3

import pytest

from customer_lookup.balances import PushedBalance
from customer_lookup.card import ERROR, KNOWN, OK
from customer_lookup.plugin import build_lookup
from screenpop.config import LookupSettings, Settings, SourceSettings, StorageSettings
from tests.conftest import REDIS_URL
from tests.lookup.worlds import (
    BILLING_PHONES,
    BILLING_RECORD,
    PG_BILLING_RECORD,
    SALES_PHONES,
    SALES_RECORD,
    PgSchema,
    sqlite_dsn,
    sqlite_world,
)

NUMBERS = ["912345678", "+34600112233", "0034955123456", "933111222", "611000000", "910000001", "+34699999999",
           "12345", "+1 415 555 0100", "+34987654321", "anonymous", None, "garbage!"]


def settings_for(sales, billing_dsn, billing_record=BILLING_RECORD, **lookup) -> Settings:
    return Settings(
        lookup=LookupSettings(default_region="ES", deadline_ms=2000, **lookup),
        storage=StorageSettings(dsn=f"sqlite+aiosqlite:///{sales.parent}/interactions.sqlite3"),  # the index is saved beside it
        sources=[
            SourceSettings(name="sales", kind="sql", dsn=sqlite_dsn(sales), phones_query=SALES_PHONES, record_query=SALES_RECORD),
            SourceSettings(name="billing", kind="sql", dsn=billing_dsn, phones_query=BILLING_PHONES, record_query=billing_record),
        ],
    )


@pytest.fixture
async def pg_schema():
    schema = await PgSchema().create()
    yield schema
    await schema.drop()


async def test_memory_runtime_end_to_end(tmp_path):
    sales, billing = sqlite_world(tmp_path)
    history_calls = []

    async def history(e164):
        history_calls.append(e164)
        return []

    runtime = await build_lookup(settings_for(sales, sqlite_dsn(billing)), history=history)
    assert not runtime.shared
    await runtime.start()
    card = await runtime.lookup("912345678")
    assert card.status == KNOWN and card.person.keys == {"sales": ["1"], "billing": ["AC-001"]}
    assert history_calls == ["+34912345678"]

    notified = []

    async def notify(card):
        notified.append(card)

    await runtime.balances.put(PushedBalance("AC-001", "9.99", "EUR", "2099-01-01T00:00:00.000000Z"))
    assert await runtime.on_balance(PushedBalance("AC-001", "9.99", "EUR", "2099-01-01T00:00:00.000000Z"), notify) == 1
    assert notified[0].e164 == "+34912345678" and notified[0].person.billing["balance"] == "9.99"

    await runtime.update_record("sales", "2", ["622 000 111"])
    assert (await runtime.lookup("622000111")).person.name == "Bruno Díaz"
    await runtime.invalidate_number("912345678")
    assert not (await runtime.lookup("912345678")).cached
    await runtime.close()


async def test_redis_and_memory_runtimes_give_the_same_cards(tmp_path, pg_schema, redis_client, clean_redis_prefix):
    sales, _ = sqlite_world(tmp_path)
    settings = settings_for(sales, pg_schema.dsn, PG_BILLING_RECORD)
    memory = await build_lookup(settings)
    shared = await build_lookup(settings, redis=redis_client, prefix=clean_redis_prefix)
    assert shared.shared and not memory.shared
    await memory.start()
    await shared.start()
    for number in NUMBERS:
        a, b = await memory.lookup(number), await shared.lookup(number)
        assert _comparable(a) == _comparable(b), number
    # Served from each one's cache the second time, still the same.
    for number in NUMBERS[:3]:
        a, b = await memory.lookup(number), await shared.lookup(number)
        assert a.cached and b.cached and _comparable(a) == _comparable(b)
    assert (await memory.index.stats())["entries"] == (await shared.index.stats())["entries"]
    await memory.close()
    await shared.close()


def _comparable(card) -> dict:
    data = card.to_dict()
    for key in ("generated_at", "cached", "caller_number"):
        data.pop(key)
    for status in data["sources"].values():
        status.pop("elapsed_ms")
    return data


async def test_second_node_does_not_rescan_a_fresh_shared_index(tmp_path, redis_client, clean_redis_prefix):
    sales, billing = sqlite_world(tmp_path)
    settings = settings_for(sales, sqlite_dsn(billing))
    first = await build_lookup(settings, redis=redis_client, prefix=clean_redis_prefix)
    await first.start()
    second = await build_lookup(settings, redis=redis_client, prefix=clean_redis_prefix)
    outcomes = await second.rebuild_index(older_than=second._period_due())
    assert {o.source: o.skipped for o in outcomes} == {"sales": "built recently", "billing": "built recently"}
    assert (await second.lookup("912345678")).status == KNOWN  # the first node's index serves it
    await first.close()
    await second.close()


async def test_failing_source_keeps_its_previous_index(tmp_path):
    sales, billing = sqlite_world(tmp_path)
    runtime = await build_lookup(settings_for(sales, sqlite_dsn(billing)))
    await runtime.start()
    billing.unlink()
    progress = []
    outcomes = {o.source: o for o in await runtime.rebuild_index(progress=lambda s, n: progress.append((s, n)))}
    assert outcomes["sales"].stats.rows == 10 and outcomes["sales"].error is None
    assert "unavailable" in outcomes["billing"].error
    assert ("sales", 10) in progress
    assert await runtime.index.lookup("+34955123456") == {"billing": ["AC-002"], "sales": ["2"]}
    card = await runtime.lookup("955123456")
    assert card.sources["sales"].status == OK and card.sources["billing"].status == ERROR
    with pytest.raises(ValueError, match="no source named nope"):
        await runtime.rebuild_index(["nope"])
    await runtime.close()


async def test_periodic_refresh_picks_up_new_phones(tmp_path):
    sales, billing = sqlite_world(tmp_path)
    runtime = await build_lookup(settings_for(sales, sqlite_dsn(billing), index_refresh_seconds=0.2))
    await runtime.start()
    assert (await runtime.lookup("633000000")).persons == []
    with sqlite3.connect(sales) as db:
        db.execute("UPDATE customers SET mobile = '633 000 000' WHERE id = 2")
    for _ in range(50):
        await asyncio.sleep(0.1)
        if await runtime.index.lookup("+34633000000"):
            break
    card = await runtime.service.lookup("633000000", use_cache=False)
    assert card.person is not None and card.person.name == "Bruno Díaz"
    await runtime.close()


async def test_redis_url_from_settings_opens_and_closes_its_own_client(tmp_path, clean_redis_prefix):
    sales, billing = sqlite_world(tmp_path)
    settings = settings_for(sales, sqlite_dsn(billing), redis_prefix=clean_redis_prefix)
    settings.bus.redis_url = REDIS_URL
    runtime = await build_lookup(settings)
    assert runtime.shared
    await runtime.start()
    assert (await runtime.lookup("912345678")).status == KNOWN
    await runtime.close()


async def test_redis_outage_degrades_to_a_card_that_says_so(tmp_path):
    """A refused Redis connection (nothing listens on port 1): the pop still gets a card, fast."""
    import time

    import redis.asyncio as aioredis

    sales, billing = sqlite_world(tmp_path)
    dead = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    runtime = await build_lookup(settings_for(sales, sqlite_dsn(billing)), redis=dead)
    started = time.perf_counter()
    card = await runtime.lookup("912345678")
    assert time.perf_counter() - started < 2
    assert card.status == "unknown" and card.e164 == "+34912345678"
    assert card.missing_sources == ["sales", "billing"]
    assert all("phone index unavailable" in s.detail for s in card.sources.values())
    await runtime.start()  # serving starts anyway; the build failures are logged
    assert all(o.error for o in await runtime.rebuild_index())
    await runtime.close()
    await dead.aclose()


def test_lookup_settings_from_toml_and_environment(tmp_path):
    from screenpop.config import load_settings

    path = tmp_path / "c.toml"
    path.write_text("[lookup]\nlate_ms = 900\ncache_ttl_seconds = 120\nindex_refresh_seconds = 0\n", encoding="utf-8")
    settings = load_settings(path, env={"SCREENPOP_LOOKUP__CACHE_FRESH_SECONDS": "5", "SCREENPOP_LOOKUP__REDIS_PREFIX": "tenant1:"})
    lookup = settings.lookup
    assert (lookup.late_ms, lookup.cache_ttl_seconds, lookup.index_refresh_seconds) == (900, 120.0, 0.0)
    assert (lookup.cache_fresh_seconds, lookup.redis_prefix, lookup.breaker_failures) == (5.0, "tenant1:", 3)


async def test_a_background_rebuild_scans_one_source_at_a_time_and_gives_the_same_index(tmp_path):
    """The periodic rebuild runs while pops are served: three sources scanned
    at once kept the lookups' reads waiting on the GIL (p99 100-160 ms), so a
    background rebuild takes them in turn, paced.  The start's build (nothing
    served yet) still scans them all at once."""
    sales, billing = sqlite_world(tmp_path)
    runtime = await build_lookup(settings_for(sales, sqlite_dsn(billing)))
    await runtime.start()
    before = {n: await runtime.index.lookup(n) for n in ("+34912345678", "+34955123456", "+34611000000")}
    scanning, most = 0, 0
    for source in runtime.sources:
        def counted(scan=source.iter_phones):
            async def rows():
                nonlocal scanning, most
                scanning += 1
                most = max(most, scanning)
                try:
                    async for row in scan():
                        yield row
                        await asyncio.sleep(0.001)  # a slow source: the scans would overlap if run at once
                finally:
                    scanning -= 1
            return rows()
        source.iter_phones = counted
    try:
        outcomes = await runtime.rebuild_index(background=True)
        assert [o.source for o in outcomes] == ["sales", "billing"] and all(o.stats.rows for o in outcomes)
        assert most == 1
        assert {n: await runtime.index.lookup(n) for n in before} == before
        await runtime.rebuild_index()
        assert most == 2  # the same slow sources, all at once: the counter does see overlap
    finally:
        await runtime.close()
