"""Who may touch a call record, per role, over real HTTP and WebSockets
against a real node (``ScreenpopService``, its whole app) on SQLite and on
a scratch PostgreSQL.

The roles: an agent the call was offered to (rung, answered or transferred
to), an agent it was not offered to, support staff, a supervisor, an admin.
A call not offered to an agent is a 404 for that agent everywhere (API and
page), exactly like a call that does not exist; support staff read and
write every call but neither supervise nor administer, and get no socket.
"""
from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from screenpop.cli import main
from telephony.events import CallAnswered, CallEnded, CallQueued, CallRinging, CallTransferred
from tests.pg import scratch_database
from tests.security.node import PASSWORD, running_node
from tests.wsclient import collect, drain

TS = "2026-11-23T10:00:00.000000Z"
ANA = "+34912345678"
OFFERED, OTHER = "agent", "other-agent"  # alice (1001) and bob (1002)
ROLES = (OFFERED, OTHER, "support", "supervisor", "admin")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def dsn(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/roles.sqlite3"
    else:
        async with scratch_database("screenpop_roles") as found:
            yield found


async def log_calls(node) -> None:
    """Three calls of one caller: one rang alice (and bob answered it), one
    only bob, and one bob took and transferred to alice (no ring on record)."""
    writer = node.service.interactions.writer
    for call_id, rung, answered, moved_to in (("c-both", ("1001", "1002"), "1002", None), ("c-bob", ("1002",), "1002", None),
                                               ("c-moved", ("1002",), "1002", "1001")):
        writer.submit(CallQueued(call_id, TS, "support", ANA, "Ana", 1))
        for agent in rung:
            writer.submit(CallRinging(call_id, TS, agent, "support", ANA, "Ana"))
        writer.submit(CallAnswered(call_id, TS, answered, "support", 3.0))
        if moved_to:
            writer.submit(CallTransferred(call_id, TS, from_agent=answered, to_agent=moved_to))
        writer.submit(CallEnded(call_id, TS, answered, "completed", 30.0))
    assert await writer.flush()


async def with_everyone(node) -> None:
    await node.service.accounts.create_user("bob", PASSWORD, "agent", "1002")
    node.tokens[OTHER] = await node.login("bob")


# Who may open which call: alice the two offered to her, bob all three
# (he was rung for each), everyone else everything.
MAY = {OFFERED: {"c-both", "c-moved"}, OTHER: {"c-both", "c-bob", "c-moved"}}
CALLS = ("c-both", "c-bob", "c-moved")


def allowed(role: str) -> set[str]:
    return MAY.get(role, set(CALLS))


async def page_status(node, role: str, path: str) -> tuple[int, str]:
    async with node.http.get(node.url + path, headers={**node.bearer(role), "Accept": "text/html"}, allow_redirects=False) as r:
        return r.status, r.headers.get("Location", "")


async def test_each_role_reads_writes_and_searches_only_the_calls_it_may(dsn, tmp_path):
    async with running_node(dsn, tmp_path) as node:
        await with_everyone(node)
        await log_calls(node)
        for role in ROLES:
            # the search, by number in another format than the PBX sent: each sees its calls, and the total says so
            status, found = await node.call("GET", "/api/v1/interactions?number=0034912345678", role)
            assert status == 200, (role, found)
            assert {c["call_id"] for c in found["items"]} == allowed(role) and found["total"] == len(allowed(role)), role
            status, everything = await node.call("GET", "/api/v1/interactions", role)
            assert {c["call_id"] for c in everything["items"]} == allowed(role), role
            for call_id in CALLS:
                may = call_id in allowed(role)
                status, body = await node.call("GET", f"/api/v1/interactions/{call_id}", role)
                assert (status, body.get("call_id") if may else body["error"]) == ((200, call_id) if may else (404, "no such call")), (role, call_id)
                status, body = await node.call("PUT", f"/api/v1/interactions/{call_id}/outcome", role,
                                               json={"disposition": "resolved", "notes": f"by {role}"})
                assert status == (200 if may else 404), (role, call_id, body)
                status, body = await node.call("POST", f"/api/v1/interactions/{call_id}/notes", role, json={"text": f"{role} was here"})
                assert status == (201 if may else 404), (role, call_id, body)
                assert (await page_status(node, role, f"/interactions/{call_id}"))[0] == (200 if may else 404), (role, call_id)
            # to an agent, a call that does not exist looks the same as one not offered
            assert (await node.call("GET", "/api/v1/interactions/c-none", role))[0] == 404
            if role in MAY:
                assert (await page_status(node, role, "/interactions/c-none"))[0] == 404

        # the refused writes changed nothing: c-bob has only what its allowed roles wrote
        status, record = await node.call("GET", "/api/v1/interactions/c-bob", "admin")
        authors = {n["text"] for n in record["notes"]}
        assert f"{OFFERED} was here" not in authors and f"by {OFFERED}" not in authors
        assert {f"{r} was here" for r in ROLES if r != OFFERED} <= authors


async def test_support_logs_outcomes_but_neither_supervises_nor_administers_nor_gets_a_socket(dsn, tmp_path):
    async with running_node(dsn, tmp_path, privacy={"partial_phone_roles": ["support"]}) as node:
        await with_everyone(node)
        await log_calls(node)
        status, saved = await node.call("PUT", "/api/v1/interactions/c-bob/outcome", "support",
                                        json={"disposition": "callback", "follow_up": "2026-12-01", "notes": "customer wants a call"})
        assert status == 200 and saved["disposition"] == "callback" and saved["follow_up"] == "2026-12-01"
        assert saved["outcome_by"] == "sue"
        assert saved["caller_number"].endswith("5678") and "*" in saved["caller_number"]  # partial_phone_roles knows support
        assert (await node.call("GET", "/api/v1/interactions/c-bob", "supervisor"))[1]["caller_number"] == ANA

        for path in ("/api/v1/queues", "/api/v1/queues/support", "/api/v1/agents", "/api/v1/agents/1001",
                     "/api/v1/audit", "/api/v1/calls", "/api/v1/pops"):
            status, body = await node.call("GET", path, "support")
            assert status == 403, (path, status, body)
        for path in ("/supervisor", "/supervisor/queues/support", "/supervisor/agents/1001"):
            assert (await page_status(node, "support", path))[0] == 403, path
        assert await page_status(node, "support", "/") == (302, "/interactions")  # home: the search
        assert (await page_status(node, "support", "/interactions"))[0] == 200

        ws_url = node.url.replace("http", "ws", 1) + "/ws"
        for ask in ("", "&agent=1001"):  # neither the supervisors' feed nor an agent's pops
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                async with node.http.ws_connect(f"{ws_url}?token={node.tokens['support']}{ask}"):
                    pass
            assert refused.value.status == 403

        status, ui = await node.call("GET", "/api/v1/config/ui", "support")
        assert status == 200 and ui["role"] == "support" and ui["agent_id"] is None and ui["dispositions"]


async def test_an_agent_socket_never_receives_a_call_not_offered_to_it(tmp_path):
    async with running_node(f"sqlite+aiosqlite:///{tmp_path}/ws.sqlite3", tmp_path) as node:
        await with_everyone(node)
        ws_url = node.url.replace("http", "ws", 1) + "/ws"
        alice = await node.http.ws_connect(f"{ws_url}?token={node.tokens[OFFERED]}")
        bob = await node.http.ws_connect(f"{ws_url}?token={node.tokens[OTHER]}")
        try:
            for sock in (alice, bob):
                assert (await sock.receive_json(timeout=5))["type"] == "hello"
            orchestrator = node.service.orchestrator
            await orchestrator.handle(CallQueued("c-live", TS, "support", ANA, "Ana", 1))
            await orchestrator.handle(CallRinging("c-live", TS, "1001", "support", ANA, "Ana"))
            await orchestrator.handle(CallAnswered("c-live", TS, "1001", "support", 2.0))
            got = await collect(_Frames(alice), lambda m: m.get("type") == "pop" and m.get("call_id") == "c-live")
            assert got[-1]["call_id"] == "c-live"
            heard = await drain(_Frames(bob), 1.0)
            assert [m for m in heard if "c-live" in json.dumps(m)] == [], heard
            status, calls = await node.call("GET", "/api/v1/calls", OTHER)  # nor the calls in progress
            assert status == 200 and calls["items"] == []
        finally:
            await alice.close()
            await bob.close()


class _Frames:
    """aiohttp's socket as the ``recv()`` that tests.wsclient reads."""

    def __init__(self, sock):
        self.sock = sock

    async def recv(self):
        message = await self.sock.receive()
        if message.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"socket closed: {message}")
        return message.data


async def test_the_cli_adds_a_support_account_without_an_agent_id(tmp_path, monkeypatch, capsys):
    dsn = f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite3"
    monkeypatch.setenv("SCREENPOP_STORAGE__DSN", dsn)
    (tmp_path / "pw").write_text("a long support password 42\n")

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    code, out, err = await asyncio.to_thread(run, "users", "add", "sue", "--role", "support", "--password-file", str(tmp_path / "pw"))
    assert code == 0 and "role=support" in out, (out, err)
    code, out, err = await asyncio.to_thread(run, "users", "add", "sid", "--role", "support", "--agent-id", "1009",
                                             "--password-file", str(tmp_path / "pw"))
    assert code == 2 and "a support account has no agent id" in err and "Traceback" not in err
    code, out, err = await asyncio.to_thread(run, "users", "list")
    assert code == 0 and "sue" in out and "support" in out and "sid" not in out
