"""WebSocket handshakes' session checks on a whole node: a reconnect storm,
the session cache's revocation, and 503 only when the store is down.

The soak benchmark dropped 2,000 sockets at once on the embedded SQLite
database; their handshakes' session checks (one SELECT each, plus one
UPDATE each to slide the expiry) queued on the pool and the busy file,
timed out, were answered 503, and the sockets took minutes to come back.
Here a few hundred handshakes with distinct sessions arrive together on a
real node (SQLite file and PostgreSQL, real aiohttp server, real WebSocket
clients): all must succeed, and the sessions must be read in a handful of
batched queries, not one each.  The node keeps valid sessions for
``[auth] session_cache_seconds`` (5 by default): its own logouts and
disables must still end them at once."""
from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import make_url

from screenpop.auth.accounts import new_csrf_token, new_token, token_digest, utcnow
from screenpop.auth.models import sessions, users
from tests.pg import postgres_proxy, scratch_database  # noqa: F401  (postgres_proxy: the proxy fixture)
from tests.security.node import PASSWORD, running_node

STORM = 500


async def agents_with_sessions(engine, count: int) -> list[str]:
    """``count`` agent accounts with one session each, last used two minutes
    ago (so every handshake also slides its expiry); their tokens.  Written in
    two statements: scrypt per account would make the test slow."""
    now = utcnow()
    used = now - timedelta(minutes=2)
    tokens = [new_token() for _ in range(count)]
    async with engine.begin() as conn:
        await conn.execute(users.insert(), [
            {"username": f"storm{n}", "display_name": None, "role": "agent", "agent_id": str(5000 + n),
             "password_hash": "scrypt$not-a-real-hash", "disabled": False, "failed_logins": 0,
             "created_at": used, "password_changed_at": used}
            for n in range(count)
        ])
        ids = dict((await conn.execute(select(users.c.username, users.c.id).where(users.c.username.like("storm%")))).all())
        await conn.execute(sessions.insert(), [
            {"id": token_digest(token), "user_id": ids[f"storm{n}"], "created_at": used, "last_seen": used,
             "expires_at": now + timedelta(hours=1), "csrf_token": new_csrf_token()}
            for n, token in enumerate(tokens)
        ])
    return tokens


class Statements:
    """The statements the engine runs on the sessions table, from now on."""

    def __init__(self, engine):
        self.selects, self.updates, self.engine = [], [], engine.sync_engine
        event.listen(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, parameters, context, executemany) -> None:
        text = " ".join(statement.split()).lower()
        if text.startswith("select") and "from sessions" in text:
            self.selects.append(text)
        elif text.startswith("update sessions"):
            self.updates.append((text, executemany))

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


async def handshake(http: aiohttp.ClientSession, url: str, token: str) -> dict:
    async with http.ws_connect(f"{url}/ws?token={token}", timeout=aiohttp.ClientWSTimeout(ws_close=5)) as ws:
        return json.loads((await ws.receive(timeout=30)).data)


async def test_a_reconnect_storm_is_absorbed_in_a_few_batched_session_queries(dsn, tmp_path):
    async with running_node(dsn, tmp_path) as node:
        engine = node.service.accounts.engine
        tokens = await agents_with_sessions(engine, STORM)
        statements = Statements(engine)
        started = time.monotonic()
        try:
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as http:
                hellos = await asyncio.gather(*(handshake(http, node.url, token) for token in tokens), return_exceptions=True)
        finally:
            statements.close()
        elapsed = time.monotonic() - started
        failed = [h for h in hellos if not isinstance(h, dict) or h.get("type") != "hello"]
        assert not failed, f"{len(failed)} of {STORM} handshakes failed, e.g. {failed[:3]}"
        assert sorted(h["user"]["agent_id"] for h in hellos) == sorted(str(5000 + n) for n in range(STORM))
        # One query per batch of handshakes, not one per handshake.
        assert len(statements.selects) <= STORM // 20, f"{len(statements.selects)} session SELECTs for {STORM} handshakes"
        assert all(" in (" in s for s in statements.selects)
        # The sliding expiry: one UPDATE per batch (an executemany when the batch has several), not one each.
        assert 1 <= len(statements.updates) <= len(statements.selects) and any(many for _, many in statements.updates)
        async with engine.connect() as conn:
            slid = (await conn.execute(select(sessions.c.last_seen).where(sessions.c.id == token_digest(tokens[-1])))).scalar_one()
        assert utcnow() - slid < timedelta(minutes=1), "the session's expiry did not slide"
        print(f"storm: {STORM} handshakes in {elapsed:.2f} s, {len(statements.selects)} SELECTs, {len(statements.updates)} UPDATEs")


async def handshake_status(http: aiohttp.ClientSession, url: str, token: str) -> int:
    """101 when the socket opens (and says hello), else the refusal's status."""
    try:
        async with http.ws_connect(f"{url}/ws?token={token}") as ws:
            assert json.loads((await ws.receive(timeout=10)).data)["type"] == "hello"
            return 101
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status


async def test_this_nodes_logout_and_disable_end_cached_sessions_at_once(tmp_path):
    async with running_node(f"sqlite+aiosqlite:///{tmp_path}/node.sqlite3", tmp_path, auth={"socket_recheck_seconds": 0.2}) as node:
        assert node.service.settings.auth.session_cache_seconds == 5  # the default: the cache is on
        engine = node.service.accounts.engine
        agent, supervisor = node.tokens["agent"], node.tokens["supervisor"]
        assert await handshake_status(node.http, node.url, agent) == 101
        statements = Statements(engine)
        try:
            assert await handshake_status(node.http, node.url, agent) == 101
            assert (await node.call("GET", "/api/v1/session", "agent"))[0] == 200
        finally:
            statements.close()
        assert statements.selects == []  # both from this node's cache
        assert (await node.call("DELETE", "/api/v1/session", "agent"))[0] == 204
        assert await handshake_status(node.http, node.url, agent) == 401  # at once: no cache seconds to wait
        assert (await node.call("GET", "/api/v1/session", "agent"))[0] == 401

        async with node.http.ws_connect(f"{node.url}/ws?token={supervisor}") as open_socket:
            assert json.loads((await open_socket.receive(timeout=10)).data)["type"] == "hello"
            assert await handshake_status(node.http, node.url, supervisor) == 101  # cached now
            await node.service.accounts.disable("sam")
            assert await handshake_status(node.http, node.url, supervisor) == 401
            while (message := await open_socket.receive(timeout=5)).type == aiohttp.WSMsgType.TEXT:
                pass  # replayed state, until the re-check closes it
            assert message.type == aiohttp.WSMsgType.CLOSE and message.data == 4401


@pytest.mark.postgres
async def test_a_handshake_is_503_while_the_store_is_down_and_opens_again_after(tmp_path, proxy):
    """The only 503: the database cannot be reached.  Never 401 (the browser
    would go to the login page because PostgreSQL restarted), and the same
    session opens its socket again once the database is back."""
    async with scratch_database("screenpop_storm") as dsn:
        through = make_url(dsn).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        async with running_node(through, tmp_path) as node:
            fresh = await node.login("alice", PASSWORD)  # never looked up: not in the cache
            await proxy.cut()
            try:
                async with node.http.ws_connect(f"{node.url}/ws?token={fresh}") as _:
                    raise AssertionError("the socket opened while the database was down")
            except aiohttp.WSServerHandshakeError as exc:
                assert exc.status == 503 and exc.headers.get("Retry-After")
            await proxy.restore()
            deadline = time.monotonic() + 15
            while (status := await handshake_status(node.http, node.url, fresh)) == 503 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert status == 101
