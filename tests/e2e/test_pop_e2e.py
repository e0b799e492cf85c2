"""End to end, nothing mocked: the PBX simulator speaks AMI over TCP to the
whole service (connection, tracker, orchestrator, lookup on seeded demo
databases, interaction log, web app), and independent `websockets` clients
logged in as agents receive the pops.  Then the REST API shows what the
interaction log holds."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
import websockets

from tests.stack import Stack
from tests.wsclient import collect

ANA = "+34912345678"  # a demo persona present in all three systems: balance 125.40 EUR, an open ticket


@pytest.fixture
async def stack(demo_dbs, tmp_path):
    # the socket re-checks its session often: a logout closes it within the test's wait
    async with Stack(demo_dbs, tmp_path, simulator_seed=7, auth={"socket_recheck_seconds": 0.2}) as stack:
        yield stack


async def test_ring_all_call_pops_the_ringing_agents_and_is_logged(stack):
    alice, bob, dave = [await stack.socket(name) for name in ("agent1001", "agent1002", "agent1004")]
    # support rings 1001 and 1002 at once; 1001 answers after 1 s, 1002 is slower
    linkedid = await stack.simulator.place_call("queue_answered", ANA, "Ana Garcia", queue="support",
                                                agents=["1001", "1002"], speed=10)
    to_alice = await collect(alice, lambda m: m["type"] == "call" and m["event"] == "ended")
    to_bob = await collect(bob, lambda m: m["type"] == "retract")

    pop = next(m for m in to_alice if m["type"] == "pop")
    assert pop["call_id"] == linkedid and pop["queue"] == "support"
    card = pop["card"]
    assert card["status"] == "known" and card["e164"] == ANA
    person = card["persons"][0]
    assert "Ana" in person["name"]
    assert person["billing"]["balance"] == "125.40"
    assert [m["event"] for m in to_alice if m["type"] == "call"] == ["answered", "ended"]
    assert [m["type"] for m in to_bob] == ["pop", "retract"]
    assert to_bob[-1]["reason"] == "answered elsewhere"
    with pytest.raises(asyncio.TimeoutError):  # 1004 is not in support: nothing for Dave
        await asyncio.wait_for(dave.recv(), 0.3)

    # The interaction log, through the API (a supervisor searches by a national form of the number)
    async def logged():
        while True:
            status, body = await stack.api_as("GET", "/api/v1/interactions?number=912345678", "supervisor")
            assert status == 200, body
            ended = [i for i in body["items"] if i["call_id"] == linkedid and i.get("ended_at")]
            if ended:
                return ended[0]
            await asyncio.sleep(0.05)

    record = await asyncio.wait_for(logged(), 5)
    assert record["answered_by"] == "1001" and record["queue"] == "support"
    assert set(record["agents_rung"]) == {"1001", "1002"}
    assert record["caller_e164"] == ANA

    # Alice records the outcome; support staff find the call by disposition
    status, saved = await stack.api_as("PUT", f"/api/v1/interactions/{linkedid}/outcome", "agent1001",
                                    json={"disposition": "resolved", "notes": "Paid by card <b>today</b>"})
    assert status == 200, saved
    status, found = await stack.api_as("GET", "/api/v1/interactions?disposition=resolved", "supervisor")
    assert [i["call_id"] for i in found["items"]] == [linkedid]
    today = datetime.now(timezone.utc).date().isoformat()
    status, same_day = await stack.api_as("GET", f"/api/v1/interactions?since={today}&until={today}", "supervisor")
    assert status == 200 and linkedid in [i["call_id"] for i in same_day["items"]]
    status, bad = await stack.api_as("PUT", f"/api/v1/interactions/{linkedid}/outcome", "agent1001",
                                  json={"disposition": "made-up"})
    assert status == 400 and "disposition" in bad["error"]
    for ws in (alice, bob, dave):
        await ws.close()


async def test_blind_transfer_pops_the_new_agent_and_reconnect_replays(stack):
    erin = await stack.socket("agent1005")
    bob_token = await stack.token("agent1002")  # logged in, desktop not open yet
    placed = asyncio.create_task(stack.simulator.place_call(
        "blind_transfer", "+14155550100", "Bob Smith", agents=["1005"], target="1002", speed=2, transfer_after=1.0))
    first = await collect(erin, lambda m: m["type"] == "pop")
    linkedid = first[-1]["call_id"]
    assert first[-1]["card"]["persons"][0]["name"].startswith("Bob")
    # Bob (agent 1002) opens the desktop while the call is already with him: the pop is replayed
    to_erin = await collect(erin, lambda m: m["type"] == "call" and m["event"] == "transferred")
    assert to_erin[-1]["to"] == "1002"
    bob = await stack.socket("agent1002", bob_token)
    replayed = await collect(bob, lambda m: m["type"] == "pop" and m["call_id"] == linkedid)
    assert replayed[-1]["card"]["e164"] == "+14155550100"
    await collect(bob, lambda m: m["type"] == "call" and m["event"] == "ended", timeout=15)
    assert await placed == linkedid
    await erin.close()
    await bob.close()


async def test_roles_guard_the_api_and_health_reports_parts(stack):
    status, body = await stack.api_as("GET", "/api/v1/pops", "supervisor")
    assert status == 403
    async with stack.http.get(f"{stack.url}/api/v1/interactions") as r:
        assert r.status == 401
    async with stack.http.get(f"{stack.url}/healthz") as r:
        health = await r.json()
        assert r.status == 200 and health["parts"]["ami"]["ok"] and health["parts"]["storage"]["ok"]
    async with stack.http.get(f"{stack.url}/metrics") as r:
        metrics = await r.text()
    assert "screenpop_ami_connected 1.0" in metrics
    # the node's own health figures: audit queue, GC tuning (thawed once at start)
    assert "screenpop_audit_dropped 0.0" in metrics and "screenpop_audit_pending " in metrics
    figures = dict(line.rsplit(" ", 1) for line in metrics.splitlines() if line.startswith("screenpop_gc_"))
    assert float(figures["screenpop_gc_thaws"]) >= 1 and float(figures["screenpop_gc_frozen_objects"]) > 0
    async with stack.http.get(f"{stack.url}/api/v1/openapi.json") as r:
        spec = await r.json()
    routes = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    from agent_ui import access

    served = {(r.method, r.path) for r in access.listing(stack.service.app)
              if r.method != "HEAD" and (r.path.startswith("/api/") or r.path in ("/healthz", "/metrics"))}
    assert served - routes == set(), "routes missing from the OpenAPI document"


async def test_api_answers_json_for_unknown_routes_methods_and_unreadable_bodies(stack):
    async with stack.http.get(f"{stack.url}/api/v1/nope") as r:
        assert r.status == 404 and (await r.json())["error"]
    async with stack.http.patch(f"{stack.url}/api/v1/interactions") as r:
        assert r.status == 405 and "GET" in (await r.json())["error"]
    async with stack.http.post(f"{stack.url}/api/v1/session", data="[" * 7000,
                               headers={"Content-Type": "application/json"}) as r:
        assert r.status == 400 and "nested" in (await r.json())["error"]


async def test_logout_closes_the_agents_socket_with_the_session_ended_code(stack):
    token = await stack.token("agent1003")
    ws = await stack.socket("agent1003", token)
    async with stack.http.delete(f"{stack.url}/api/v1/session", headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status in (200, 204)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd.code == 4401
