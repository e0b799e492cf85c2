"""The audit log: stored and searched on SQLite and PostgreSQL, written off
the request path, and fed by the pop delivery."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from screenpop.security.audit import (
    CARD_VIEWED, POP_DELIVERED, AuditEvent, AuditQuery, AuditStore, AuditTrail, customer_of_card, customer_of_keys,
)
from screenpop.security.delivery import GuardedDelivery, record_delivered
from screenpop.security.privacy import PrivacyRules

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


async def test_search_filters_and_orders_newest_first(engine):
    store = AuditStore(engine)
    await store.write([
        AuditEvent("alice", CARD_VIEWED, "call", "c-1", "agent", "sales:c-17", "10.0.0.1", {"agent_id": "1001"}, T0),
        AuditEvent("sam", CARD_VIEWED, "call", "c-2", "supervisor", "billing:a-9 sales:c-18", None, {}, T0 + timedelta(hours=1)),
        AuditEvent("agent:1001", POP_DELIVERED, "call", "c-1", "agent", "sales:c-17", None, {}, T0 + timedelta(days=1)),
        AuditEvent("ada", "token.revoked", "token", "erp", "admin", None, None, {}, T0 + timedelta(days=2)),
    ])
    everything = await store.search(AuditQuery())
    assert everything.total == 4 and [e.target_id for e in everything.items] == ["erp", "c-1", "c-2", "c-1"]
    assert everything.items[-1].detail == {"agent_id": "1001"} and everything.items[-1].at == T0
    assert [e.actor for e in (await store.search(AuditQuery(action=CARD_VIEWED))).items] == ["sam", "alice"]
    assert [e.action for e in (await store.search(AuditQuery(target_id="c-1"))).items] == [POP_DELIVERED, CARD_VIEWED]
    assert (await store.search(AuditQuery(customer="sales:c-17"))).total == 2
    assert (await store.search(AuditQuery(customer="%"))).total == 0  # LIKE wildcards are literal
    assert (await store.search(AuditQuery(actor="alice"))).items[0].remote == "10.0.0.1"
    window = await store.search(AuditQuery(since=T0 + timedelta(minutes=1), until=T0 + timedelta(days=2)))
    assert [e.actor for e in window.items] == ["agent:1001", "sam"]
    page = await store.search(AuditQuery(limit=1, offset=1))
    assert page.total == 4 and [e.target_id for e in page.items] == ["c-1"]


async def test_hostile_and_oversized_values_are_stored_cut_not_refused(engine):
    store = AuditStore(engine)
    name = "<script>alert(1)</script>'; DROP TABLE audit_log; --" + "é" * 300
    await store.write([AuditEvent(name, CARD_VIEWED, "call", "c" * 500, customer="x" * 1000, detail={"k": name})])
    (entry,) = (await store.search(AuditQuery())).items
    assert entry.actor == name[:128] and len(entry.target_id) == 128 and entry.detail == {"k": name}


class FailingStore:
    def __init__(self):
        self.down = True
        self.rows = []

    async def write(self, events):
        await asyncio.sleep(0)
        if self.down:
            raise ConnectionError("database down")
        self.rows.extend(events)
        return len(events)


async def test_record_never_waits_and_entries_survive_an_outage():
    store = FailingStore()
    trail = AuditTrail(store, flush_interval=0.01, max_pending=3)
    await trail.start()
    try:
        for i in range(5):
            trail.record("alice", CARD_VIEWED, "call", f"c-{i}")  # plain call: returns at once
        assert trail.pending == 3 and trail.stats.dropped == 2  # bounded, oldest dropped and counted
        await asyncio.sleep(0.05)
        assert trail.stats.failures >= 1 and trail.pending == 3
        store.down = False
        for _ in range(200):
            if not trail.pending:
                break
            await asyncio.sleep(0.02)
        assert [e.target_id for e in store.rows] == ["c-2", "c-3", "c-4"]
    finally:
        await trail.stop()


async def test_stop_flushes_what_is_queued(engine):
    trail = AuditTrail(AuditStore(engine), flush_interval=60)
    await trail.start()
    trail.record("ada", "user.disabled", "user", "alice", actor_role="admin")
    await trail.stop()
    assert (await AuditStore(engine).search(AuditQuery())).items[0].target_id == "alice"


def test_customer_names_are_stable_keys():
    assert customer_of_keys({"sales": ["c-17"], "billing": ["a-9"]}) == "billing:a-9 sales:c-17"
    assert customer_of_keys({}) is None and customer_of_keys(None) is None
    card = {"persons": [{"keys": {"sales": ["c-1"]}}, {"keys": {"sales": ["c-2"], "support": ["t-5"]}}]}
    assert customer_of_card(card) == "sales:c-1 sales:c-2 support:t-5"
    assert customer_of_card(None) is None


class Recorder:
    def __init__(self):
        self.sent = []

    def send_to_agent(self, agent_id, message):
        self.sent.append((agent_id, message))
        return 1

    def send_to_supervisors(self, message):
        self.sent.append(("supervisors", message))
        return 1


async def test_guarded_delivery_masks_for_agents_and_leaves_the_audit_to_the_sockets():
    trail = AuditTrail(FailingStore())
    inner = Recorder()
    delivery = GuardedDelivery(inner, trail, PrivacyRules(partial_phone_roles=frozenset({"agent"})))
    card = {"status": "known", "e164": "+34600111222", "persons": [{"keys": {"sales": ["c-17"]},
                                                                      "history": [{"notes": ["card 4111111111111111"]}]}]}
    pop = {"type": "pop", "call_id": "c-1", "caller": {"number": "+34600111222"}, "card": card}
    assert delivery.send_to_agent("1001", pop) == 1
    delivery.send_to_agent("1001", {"type": "retract", "call_id": "c-1"})
    delivery.send_to_supervisors({"type": "queue", "waiting": [{"caller_number": "+34600111222"}]})
    assert list(trail._pending) == []  # published is not shown: the socket's node audits (record_delivered)
    assert not record_delivered(trail, "1001", pop, 0) and list(trail._pending) == []
    assert not record_delivered(trail, "1001", {"type": "retract", "call_id": "c-1"}, 1)
    assert record_delivered(trail, "1001", pop, 1)
    (event,) = list(trail._pending)
    assert (event.actor, event.action, event.target_id, event.customer) == ("agent:1001", POP_DELIVERED, "c-1", "sales:c-17")
    sent = inner.sent[0][1]
    assert sent["caller"]["number"] == "+*******1222" and sent["card"]["e164"] == "+*******1222"
    assert sent["card"]["persons"][0]["history"][0]["notes"] == ["card ************1111"]
    assert pop["caller"]["number"] == "+34600111222"  # the orchestrator's own copy is untouched
    assert inner.sent[2][1]["waiting"][0]["caller_number"] == "+34600111222"  # supervisors' feed: not an agent's
    assert delivery.privacy.view_all([pop], "agent")[0]["caller"]["number"] == "+*******1222"  # the replay's masking
