"""Login, sessions, CSRF and the role matrix over real HTTP (aiohttp test server)."""
from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
import yarl
from aiohttp import web
from aiohttp.test_utils import TestServer

from agent_ui import access, auth
from agent_ui.protocol import Pop
from screenpop.config import AuthSettings
from tests.auth.web import BILLING_TOKEN, PW, Running, build_app, login

SETTINGS = AuthSettings(max_failures=3, lock_seconds=300, rate_limit_failures=5, rate_limit_window_seconds=60)


@pytest.fixture
async def users(store):
    await store.create_user("alice", PW, "agent", "1001", "Alice")
    await store.create_user("bob", PW, "agent", "1002", "Bob")
    await store.create_user("sue", PW, "supervisor", display_name="Sue")
    await store.create_user("ann", PW, "admin")
    return store


@pytest.fixture
async def running(users):
    app, hub = build_app(users, SETTINGS)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield Running(server, hub, app)
    await server.close()


async def logged_in(running, username) -> tuple[aiohttp.ClientSession, str]:
    client = running.client()
    async with client.post("/api/v1/session", json={"username": username, "password": PW}) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    return client, body["csrf_token"]


# ------------------------------------------------------------------ login


async def test_login_sets_a_hardened_cookie_and_returns_the_user(running):
    async with running.client() as client:
        async with client.post("/api/v1/session", json={"username": "Alice", "password": PW}) as resp:
            assert resp.status == 200
            body = await resp.json()
            cookie = resp.cookies["screenpop_session"]
            raw = resp.headers["Set-Cookie"]
        assert body["user"] == {"id": body["user"]["id"], "username": "alice", "role": "agent", "agent_id": "1001", "display_name": "Alice"}
        assert "token" not in body and len(body["csrf_token"]) == 43
        assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
        assert not cookie["secure"] and "Max-Age" not in raw and "Expires" not in raw  # gone when the browser quits
        async with client.get("/api/v1/session") as resp:
            assert resp.status == 200
            assert (await resp.json())["user"]["username"] == "alice"
        async with client.get("/api/v1/me") as resp:
            assert await resp.json() == {"username": "alice", "role": "agent", "agent_id": "1001"}


async def test_cookie_is_secure_when_configured(users):
    app, _ = build_app(users, AuthSettings(cookie_secure=True))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as client:
            async with client.post(server.make_url("/api/v1/session"), json={"username": "alice", "password": PW}) as resp:
                assert resp.status == 200 and resp.cookies["screenpop_session"]["secure"]
    finally:
        await server.close()


async def test_cookie_is_secure_behind_an_https_proxy(users):
    app, _ = build_app(users, AuthSettings(trust_forwarded=True))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as client:
            async with client.post(server.make_url("/api/v1/session"), json={"username": "alice", "password": PW}, headers={"X-Forwarded-Proto": "https"}) as resp:
                assert resp.status == 200 and resp.cookies["screenpop_session"]["secure"]
    finally:
        await server.close()


@pytest.mark.parametrize("username, password", [("alice", "wrong"), ("nobody", PW), ("ALICE", ""), ("", "")])
async def test_bad_credentials_all_read_the_same(running, username, password):
    async with running.client() as client:
        async with client.post("/api/v1/session", json={"username": username, "password": password}) as resp:
            assert resp.status == 401
            assert await resp.json() == {"error": "invalid username or password"}
            assert "screenpop_session" not in resp.cookies


