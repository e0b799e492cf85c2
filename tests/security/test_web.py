"""The security rules through the real node's HTTP edge: masking in API
responses, card numbers masked before they are stored, the audit trail of
the API and ``GET /api/v1/audit`` (its filters and its refusals).  Token
revocation through the CLI is in test_tokens_privacy_audit.py."""
from __future__ import annotations

from sqlalchemy import select

from screenpop.interactions.models import interaction_notes
from screenpop.interactions.record import InteractionRecord, with_lookup
from screenpop.security.plugin import SECURITY
from tests.security.node import running_node

VISA = "4111111111111111"


async def seed_call(node, call_id="c-1"):
    record = InteractionRecord(call_id, caller_number="+34600111222", agents_rung=["1001"],  # offered to alice
                               started_at="2026-11-23T09:00:00.000000Z", ended_at="2026-11-23T09:05:00.000000Z")
    record = with_lookup(record, "+34600111222", "Ana Ruiz", {"sales": ["c-17"]}, "known", "2026-11-23T09:00:00.100000Z")
    await node.service.interactions.store.upsert([record])


async def audit_entries(node, **filters):
    await node.app[SECURITY].audit.flush()
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    status, body = await node.call("GET", f"/api/v1/audit?{query}", "admin")
    assert status == 200, body
    return body


async def test_agents_see_partial_phones_and_nobody_sees_card_numbers(tmp_path):
    async with running_node(f"sqlite+aiosqlite:///{tmp_path}/n.sqlite3", tmp_path,
                            privacy={"partial_phone_roles": ["agent"], "phone_visible_digits": 3,
                                     "mask_cards_on_save": False}) as node:
        await seed_call(node)
        status, note = await node.call("POST", "/api/v1/interactions/c-1/notes", "agent", json={"text": f"paid {VISA}"})
        assert status == 201 and note["text"] == "paid ************1111"
        async with node.service.interactions.engine.connect() as conn:  # mask_cards_on_save = false: stored whole
            assert (await conn.execute(select(interaction_notes.c.text))).scalar_one() == f"paid {VISA}"
        status, agent_view = await node.call("GET", "/api/v1/interactions/c-1", "agent")
        assert status == 200 and agent_view["caller_number"] == "+********222"
        assert agent_view["notes"][0]["text"] == "paid ************1111"
        status, found = await node.call("GET", "/api/v1/interactions?number=600111222", "agent")
        assert found["total"] == 1 and found["items"][0]["caller_number"] == "+********222"
        status, sup_view = await node.call("GET", "/api/v1/interactions/c-1", "supervisor")
        assert sup_view["caller_number"] == "+34600111222" and sup_view["notes"][0]["text"] == "paid ************1111"


async def test_card_numbers_are_masked_before_they_are_stored(node):
    await seed_call(node)
    status, record = await node.call("PUT", "/api/v1/interactions/c-1/outcome", "agent",
                                     json={"disposition": "resolved", "notes": "card 4111 1111 1111 1111 exp 12/29"})
    assert status == 200, record
    await node.call("POST", "/api/v1/interactions/c-1/notes", "agent", json={"text": f"again {VISA}"})
    async with node.service.interactions.engine.connect() as conn:
        stored = (await conn.execute(select(interaction_notes.c.text))).scalars().all()
    assert sorted(stored) == ["again ************1111", "card **** **** **** 1111 exp 12/29"]
    assert all(VISA not in text for text in stored)


async def test_who_opened_and_changed_which_call_is_audited_and_admins_can_search_it(node):
    await seed_call(node)
    assert (await node.call("GET", "/api/v1/interactions/c-1", "agent"))[0] == 200
    assert (await node.call("GET", "/api/v1/interactions/c-1", "supervisor"))[0] == 200
    assert (await node.call("PUT", "/api/v1/interactions/c-1/outcome", "agent", json={"disposition": "sale", "notes": "x"}))[0] == 200
    assert (await node.call("POST", "/api/v1/interactions/c-1/notes", "supervisor", json={"text": "checked"}))[0] == 201

    viewed = await audit_entries(node, action="card.viewed")
    assert [(e["actor"], e["actor_role"], e["target_id"], e["customer"]) for e in viewed["items"]] == [
        ("sam", "supervisor", "c-1", "sales:c-17"), ("alice", "agent", "c-1", "sales:c-17")]
    assert viewed["items"][1]["detail"]["agent_id"] == "1001" and viewed["items"][1]["remote"] == "127.0.0.1"
    changed = await audit_entries(node, target="c-1")
    actions = [(e["actor"], e["action"]) for e in changed["items"]]
    assert ("alice", "outcome.set") in actions and ("sam", "note.added") in actions
    outcome = next(e for e in changed["items"] if e["action"] == "outcome.set")
    assert outcome["detail"]["disposition"] == "sale" and "x" not in outcome["detail"].values()  # no note text copied
    assert (await audit_entries(node, actor="alice", customer="sales:c-17"))["total"] == 2
    assert (await audit_entries(node, actor="nobody"))["total"] == 0
    searched = await audit_entries(node, action="audit.searched")
    assert searched["total"] >= 4 and searched["items"][0]["actor"] == "ada"  # reading the log leaves a trace


async def test_the_audit_api_refuses_bad_filters_with_reasons(node):
    for query, reason in (("action=card.opened", "action must be one of"), ("since=yesterday", "since must be a date"),
                          ("limit=0", "limit must be between"), ("limit=x", "limit must be an integer"),
                          ("actor=" + "a" * 300, "longer than")):
        status, body = await node.call("GET", f"/api/v1/audit?{query}", "admin")
        assert status == 400 and reason in body["error"], (query, body)
    status, body = await node.call("GET", "/api/v1/audit?until=2026-11-23", "admin")
    assert status == 200 and body["items"] == []
