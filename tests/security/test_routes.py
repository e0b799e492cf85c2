"""Every route of the real app, and its socket, against its access rule.

The app is the one ``screenpop serve`` runs (``ScreenpopService`` builds it).
Three checks, so that a new route cannot slip in unguarded:

1. every route has a rule in the access registry (the app would not start
   without one either);
2. every route is in :data:`EXPECTED` below with that very rule: adding a
   route, or changing who may call one, means changing this table (and
   docs/security.md) on purpose;
3. each rule is exercised over HTTP: anonymous is refused (401, or a
   redirect to the login form for a browser asking for a page), every role
   the rule does not name gets 403, every role it names gets past the
   guard; the billing route takes its token and nothing else; ``/ws``
   upgrades for each role that has a feed (support staff have none: 403)
   and refuses anonymous handshakes.
"""
from __future__ import annotations

import re

import aiohttp
import pytest

from agent_ui import access
from screenpop.auth.accounts import ROLES
from tests.security.node import CONFIG_BILLING_TOKEN, WALLBOARD_TOKEN

ALL = "agent,supervisor,admin,support"
FLOOR = "agent,supervisor,admin"  # on the phones or watching them: not support staff
SUP = "supervisor,admin"

# (method, path) -> rule as str(Rule).  HEAD routes (aiohttp's automatic
# companions of GET) must carry the rule of their GET.
EXPECTED = {
    ("POST", "/api/v1/session"): "public",
    ("GET", "/api/v1/session"): ALL,
    ("DELETE", "/api/v1/session"): ALL,
    ("GET", "/login"): "public",
    ("GET", "/"): ALL,
    ("GET", "/interactions"): ALL,
    ("GET", "/interactions/{call_id}"): ALL,
    ("GET", "/static/{path}"): "public",
    ("GET", "/supervisor"): SUP,
    ("GET", "/supervisor/queues/{queue}"): SUP,
    ("GET", "/supervisor/agents/{agent_id}"): SUP,
    ("GET", "/wallboard"): "public",  # a shell; its data needs the wallboard token (below)
    ("GET", "/api/v1/interactions"): ALL,
    ("GET", "/api/v1/interactions/{call_id}"): ALL,
    ("PUT", "/api/v1/interactions/{call_id}/outcome"): ALL,
    ("POST", "/api/v1/interactions/{call_id}/notes"): ALL,
    ("GET", "/api/v1/calls"): FLOOR,
    ("GET", "/api/v1/pops"): "agent",
    ("GET", "/api/v1/config/ui"): ALL,
    ("GET", "/api/v1/audit"): "admin",
    ("PUT", "/api/v1/billing/balances/{account}"): "billing_token",
    ("GET", "/api/v1/queues"): SUP,
    ("GET", "/api/v1/queues/{queue}"): SUP,
    ("GET", "/api/v1/agents"): SUP,
    ("GET", "/api/v1/agents/{agent_id}"): SUP,
    ("GET", "/api/v1/wallboard"): "public",  # checks the wallboard token itself (tested below)
    ("GET", "/ws"): ALL,
    ("GET", "/healthz"): "public",
    ("GET", "/metrics"): "public",
    ("GET", "/api/v1/openapi.json"): "public",
}

SAMPLE = {"call_id": "c-1", "path": "app.css", "queue": "support", "agent_id": "1001", "account": "AC-1"}
PAGES = {"/", "/interactions", "/interactions/{call_id}", "/supervisor", "/supervisor/queues/{queue}", "/supervisor/agents/{agent_id}"}


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: SAMPLE[m.group(1)], path)


def served(app) -> dict[tuple[str, str], access.Rule | None]:
    return {(r.method, r.path): r.rule for r in access.listing(app)}


async def test_every_route_has_a_rule_and_it_is_the_expected_one(node):
    routes = served(node.app)
    assert [key for key, rule in routes.items() if rule is None] == []
    heads = {path for method, path in routes if method == "HEAD"}
    for path in heads:
        assert routes[("HEAD", path)] == routes[("GET", path)], f"HEAD {path} differs from GET"
    actual = {key: str(rule) for key, rule in routes.items() if key[0] != "HEAD"}
    unexpected = {key: rule for key, rule in actual.items() if key not in EXPECTED}
    assert unexpected == {}, "new route(s): add them to EXPECTED (and docs/security.md) with the intended rule"
    assert {k: v for k, v in actual.items() if EXPECTED.get(k) != v} == {}
    assert set(EXPECTED) - set(actual) == set(), "EXPECTED lists routes the app no longer serves"


