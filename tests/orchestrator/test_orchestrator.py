"""Routing of pops, retracts and updates, fed with the real captures' call events.

The lookup here is an in-memory stand-in with controllable latency (the real
LookupService is exercised in tests/lookup and end to end in tests/e2e); the
delivery records what each agent would receive."""
from __future__ import annotations

import asyncio
from pathlib import Path

from customer_lookup.card import KNOWN, CustomerCard, Person, SourceStatus
from screenpop.orchestrator import Orchestrator
from telephony.replay import replay

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


class Recorder:
    def __init__(self):
        self.sent: list[tuple[str, dict]] = []

    def send_to_agent(self, agent_id, message):
        self.sent.append((agent_id, message))
        return 1

    def send_to_supervisors(self, message):
        return 0

    def to(self, agent):
        return [(m["type"], m.get("event") or m.get("reason")) for a, m in self.sent if a == agent]


class InMemoryLookup:
    """Stand-in for LookupService: a card per number, optional delay, optional late update."""

    def __init__(self, delay=0.0, late=None, fail=False):
        self.delay, self.late, self.fail = delay, late, fail
        self.calls: list[str | None] = []

    async def lookup(self, number, *, on_late=None):
        self.calls.append(number)
        await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("index down")
        card = CustomerCard(KNOWN, number, number, [Person(name=f"Customer {number}")], {"sales": SourceStatus("ok")})
        if self.late is not None and on_late is not None:
            async def later():
                await asyncio.sleep(self.late)
                card2 = CustomerCard(KNOWN, number, number, [Person(name=f"Customer {number}", billing={"balance": "9.00"})], {"sales": SourceStatus("ok"), "billing": SourceStatus("ok")})
                await on_late(card2)
            asyncio.create_task(later())
        return card


async def run_capture(name, lookup=None, **options):
    delivery = Recorder()
    lookup = lookup or InMemoryLookup()
    orchestrator = Orchestrator(lookup, delivery, **options)
    for event in replay([(FIXTURES / f"{name}.ami").read_bytes()]):
        orchestrator.handle(event)
        await asyncio.sleep(0)
    await orchestrator.drain()
    return orchestrator, delivery, lookup


async def test_ring_all_pops_both_agents_and_retracts_the_one_who_did_not_answer():
    orchestrator, delivery, lookup = await run_capture("support_answered")
    assert delivery.to("1001") == [("pop", None), ("call", "answered"), ("call", "ended")]
    assert delivery.to("1002") == [("pop", None), ("retract", "answered elsewhere")]
    pop = next(m for a, m in delivery.sent if a == "1001" and m["type"] == "pop")
    assert pop["caller"] == {"number": "+34912345678", "display": "912 34 56 78", "name": "Ana Garcia", "e164": "+34912345678"}
    assert pop["queue"] == "support" and pop["card"]["persons"][0]["name"] == "Customer +34912345678"
    assert lookup.calls == ["+34912345678"]  # one lookup per call, started at call.queued
    assert orchestrator.calls == {}


async def test_no_answer_moves_the_pop_to_the_next_agent():
    _, delivery, _ = await run_capture("sales_no_answer_then_next")
    assert delivery.to("1003") == [("pop", None), ("retract", "not answered")]
    assert delivery.to("1004") == [("pop", None), ("call", "answered"), ("call", "ended")]


async def test_abandoned_call_leaves_no_pop_behind():
    _, delivery, _ = await run_capture("billing_abandoned")
    assert delivery.to("1003") == [("pop", None), ("retract", "not answered")]


async def test_blind_transfer_pops_the_new_agent_once_with_the_origin():
    _, delivery, _ = await run_capture("blind_transfer")
    assert delivery.to("1005") == [("pop", None), ("call", "answered"), ("call", "transferred")]
    assert delivery.to("1002") == [("pop", None), ("call", "answered"), ("call", "ended")]
    pop = next(m for a, m in delivery.sent if a == "1002" and m["type"] == "pop")
    assert pop["transferred_from"] == "1005"


async def test_pop_on_answer_for_a_queue():
    _, delivery, _ = await run_capture("support_answered", pop_timing={"support": "answer"})
    assert delivery.to("1002") == []
    assert delivery.to("1001") == [("pop", None), ("call", "answered"), ("call", "ended")]


async def test_late_source_data_reaches_the_open_pop_as_a_card_update():
    lookup = InMemoryLookup(late=0.01)
    delivery = Recorder()
    orchestrator = Orchestrator(lookup, delivery)
    events = list(replay([(FIXTURES / "support_answered.ami").read_bytes()]))
    for event in events[:3]:  # queued, ringing 1002, ringing 1001
        await orchestrator.handle(event)
    await asyncio.sleep(0.05)
    updates = [(a, m["card"]["persons"][0]["billing"]) for a, m in delivery.sent if m["type"] == "card"]
    assert sorted(updates) == [("1001", {"balance": "9.00"}), ("1002", {"balance": "9.00"})]
    assert orchestrator.pops_for("1001")[0]["card"]["persons"][0]["billing"] == {"balance": "9.00"}


