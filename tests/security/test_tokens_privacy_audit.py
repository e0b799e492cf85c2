"""Integration tokens, PII masking, the audit trail and secrets in logs, on
a real node (its web app, its database: SQLite and a scratch PostgreSQL)
and through the real CLI."""
from __future__ import annotations

import asyncio
import json
import logging
import time

import sqlalchemy as sa
import websockets

from screenpop.cli import main
from telephony.events import CallEnded, CallQueued, CallRinging
from tests.security.node import CONFIG_BILLING_TOKEN, PASSWORD, running_node

TS = "2026-11-23T10:00:00.000000Z"
PAN = "4111 1111 1111 1111"  # a Luhn-valid test card number


async def until(predicate, timeout: float = 5.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(step)


async def cli(monkeypatch, dsn: str, *argv: str, capsys=None) -> tuple[int, str]:
    monkeypatch.setenv("SCREENPOP_STORAGE__DSN", dsn)
    code = await asyncio.to_thread(main, list(argv))  # the CLI runs its own event loop
    out = capsys.readouterr().out if capsys is not None else ""
    return code, out


async def billing_push(node, token: str) -> int:
    async with node.http.put(f"{node.url}/api/v1/billing/balances/AC-000001", json={"balance": "10.00", "currency": "EUR"},
                             headers={"Authorization": f"Bearer {token}"}) as r:
        return r.status


async def a_logged_call(node, call_id: str = "call-1", number: str = "+34912345678") -> str:
    writer = node.service.interactions.writer
    writer.submit(CallQueued(call_id, TS, "support", number, "Ana", 1))
    writer.submit(CallRinging(call_id, TS, "1001", "support", number, "Ana"))  # offered to alice
    writer.submit(CallEnded(call_id, TS, None, "abandoned", 0.0))
    assert await writer.flush()
    return call_id


async def test_a_token_made_by_the_cli_works_on_the_node_until_it_is_revoked(dsn, tmp_path, monkeypatch, capsys):
    async with running_node(dsn, tmp_path) as node:
        code, out = await cli(monkeypatch, dsn, "tokens", "create", "erp-billing", "--scope", "billing", capsys=capsys)
        token = out.strip()
        assert code == 0 and len(token) >= 32
        assert await until(lambda: _status_is(node, token, 200)), "the new token was never accepted"
        assert await billing_push(node, CONFIG_BILLING_TOKEN) == 200  # the config file's token still works
        assert await billing_push(node, "not-a-token") == 401

        async with node.service.interactions.engine.connect() as conn:  # only a digest is stored
            rows = (await conn.execute(sa.text("SELECT * FROM integration_tokens"))).mappings().all()
        assert rows and token not in json.dumps([dict(r) for r in rows], default=str)

        code, _ = await cli(monkeypatch, dsn, "tokens", "revoke", "erp-billing", capsys=capsys)
        assert code == 0
        assert await until(lambda: _status_is(node, token, 401)), "the revoked token was still accepted"
        code, out = await cli(monkeypatch, dsn, "tokens", "list", "--json", capsys=capsys)
        listed = [json.loads(line) for line in out.splitlines()]
        assert [(t["name"], bool(t.get("revoked_at"))) for t in listed] == [("erp-billing", True)]
        assert token not in out

        status, audit = await node.call("GET", "/api/v1/audit?target=erp-billing", "admin")
        assert status == 200
        assert {e["action"] for e in audit["items"]} == {"token.created", "token.revoked"}


async def _status_is(node, token: str, status: int) -> bool:
    return await billing_push(node, token) == status


async def test_card_numbers_never_reach_the_database_and_phones_are_partial_for_agents(dsn, tmp_path):
    async with running_node(dsn, tmp_path, privacy={"partial_phone_roles": ["agent"]}) as node:
        call_id = await a_logged_call(node)
        status, saved = await node.call("PUT", f"/api/v1/interactions/{call_id}/outcome", "agent",
                                        json={"disposition": "resolved", "notes": f"paid with {PAN}, thanks"})
        assert status == 200, saved
        status, note = await node.call("POST", f"/api/v1/interactions/{call_id}/notes", "supervisor",
                                       json={"text": f"card {PAN.replace(' ', '-')} refunded"})
        assert status == 201, note
        async with node.service.interactions.engine.connect() as conn:
            stored = json.dumps([dict(r) for r in (await conn.execute(sa.text("SELECT * FROM interactions"))).mappings()], default=str)
            stored += json.dumps([dict(r) for r in (await conn.execute(sa.text("SELECT * FROM interaction_notes"))).mappings()], default=str)
        assert "4111111111111111" not in stored.replace(" ", "").replace("-", "")
        assert "1111" in stored  # the last four stay, so the agent can still tell which card

        _, as_agent = await node.call("GET", f"/api/v1/interactions/{call_id}", "agent")
        _, as_supervisor = await node.call("GET", f"/api/v1/interactions/{call_id}", "supervisor")
        assert as_supervisor["caller_number"] == "+34912345678"
        assert as_agent["caller_number"] != "+34912345678" and as_agent["caller_number"].endswith("5678")
        assert "*" in as_agent["caller_number"]
        assert "4111" not in json.dumps(as_supervisor)  # and none on display either


async def test_pops_are_audited_and_masked_and_admins_alone_read_the_audit(dsn, tmp_path):
    async with running_node(dsn, tmp_path, privacy={"partial_phone_roles": ["agent"]}) as node:
        ws = await websockets.connect(f"{node.url.replace('http', 'ws')}/ws?token={node.tokens['agent']}")
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "hello"
        orchestrator = node.service.orchestrator
        await orchestrator.handle(CallQueued("call-9", TS, "support", "+34912345678", "Ana", 1))
        await orchestrator.handle(CallRinging("call-9", TS, "1001", "support", "+34912345678", "Ana"))
        pop = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert pop["type"] == "pop" and pop["call_id"] == "call-9"
        assert pop["caller"]["number"].endswith("5678") and "*" in pop["caller"]["number"]
        await ws.close()

        call_id = await a_logged_call(node, "call-10")
        assert (await node.call("GET", f"/api/v1/interactions/{call_id}", "supervisor"))[0] == 200

        async def audited():
            status, body = await node.call("GET", "/api/v1/audit", "admin")
            assert status == 200, body
            seen = {(e["action"], e["actor"], e["target_id"]) for e in body["items"]}
            return seen if {("pop.delivered", "agent:1001", "call-9"), ("card.viewed", "sam", "call-10")} <= seen else None

        await until(audited)
        for role in ("agent", "supervisor"):
            assert (await node.call("GET", "/api/v1/audit", role))[0] == 403
        assert (await node.call("GET", "/api/v1/audit?action=made.up", "admin"))[0] == 400


async def test_secrets_never_reach_the_logs(tmp_path, monkeypatch, caplog):
    """Passwords, session and integration tokens, the AMI secret and a DSN's
    password pass through the node's code paths with every log line kept."""
    from tests.pg import scratch_database

    ami_secret, db_password = "ami-SeCrEt-4242", "db-PaSsWoRd-4242"
    caplog.set_level(logging.DEBUG)
    async with scratch_database("screenpop_secrets") as clean:
        dsn = clean.replace("root@", f"root:{db_password}@")  # trust auth: accepted, and must be hidden
        async with running_node(dsn, tmp_path, ami={"secret": ami_secret}) as node:
            session_token = await node.login("alice")
            async with node.http.post(f"{node.url}/api/v1/session", json={"username": "alice", "password": "wrong-PW-4242"}) as r:
                assert r.status == 401
            assert await billing_push(node, CONFIG_BILLING_TOKEN) == 200
            assert await billing_push(node, "bogus-token-4242") == 401
            assert (await node.call("GET", "/api/v1/interactions", "supervisor"))[0] == 200
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "screenpop up" in logged  # the log was captured at all
    for secret in (PASSWORD, "wrong-PW-4242", session_token, *node.tokens.values(), CONFIG_BILLING_TOKEN,
                   "bogus-token-4242", ami_secret, db_password):
        assert secret not in logged, f"a secret reached the logs: {secret[:6]}…"