def _guarded_routes():
    return [(m, p, rule) for (m, p), rule in EXPECTED.items() if rule not in ("public", "billing_token") and p != "/ws"]


@pytest.mark.parametrize(("method", "path", "rule"), _guarded_routes(), ids=lambda v: str(v))
async def test_each_guarded_route_refuses_anonymous_and_wrong_roles_and_admits_the_right_ones(node, method, path, rule):
    url = concrete(path)
    status, body = await node.call(method, url)
    assert status == 401 and body["error"], (status, body)
    if path in PAGES:  # a browser asking for the page is sent to the login form
        async with node.http.get(node.url + url, headers={"Accept": "text/html"}, allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"].startswith("/login?next=")
    admitted = set(rule.split(","))
    for role in ROLES:
        status, body = await node.call(method, url, role)
        if role in admitted:
            assert status not in (401, 403), (role, status, body)
        else:
            assert status == 403 and "role" in body["error"], (role, status, body)


@pytest.mark.parametrize(("method", "path"), [(m, p) for (m, p), rule in EXPECTED.items() if rule == "public" and p != "/api/v1/wallboard"], ids=str)
async def test_public_routes_answer_without_a_session(node, method, path):
    kwargs = {"json": {"username": "nobody", "password": "nothing-here"}} if method == "POST" else {}
    status, _ = await node.call(method, concrete(path), **kwargs)
    assert status != 403 and (status != 401 or path == "/api/v1/session")  # a failed login is the one 401


async def test_the_billing_route_takes_a_billing_token_and_nothing_else(node):
    url = concrete("/api/v1/billing/balances/{account}")
    body = {"balance": "12.50", "currency": "EUR"}
    assert (await node.call("PUT", url, json=body))[0] == 401
    for role in ROLES:  # a session, of any role, is not a billing token
        assert (await node.call("PUT", url, role, json=body))[0] == 401
    status, _ = await node.call("PUT", url, headers={"Authorization": "Bearer not-the-token"}, json=body)
    assert status == 401
    status, answer = await node.call("PUT", url, headers={"Authorization": f"Bearer {CONFIG_BILLING_TOKEN}"}, json=body)
    assert status == 200 and answer["account"] == "AC-1"


async def test_the_wallboard_feed_needs_its_token(node):
    status, body = await node.call("GET", "/api/v1/wallboard")
    assert status == 401 and body["error"]
    assert (await node.call("GET", "/api/v1/wallboard?token=guess"))[0] == 401
    for role in ROLES:  # a session is not the wallboard's token
        assert (await node.call("GET", "/api/v1/wallboard", role))[0] == 401
    status, body = await node.call("GET", f"/api/v1/wallboard?token={WALLBOARD_TOKEN}")
    assert status == 200 and "queues" in body


async def test_the_socket_refuses_anonymous_and_support_and_admits_every_other_role(node):
    ws_url = node.url.replace("http", "ws", 1) + "/ws"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        async with node.http.ws_connect(ws_url):
            pass
    assert refused.value.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        async with node.http.ws_connect(ws_url + "?token=" + "x" * 43):
            pass
    assert refused.value.status == 401
    for role in ROLES:
        if role == "support":  # no pops (no phone), no supervisors' feed
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                async with node.http.ws_connect(f"{ws_url}?token={node.tokens[role]}"):
                    pass
            assert refused.value.status == 403
            continue
        async with node.http.ws_connect(f"{ws_url}?token={node.tokens[role]}") as sock:
            hello = await sock.receive_json(timeout=5)
            assert hello["type"] == "hello", hello


async def test_an_agent_socket_may_not_follow_another_agent(node):
    ws_url = node.url.replace("http", "ws", 1) + "/ws"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        async with node.http.ws_connect(f"{ws_url}?token={node.tokens['agent']}&agent=1002"):
            pass
    assert refused.value.status == 403
    async with node.http.ws_connect(f"{ws_url}?token={node.tokens['supervisor']}&agent=1001") as sock:
        assert (await sock.receive_json(timeout=5))["type"] == "hello"
