"""The billing push endpoint over real HTTP, with the balance store on real Redis."""
from __future__ import annotations

import json

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from agent_ui import billing
from agent_ui.tokens import BearerTokens
from customer_lookup.balances import RedisBalanceStore

TOKEN = "billing-secret-token"
URL = "/api/v1/billing/balances/{}"


class BrokenStore:
    async def put(self, balance):
        raise ConnectionError("redis down")


@pytest.fixture
async def server(redis_client, clean_redis_prefix):
    store = RedisBalanceStore(redis_client, key=clean_redis_prefix + "balances")
    pushed = []

    async def on_balance(balance):
        pushed.append(balance)
        return 2

    app = web.Application()
    billing.setup(app, tokens=BearerTokens([TOKEN]), balances=store, on_balance=on_balance)
    server = TestServer(app)
    await server.start_server()
    async with aiohttp.ClientSession(base_url=str(server.make_url("/"))) as session:
        yield session, store, pushed
    await server.close()


def auth(token=TOKEN):
    return {"Authorization": f"Bearer {token}"}


async def test_push_stores_the_balance_and_updates_cards(server):
    session, store, pushed = server
    async with session.put(URL.format("AC-000017"), json={"balance": "-42.1", "currency": "EUR", "overdue_amount": 10}, headers=auth()) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["balance"] == "-42.10" and body["cards_updated"] == 2
    stored = (await store.get_many(["AC-000017"]))["AC-000017"]
    assert (stored.balance, stored.overdue_amount) == ("-42.10", "10.00")
    assert [p.account for p in pushed] == ["AC-000017"]


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
