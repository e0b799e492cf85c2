"""The billing push endpoint over real HTTP, with the balance store on real
Redis and the demo's billing database (SQLite, seeded) saying which accounts
exist and in which currency."""
from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.base import build_source
from adapters.demo import demo_sources
from agent_ui import billing
from agent_ui.tokens import BearerTokens
from customer_lookup.balances import PushedBalance, RedisBalanceStore, find_account
from tests.stack import BILLING_TOKEN, seed_databases

TOKEN = "billing-secret-token"
URL = "/api/v1/billing/balances/{}"
ANA = "AC-000123"  # the demo persona Ana Garcia's account, kept in EUR


class BrokenStore:
    async def put(self, balance):
        raise ConnectionError("redis down")


@pytest.fixture(scope="module")
def demo_dbs(tmp_path_factory):
    return seed_databases(tmp_path_factory.mktemp("billing"), customers=30)


@pytest.fixture
async def sources(demo_dbs):
    built = [build_source(s) for s in demo_sources(demo_dbs)]
    yield built
    for source in built:
        await source.close()


@pytest.fixture
async def server(redis_client, clean_redis_prefix, sources):
    store = RedisBalanceStore(redis_client, key=clean_redis_prefix + "balances")
    pushed = []

    async def on_balance(balance):
        pushed.append(balance)
        return 2

    app = web.Application()
    billing.setup(app, tokens=BearerTokens([TOKEN]), balances=store, on_balance=on_balance,
                  find_account=lambda account: find_account(account, sources, store))
    server = TestServer(app)
    await server.start_server()
    async with aiohttp.ClientSession(base_url=str(server.make_url("/"))) as session:
        yield session, store, pushed
    await server.close()


def auth(token=TOKEN):
    return {"Authorization": f"Bearer {token}"}


async def test_push_stores_the_balance_and_updates_cards(server):
    session, store, pushed = server
    async with session.put(URL.format(ANA), json={"balance": "-42.1", "currency": "EUR", "overdue_amount": 10}, headers=auth()) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["balance"] == "-42.10" and body["cards_updated"] == 2
    stored = (await store.get_many([ANA]))[ANA]
    assert (stored.balance, stored.overdue_amount) == ("-42.10", "10.00")
    assert [p.account for p in pushed] == [ANA]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer "}])
async def test_push_without_a_valid_token_is_401_and_changes_nothing(server, headers):
    session, store, pushed = server
    async with session.put(URL.format("AC-1"), json={"balance": 1, "currency": "EUR"}, headers=headers) as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert await store.get_many(["AC-1"]) == {} and pushed == []


@pytest.mark.parametrize(
    "body, content_type, status, reason",
    [
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b'{"balance": "x", "currency": "EUR"}', "application/json", 400, "decimal"),
        (b'{"balance": 1}', "application/json", 400, "currency"),
        (b"balance=1", "application/x-www-form-urlencoded", 415, "application/json"),
        (json.dumps({"balance": 1, "currency": "EUR", "pad": "x" * 20000}).encode(), "application/json", 413, "larger"),
    ],
)
async def test_bad_payloads_get_a_4xx_with_a_reason_and_nothing_is_written(server, body, content_type, status, reason):
    session, store, pushed = server
    async with session.put(URL.format("AC-2"), data=body, headers={**auth(), "Content-Type": content_type}) as resp:
        assert resp.status == status
        assert reason in (await resp.json())["error"]
    assert await store.get_many(["AC-2"]) == {} and pushed == []


async def test_store_outage_is_503_not_a_traceback():
    app = web.Application()

    async def on_balance(balance):
        raise AssertionError("must not be called")

    billing.setup(app, tokens=BearerTokens([TOKEN]), balances=BrokenStore(), on_balance=on_balance)
    server = TestServer(app)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.put(server.make_url(URL.format("AC-3")), json={"balance": 1, "currency": "EUR"}, headers=auth()) as resp:
                assert resp.status == 503
                assert resp.headers["Retry-After"] == "5"
                assert "unavailable" in (await resp.json())["error"]
    finally:
        await server.close()


async def put(session, account, body):
    async with session.put(URL.format(account), json=body, headers=auth()) as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize("account, body, status, reason", [
    ("AC-999999", {"balance": "1.00", "currency": "EUR"}, 404, "no billing account AC-999999"),
    (ANA, {"balance": "1.00", "currency": "USD"}, 422, "kept in EUR, not USD"),
    (ANA, {"balance": "1.00", "currency": "XYZ"}, 422, "not an ISO 4217 code"),
    (ANA, {"balance": "1.00", "currency": "eur"}, 422, "not an ISO 4217 code"),
])
async def test_unknown_accounts_and_wrong_currencies_are_refused_and_change_nothing(server, account, body, status, reason):
    session, store, pushed = server
    answer = await put(session, account, body)
    assert answer[0] == status and reason in answer[1]["error"], answer
    assert await store.get_many([account]) == {} and pushed == []