async def test_a_slow_lookup_of_one_call_does_not_delay_another_calls_pop():
    class PerNumber(InMemoryLookup):
        async def lookup(self, number, *, on_late=None):
            self.delay = 0.5 if number == "+34912345678" else 0.0
            return await super().lookup(number, on_late=on_late)

    delivery = Recorder()
    orchestrator = Orchestrator(PerNumber(), delivery)
    slow = list(replay([(FIXTURES / "support_answered.ami").read_bytes()]))
    fast = list(replay([(FIXTURES / "direct_call.ami").read_bytes()]))
    orchestrator.handle(slow[0]); orchestrator.handle(slow[1])
    task = orchestrator.handle(fast[0])  # direct call rings 1004
    await asyncio.wait_for(task, timeout=0.2)
    assert delivery.to("1004") == [("pop", None)]
    assert delivery.to("1002") == []  # still waiting for its card
    await orchestrator.drain()
    assert delivery.to("1002") == [("pop", None)]


async def test_a_failed_lookup_still_pops_without_a_card():
    _, delivery, _ = await run_capture("direct_call", lookup=InMemoryLookup(fail=True))
    pop = next(m for a, m in delivery.sent if m["type"] == "pop")
    assert pop["card"] is None and pop["caller"]["number"] == "912345680"


async def test_reconnecting_agent_gets_the_pops_of_calls_in_progress():
    delivery = Recorder()
    orchestrator = Orchestrator(InMemoryLookup(), delivery)
    events = list(replay([(FIXTURES / "support_answered.ami").read_bytes()]))
    for event in events[:4]:  # up to call.answered by 1001
        await orchestrator.handle(event)
    (pop,) = orchestrator.pops_for("1001")
    assert pop["state"] == "answered" and pop["call_id"] == "1795383106.0"
    assert orchestrator.pops_for("1002") == []


async def test_calls_snapshot_lists_calls_in_progress_with_their_agents():
    delivery = Recorder()
    orchestrator = Orchestrator(InMemoryLookup(), delivery)
    events = list(replay([(FIXTURES / "support_answered.ami").read_bytes()]))
    answered = next(i for i, e in enumerate(events) if e.type == "call.answered")
    for event in events[: answered + 1]:
        orchestrator.handle(event)
    await orchestrator.drain()
    (call,) = orchestrator.calls_snapshot()
    agent = events[answered].agent
    assert call["call_id"] == events[0].call_id and call["state"] == "answered"
    assert call["answered_by"] == agent and agent in call["agents"]
    assert call["customer"] == f"Customer {events[0].caller_number}"
    (pop,) = orchestrator.pops_for(agent)
    assert pop["state"] == "answered" and pop["answered_at"] == events[answered].ts
    for event in events[answered + 1:]:
        orchestrator.handle(event)
    await orchestrator.drain()
    assert orchestrator.calls_snapshot() == []


class RecordingWriter:
    def __init__(self):
        self.events, self.cards = [], []

    def submit(self, event):
        self.events.append(event.type)

    def submit_lookup(self, call_id, card):
        self.cards.append((call_id, card.status))


async def test_abandoned_call_still_logs_its_lookup_and_forgets_the_cached_card():
    class ForgetfulLookup(InMemoryLookup):
        forgotten: list = []

        async def invalidate_number(self, number):
            self.forgotten.append(number)

    writer, lookup = RecordingWriter(), ForgetfulLookup()
    orchestrator = Orchestrator(lookup, Recorder(), writer)
    events = list(replay([(FIXTURES / "billing_abandoned.ami").read_bytes()]))
    for event in events:
        orchestrator.handle(event)
    await orchestrator.drain()
    assert writer.cards == [(events[0].call_id, "known")]
    assert orchestrator.metrics.lookups.labels("sales", "ok")._value.get() == 1
    assert lookup.forgotten == [events[0].caller_number]
    assert writer.events == [e.type for e in events]


async def test_late_card_reaches_the_interaction_log():
    writer = RecordingWriter()
    await run_capture_with(writer, "support_answered", InMemoryLookup(late=0.05))
    assert len(writer.cards) == 2  # the first card, then the completed one


async def run_capture_with(writer, name, lookup):
    orchestrator = Orchestrator(lookup, Recorder(), writer)
    for event in replay([(FIXTURES / f"{name}.ami").read_bytes()]):
        if event.type == "call.ended":
            await asyncio.sleep(0.1)  # the late card arrives while the call is still up
        orchestrator.handle(event)
    await orchestrator.drain()