@pytest.mark.parametrize(
    "kwargs, status",
    [
        ({"data": "username=alice&password=x", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 415),
        ({"data": b"{nope", "headers": {"Content-Type": "application/json"}}, 400),
        ({"json": {"username": "alice"}}, 400),
        ({"json": ["alice", PW]}, 400),
        ({"json": {"username": "alice", "password": "x" * 10000}}, 413),
    ],
)
async def test_malformed_logins(running, kwargs, status):
    async with running.client() as client:
        async with client.post("/api/v1/session", **kwargs) as resp:
            assert resp.status == status and "error" in await resp.json()


async def test_return_token_gives_a_bearer_token_for_scripts(running):
    async with running.client() as client:
        async with client.post("/api/v1/session", json={"username": "sue", "password": PW, "return_token": True}) as resp:
            token = (await resp.json())["token"]
    async with aiohttp.ClientSession(base_url=running.url("/")) as bare:  # no cookie jar state
        async with bare.get("/api/v1/calls", headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == 200
        async with bare.post("/api/v1/outcome", headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == 200  # bearer: no CSRF token needed
        async with bare.get("/api/v1/calls", headers={"Authorization": "Bearer " + "x" * 43}) as resp:
            assert resp.status == 401


async def test_logout_ends_the_session(running):
    client, csrf = await logged_in(running, "alice")
    async with client:
        stolen = client.cookie_jar.filter_cookies(yarl.URL(running.url("/")))["screenpop_session"].value
        async with client.delete("/api/v1/session") as resp:
            assert resp.status == 403  # logout is state-changing: CSRF token required
        async with client.delete("/api/v1/session", headers={"X-CSRF-Token": csrf}) as resp:
            assert resp.status == 204
        async with client.get("/api/v1/session") as resp:
            assert resp.status == 401
    async with aiohttp.ClientSession(base_url=running.url("/")) as other:
        async with other.get("/api/v1/session", headers={"Cookie": f"screenpop_session={stolen}"}) as resp:
            assert resp.status == 401  # the old token is dead server-side, not only forgotten by the browser


async def test_a_new_login_replaces_the_previous_session(running, users):
    client, _ = await logged_in(running, "alice")
    async with client:
        await login(client, "alice")
        assert await users.count_sessions("alice") == 1


# --------------------------------------------------------------- lockout


async def test_account_locks_after_repeated_failures(running, users):
    async with running.client() as client:
        for _ in range(3):
            assert (await login(client, "alice", "wrong")).status == 401
        resp = await login(client, "alice")
        assert resp.status == 429 and int(resp.headers["Retry-After"]) > 0
    async with running.client() as client:
        assert (await login(client, "bob")).status == 200  # others are unaffected


async def test_unknown_names_lock_like_real_ones(running):
    """A locked answer must not tell an attacker the name exists."""
    async with running.client() as client:
        for _ in range(3):
            assert (await login(client, "ghost", "wrong")).status == 401
        assert (await login(client, "ghost", "wrong")).status == 429


async def test_one_address_is_throttled_across_names(running):
    async with running.client() as client:
        for i in range(5):
            assert (await login(client, f"spray{i}", "wrong")).status == 401
        resp = await login(client, "alice")
        assert resp.status == 429 and resp.headers["Retry-After"]


async def test_disabled_user_cannot_log_in_and_is_logged_out(running, users):
    client, _ = await logged_in(running, "alice")
    async with client:
        await users.disable("alice")
        async with client.get("/api/v1/me") as resp:
            assert resp.status == 401
        assert (await login(client, "alice")).status == 401


async def test_expired_session_is_refused(running, clock):
    client, _ = await logged_in(running, "sue")
    async with client:
        clock.advance(hours=2)  # the store's idle limit is one hour
        async with client.get("/api/v1/calls") as resp:
            assert resp.status == 401


# ------------------------------------------------------------------- CSRF


async def test_csrf_is_required_for_cookie_state_changes(running):
    client, csrf = await logged_in(running, "alice")
    async with client:
        async with client.post("/api/v1/outcome") as resp:
            assert resp.status == 403 and "CSRF" in (await resp.json())["error"]
        async with client.post("/api/v1/outcome", headers={"X-CSRF-Token": csrf[:-1] + ("A" if csrf[-1] != "A" else "B")}) as resp:
            assert resp.status == 403
        async with client.post("/api/v1/outcome", headers={"X-CSRF-Token": csrf}) as resp:
            assert resp.status == 200
        async with client.post("/api/v1/outcome", data={"csrf_token": csrf, "notes": "x"}) as resp:
            assert resp.status == 200  # form field, for plain HTML forms
        async with client.post("/api/v1/outcome", data={"csrf_token": "wrong"}) as resp:
            assert resp.status == 403
        async with client.get("/api/v1/me") as resp:
            assert resp.status == 200  # reads need none


async def test_csrf_token_of_another_session_does_not_work(running):
    alice, _ = await logged_in(running, "alice")
    bob, bob_csrf = await logged_in(running, "bob")
    async with alice, bob:
        async with alice.post("/api/v1/outcome", headers={"X-CSRF-Token": bob_csrf}) as resp:
            assert resp.status == 403


# ------------------------------------------------------------ role matrix

ROUTES = [
    ("GET", "/api/v1/me", {"agent"}),
    ("GET", "/api/v1/calls", {"supervisor", "admin"}),
    ("POST", "/api/v1/users", {"admin"}),
    ("POST", "/api/v1/outcome", {"agent", "supervisor", "admin"}),
    ("GET", "/dashboard", {"supervisor"}),
    ("GET", "/healthz", "public"),
]


@pytest.mark.parametrize("who", [None, "alice", "sue", "ann"])
async def test_role_matrix(running, who):
    roles = {None: None, "alice": "agent", "sue": "supervisor", "ann": "admin"}
    if who is None:
        client, csrf = running.client(), ""
    else:
        client, csrf = await logged_in(running, who)
    async with client:
        for method, path, allowed in ROUTES:
            async with client.request(method, path, headers={"X-CSRF-Token": csrf, "Accept": "application/json"}, allow_redirects=False) as resp:
                if allowed == "public" or roles[who] in allowed:
                    expected = 200
                else:
                    expected = 401 if who is None else 403
                assert resp.status == expected, (who, method, path, resp.status)
                if expected in (401, 403):
                    assert "error" in await resp.json()


async def test_a_browser_asking_for_a_page_is_sent_to_the_login_form(running):
    async with running.client() as client:
        async with client.get("/admin?tab=users", headers={"Accept": "text/html,application/xhtml+xml"}, allow_redirects=False) as resp:
            assert resp.status == 302
            location = yarl.URL(resp.headers["Location"])
            assert location.path == "/login" and location.query["next"] == "/admin?tab=users"
        async with client.get("/admin", allow_redirects=False) as resp:
            assert resp.status == 401  # an API client gets the JSON 401
    client, _ = await logged_in(running, "alice")
    async with client:
        async with client.get("/admin", headers={"Accept": "text/html"}, allow_redirects=False) as resp:
            assert resp.status == 403  # logged in, wrong role: no redirect loop to /login


async def test_billing_route_takes_the_billing_token_and_nothing_else(running):
    url = "/api/v1/billing/balances/AC-1"
    body = {"balance": "1.00", "currency": "EUR"}
    async with aiohttp.ClientSession(base_url=running.url("/")) as client:
        async with client.put(url, json=body, headers={"Authorization": f"Bearer {BILLING_TOKEN}"}) as resp:
            assert resp.status == 200
        async with client.put(url, json=body) as resp:
            assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    admin, csrf = await logged_in(running, "ann")
    async with admin:
        async with admin.put(url, json=body, headers={"X-CSRF-Token": csrf}) as resp:
            assert resp.status == 401  # a user session is not a billing credential


async def test_unknown_paths_stay_404(running):
    async with running.client() as client:
        async with client.get("/nope") as resp:
            assert resp.status == 404
        async with client.put("/api/v1/me") as resp:
            assert resp.status == 405


# --------------------------------------------------------- route registry


async def test_a_route_without_a_rule_stops_the_app_from_starting(users):
    app, _ = build_app(users, SETTINGS)

    async def forgotten(request):
        return web.Response(text="open door")

    app.router.add_get("/api/v1/forgotten", forgotten)
    server = TestServer(app, host="127.0.0.1")
    with pytest.raises(access.AccessRuleError, match="GET /api/v1/forgotten"):
        await server.start_server()
    await server.close()


async def test_a_route_added_after_the_check_is_refused_at_request_time(users):
    """Deny by default: a route slipped in by a later startup hook still answers no."""
    app, _ = build_app(users, SETTINGS)

    async def open_door(request):
        return web.Response(text="open door")

    async def late(app):
        app.router.add_get("/late", open_door)

    app.on_startup.append(late)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as client:
            async with client.get(server.make_url("/late")) as resp:
                assert resp.status == 500 and "no access rule" in (await resp.json())["error"]
    finally:
        await server.close()


def test_listing_names_every_route_and_its_rule(users):
    app, _ = build_app(users, SETTINGS)
    table = {(r.method, r.path): str(r.rule) for r in access.listing(app)}
    assert table[("POST", "/api/v1/session")] == "public"
    assert table[("GET", "/api/v1/session")] == "agent,supervisor,admin,support"
    assert table[("HEAD", "/dashboard")] == "supervisor"  # add_get's HEAD follows GET
    assert table[("GET", "/dashboard")] == "supervisor"  # from the decorator
    assert table[("PUT", "/api/v1/billing/balances/{account}")] == "billing_token"
    assert table[("GET", "/ws")] == "agent,supervisor,admin,support"
    assert None not in table.values()


def test_support_is_a_role_not_every_role():
    assert access.parse_rule("support") == access.parse_rule(roles={"support"}) != access.parse_rule(access.ANY_USER)
    assert access.parse_rule(access.ANY_USER) == access.parse_rule(roles={"agent", "supervisor", "admin", "support"})


@pytest.mark.parametrize("spec", ["root", set(), "", 42, {"agent", "boss"}])
def test_malformed_rules_are_refused(spec):
    with pytest.raises(access.AccessRuleError):
        access.parse_rule(spec)


def test_conflicting_rules_for_one_route_are_refused():
    app = web.Application()
    access.declare(app, "GET", "/x", "agent")
    access.declare(app, "GET", "/x", "agent")  # the same again is fine
    with pytest.raises(access.AccessRuleError, match="already has rule"):
        access.declare(app, "GET", "/x", "admin")


# -------------------------------------------------------------- WebSocket


async def test_websocket_agent_receives_only_their_own_pops(running):
    alice, _ = await logged_in(running, "alice")
    bob, _ = await logged_in(running, "bob")
    async with alice, bob:
        async with alice.ws_connect("/ws?agent_id=1002") as ws_alice, bob.ws_connect("/ws") as ws_bob:
            assert (await ws_alice.receive_json(timeout=5))["user"]["agent_id"] == "1001"
            assert (await ws_bob.receive_json(timeout=5))["user"]["agent_id"] == "1002"
            assert running.hub.connected_agents() == {"1001", "1002"}
            running.hub.send_to_agent("1002", Pop("for-bob", "sales", {"number": "1"}, None))
            running.hub.send_to_agent("1001", Pop("for-alice", "sales", {"number": "2"}, None))
            assert (await ws_alice.receive_json(timeout=5))["call_id"] == "for-alice"
            assert (await ws_bob.receive_json(timeout=5))["call_id"] == "for-bob"


async def test_websocket_token_query_parameter(running):
    async with running.client() as client:
        async with client.post("/api/v1/session", json={"username": "sue", "password": PW, "return_token": True}) as resp:
            token = (await resp.json())["token"]
    async with aiohttp.ClientSession() as bare:
        async with bare.ws_connect(running.url(f"/ws?token={token}")) as sock:
            assert (await sock.receive_json(timeout=5))["user"]["role"] == "supervisor"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await bare.ws_connect(running.url("/ws?token=" + "x" * 43))
        assert refused.value.status == 401
        async with bare.get(running.url(f"/api/v1/calls?token={token}")) as resp:
            assert resp.status == 401  # query tokens only where the route allows them (they end up in logs)
    client, _ = await logged_in(running, "alice")
    async with client:  # an explicit token wins over the browser's cookie
        async with client.ws_connect(f"/ws?token={token}") as sock:
            assert (await sock.receive_json(timeout=5))["user"]["username"] == "sue"


async def test_cookie_websocket_from_another_origin_is_refused(running):
    client, _ = await logged_in(running, "alice")
    async with client:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect("/ws", origin="https://evil.example")
        assert refused.value.status == 403
        async with client.ws_connect("/ws", origin=running.url("/").rstrip("/")) as sock:
            assert (await sock.receive_json(timeout=5))["type"] == "hello"


async def test_an_open_socket_ends_when_its_user_is_disabled(users):
    app, hub = build_app(users, AuthSettings(socket_recheck_seconds=0.1))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    running = Running(server, hub, app)
    try:
        alice, _ = await logged_in(running, "alice")
        bob, _ = await logged_in(running, "bob")
        async with alice, bob:
            async with alice.ws_connect("/ws") as ws_alice, bob.ws_connect("/ws") as ws_bob:
                await ws_alice.receive_json(timeout=5)
                await ws_bob.receive_json(timeout=5)
                await users.disable("alice")
                message = await ws_alice.receive(timeout=5)
                assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
                await asyncio.sleep(0.3)
                assert running.hub.connected_agents() == {"1002"}  # bob's socket is untouched
                assert running.hub.send_to_agent("1002", Pop("c1", "sales", {"number": "1"}, None)) == 1
                assert (await ws_bob.receive_json(timeout=5))["call_id"] == "c1"
    finally:
        await server.close()


async def test_expired_sessions_are_swept_at_startup(users, clock):
    user = await users.get_user("alice")
    await users.create_session(user)
    clock.advance(hours=2)
    app, _ = build_app(users, SETTINGS)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        for _ in range(50):
            if await users.count_sessions("alice") == 0:
                break
            await asyncio.sleep(0.02)
        assert await users.count_sessions("alice") == 0
    finally:
        await server.close()


async def test_a_dead_database_is_503_not_a_logout():
    """Agents must not be sent to the login page because PostgreSQL restarted."""
    from screenpop.auth.store import AccountStore
    from screenpop.db import create_engine

    engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none", pool_pre_ping=False)
    app, _ = build_app(AccountStore(engine, scrypt_n=16), SETTINGS)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession(base_url=str(server.make_url("/"))) as client:
            async with client.get("/api/v1/me", headers={"Cookie": "screenpop_session=" + "a" * 43}) as resp:
                assert resp.status == 503 and resp.headers["Retry-After"]
            async with client.post("/api/v1/session", json={"username": "alice", "password": PW}) as resp:
                assert resp.status == 503
            async with client.get("/healthz", headers={"Cookie": "screenpop_session=" + "a" * 43, "Accept": "text/html"}) as resp:
                assert resp.status == 200
    finally:
        await server.close()
        await engine.dispose()


# ------------------------------------------------------------------ logs


async def test_secrets_never_reach_the_logs(users, caplog):
    # INFO and up, every logger (aiosqlite's own DEBUG lines echo query parameters; see the report)
    caplog.set_level(logging.INFO)
    for name in ("agent_ui", "screenpop", "aiohttp"):
        caplog.set_level(logging.DEBUG, logger=name)
    app, _ = build_app(users, SETTINGS)
    runner = web.AppRunner(app, access_log_class=auth.RedactingAccessLogger)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    secrets = [PW, "hunter2-typed-in-the-name-field", BILLING_TOKEN]
    try:
        async with aiohttp.ClientSession(base_url=base, cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
            async with client.post("/api/v1/session", json={"username": "alice", "password": PW, "return_token": True}) as resp:
                body = await resp.json()
            secrets += [body["token"], body["csrf_token"]]
            await login(client, "alice", "wrong-" + PW)
            await login(client, "hunter2-typed-in-the-name-field", PW)
            async with client.post("/api/v1/outcome", headers={"X-CSRF-Token": body["csrf_token"]}):
                pass
            async with client.ws_connect(f"/ws?token={body['token']}") as sock:
                await sock.receive_json(timeout=5)
            async with client.put("/api/v1/billing/balances/AC-1", json={"balance": "1", "currency": "EUR"}, headers={"Authorization": f"Bearer {BILLING_TOKEN}"}):
                pass
            await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()
    text = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert "login ok user=alice role=agent" in text and "reason=bad-password" in text
    assert "token=***" in text  # the access log saw the WebSocket URL, redacted
    for secret in secrets:
        assert secret not in text