async def test_an_older_push_is_409_and_the_newer_balance_stays(server):
    session, store, pushed = server
    newer = {"balance": "10.00", "currency": "EUR", "as_of": "2026-11-23T10:00:00Z"}
    older = {"balance": "99.00", "currency": "EUR", "as_of": "2026-11-23T09:59:59+00:00"}
    assert (await put(session, ANA, newer))[0] == 200
    status, body = await put(session, ANA, older)
    assert status == 409 and "newer balance" in body["error"] and body["stored_as_of"] == "2026-11-23T10:00:00.000000Z"
    stored = (await store.get_many([ANA]))[ANA]
    assert (stored.balance, stored.as_of) == ("10.00", "2026-11-23T10:00:00.000000Z")
    assert [p.balance for p in pushed] == ["10.00"]  # the cards were only patched with the newer one
    assert (await put(session, ANA, newer))[0] == 200  # the same as_of again: a retry, taken


async def test_an_account_with_a_stored_balance_exists_even_when_no_source_has_it(redis_client, clean_redis_prefix, sources):
    store = RedisBalanceStore(redis_client, key=clean_redis_prefix + "balances")
    assert await find_account("AC-777", sources, store) is None
    await store.put(PushedBalance("AC-777", "1.00", "GBP", "2026-11-23T10:00:00.000000Z"))
    found = await find_account("AC-777", sources, store)
    assert (found.currency, found.known_by) == ("GBP", "stored balance")
    found = await find_account(ANA, sources, store)
    assert (found.currency, found.known_by) == ("EUR", "billing")


async def test_concurrent_pushes_keep_the_newest_on_every_node(server, redis_client, clean_redis_prefix):
    """Forty pushes at once over HTTP, as of shuffled times: the newest is
    stored, every push stored or got a 409, and the cards were patched in
    time order.  Then as many again over HTTP while a second store on the
    same Redis (another node) pushes in between: the newest still wins."""
    session, store, pushed = server
    other_node = RedisBalanceStore(redis_client, key=clean_redis_prefix + "balances")
    seconds = [7, 31, 2, 39, 18, 25, 11, 36, 4, 29, 14, 21, 33, 9, 27, 1, 38, 16, 23, 6,
               35, 12, 30, 3, 20, 37, 8, 26, 15, 34, 0, 22, 10, 32, 5, 24, 13, 28, 17, 19]

    def body(minute, s, fraction=""):
        return {"balance": f"{minute}{s}.00", "currency": "EUR", "as_of": f"2026-11-23T10:{minute:02d}:{s:02d}{fraction}Z"}

    results = await asyncio.gather(*(put(session, ANA, body(0, s)) for s in seconds))
    statuses = [status for status, _ in results]
    assert set(statuses) <= {200, 409} and statuses.count(200) == len(pushed) >= 1, statuses
    stored = (await store.get_many([ANA]))[ANA]
    assert stored.as_of == "2026-11-23T10:00:39.000000Z"
    as_of = [p.as_of for p in pushed]
    assert as_of == sorted(as_of), "a card was patched with an older balance after a newer one"

    http = [put(session, ANA, body(1, s, ".5")) for s in seconds]
    direct = [other_node.put(PushedBalance(ANA, f"{s}.00", "EUR", f"2026-11-23T10:01:{s:02d}.000000Z")) for s in seconds]
    mixed = [task for pair in zip(http, direct) for task in pair]
    await asyncio.gather(*mixed)
    stored = (await store.get_many([ANA]))[ANA]
    assert stored.as_of == "2026-11-23T10:01:39.500000Z"


async def test_the_card_never_goes_back_to_an_older_balance(stack):
    """The wired node (demo databases, the lookup's card cache): Ana's card
    shows the pushed balance, and a push older than it is refused, so the
    card keeps showing the newer one."""
    from datetime import datetime, timedelta, timezone

    def billing_of(card):
        return next(p.billing for p in card.persons if p.billing and p.billing.get("account") == ANA)

    before = billing_of(await stack.service.lookup.lookup("+34912345678"))
    assert before["balance"] == "125.40"
    now = datetime.now(timezone.utc)
    stamp = lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    status, body = await stack.api("PUT", URL.format(ANA), BILLING_TOKEN,
                                   json={"balance": "10.00", "currency": "EUR", "as_of": stamp(now)})
    assert status == 200 and body["cards_updated"] >= 1, body
    status, body = await stack.api("PUT", URL.format(ANA), BILLING_TOKEN,
                                   json={"balance": "77.00", "currency": "EUR", "as_of": stamp(now - timedelta(minutes=5))})
    assert status == 409, body
    shown = billing_of(await stack.service.lookup.lookup("+34912345678"))
    assert (shown["balance"], shown["pushed"]) == ("10.00", True)
