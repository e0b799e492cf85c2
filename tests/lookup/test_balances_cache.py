"""Pushed balances (validation, overlay) and the card cache, in memory and on real Redis."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from customer_lookup.balances import InvalidBalance, MemoryBalanceStore, PushedBalance, RedisBalanceStore, apply_balance, parse_balance
from customer_lookup.cache import MemoryCardCache, RedisCardCache
from customer_lookup.card import KNOWN, CustomerCard, Person, SourceStatus

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)


def test_valid_push_is_normalized():
    pushed = parse_balance("AC-000017", {"balance": -42.1, "currency": "EUR", "as_of": "2026-11-23T09:59:00+01:00", "overdue_amount": "12"}, now=NOW)
    assert pushed == PushedBalance("AC-000017", "-42.10", "EUR", "2026-11-23T08:59:00.000000Z", "12.00")


@pytest.mark.parametrize(
    "account, payload, message",
    [
        ("AC 1", {"balance": 1, "currency": "EUR"}, "account"),
        ("AC-1\n", {"balance": 1, "currency": "EUR"}, "account"),
        ("AC-1", {"balance": 1, "currency": "EUR\n"}, "currency"),
        ("AC-1", [], "JSON object"),
        ("AC-1", {"currency": "EUR"}, "balance is required"),
        ("AC-1", {"balance": "12,50", "currency": "EUR"}, "decimal"),
        ("AC-1", {"balance": True, "currency": "EUR"}, "number"),
        ("AC-1", {"balance": "NaN", "currency": "EUR"}, "out of range"),
        ("AC-1", {"balance": "1e20", "currency": "EUR"}, "out of range"),
        ("AC-1", {"balance": 1, "currency": "euro"}, "currency"),
        ("AC-1", {"balance": 1, "currency": "EUR", "as_of": "yesterday"}, "as_of"),
        ("AC-1", {"balance": 1, "currency": "EUR", "as_of": "2026-11-23T10:00:00"}, "time zone"),
        ("AC-1", {"balance": 1, "currency": "EUR", "as_of": "2027-01-01T00:00:00Z"}, "future"),
        ("AC-1", {"balance": 1, "currency": "EUR", "overdue_amount": -5}, "negative"),
        ("AC-1", {"balance": 1, "currency": "EUR", "evil": "<script>"}, "unknown field"),
    ],
)
def test_invalid_push_is_refused_with_a_reason(account, payload, message):
    with pytest.raises(InvalidBalance, match=message):
        parse_balance(account, payload, now=NOW)


def test_pushed_balance_overlays_older_source_data_only():
    pushed = PushedBalance("AC-1", "10.00", "EUR", "2026-11-23T09:00:00.000000Z", "0.00")
    older = {"account": "AC-1", "balance": "99", "balance_as_of": "2026-11-22T00:00:00Z", "invoices": [1]}
    assert apply_balance(older, pushed)["balance"] == "10.00"
    assert apply_balance(older, pushed)["invoices"] == [1]
    newer = {"account": "AC-1", "balance": "99", "balance_as_of": "2026-11-23T09:30:00Z"}
    assert apply_balance(newer, pushed)["balance"] == "99"


def card_for(account: str, name: str = "Ana") -> CustomerCard:
    person = Person(name=name, billing={"account": account, "balance": "1.00"})
    return CustomerCard(KNOWN, "+34912345678", "+34912345678", [person], {"billing": SourceStatus("ok")})


@pytest.fixture(params=["memory", "redis"])
async def cache_and_balances(request, redis_client, clean_redis_prefix):
    now = [1000.0]
    if request.param == "memory":
        yield MemoryCardCache(max_entries=3, max_age_seconds=60, clock=lambda: now[0]), MemoryBalanceStore(), now
    else:
        yield (
            RedisCardCache(redis_client, prefix=clean_redis_prefix, max_age_seconds=60, clock=lambda: now[0]),
            RedisBalanceStore(redis_client, key=clean_redis_prefix + "balances"),
            now,
        )


async def test_cache_stores_returns_and_finds_cards_by_account(cache_and_balances):
    cache, balances, now = cache_and_balances
    await cache.put("+34912345678", card_for("AC-1"))
    now[0] += 5
    entry = await cache.get("+34912345678")
    assert entry.card.person.name == "Ana" and entry.age(now[0]) == 5
    assert await cache.keys_for_account("AC-1") == ["+34912345678"]
    await cache.invalidate("+34912345678")
    assert await cache.get("+34912345678") is None
    await balances.put(PushedBalance("AC-1", "5.00", "EUR", "2026-11-23T09:00:00.000000Z"))
    assert (await balances.get_many(["AC-1", "AC-2"])) == {"AC-1": PushedBalance("AC-1", "5.00", "EUR", "2026-11-23T09:00:00.000000Z")}


async def test_cached_card_is_a_copy_not_an_alias(cache_and_balances):
    cache, _, _ = cache_and_balances
    card = card_for("AC-1")
    await cache.put("k", card)
    card.persons[0].name = "changed after put"
    assert (await cache.get("k")).card.person.name == "Ana"


async def test_memory_cache_evicts_least_recently_used_and_expires():
    now = [0.0]
    cache = MemoryCardCache(max_entries=2, max_age_seconds=60, clock=lambda: now[0])
    await cache.put("a", card_for("AC-a"))
    await cache.put("b", card_for("AC-b"))
    await cache.get("a")
    await cache.put("c", card_for("AC-c"))
    assert await cache.get("b") is None and await cache.keys_for_account("AC-b") == []
    now[0] = 61
    assert await cache.get("a") is None


async def test_memory_cache_account_map_follows_puts_and_invalidations():
    cache = MemoryCardCache(max_entries=10)
    await cache.put("a", card_for("AC-1"))
    await cache.put("b", card_for("AC-1"))
    await cache.put("a", card_for("AC-2"))  # the number's card now shows another account
    assert await cache.keys_for_account("AC-1") == ["b"] and await cache.keys_for_account("AC-2") == ["a"]
    await cache.invalidate("b")
    assert await cache.keys_for_account("AC-1") == [] and cache._by_account.keys() == {"AC-2"}
    await cache.clear()
    assert await cache.keys_for_account("AC-2") == []
