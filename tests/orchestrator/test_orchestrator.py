"""Routing of pops, retracts and updates, fed with the real captures' call events.

The lookup here is an in-memory stand-in with controllable latency (the real
LookupService is exercised in tests/lookup and end to end in tests/e2e); the
delivery records what each agent would receive."""
from __future__ import annotations

import asyncio
from pathlib import Path

from customer_lookup.card import KNOWN, WITHHELD, CustomerCard, Person, SourceStatus
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
        if number is None:
            return CustomerCard(WITHHELD, None, None, [], {})
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


async def test_no_answer_keeps_the_card_while_the_caller_waits_and_retracts_it_when_the_next_agent_answers():
    _, delivery, _ = await run_capture("sales_no_answer_then_next")
    assert delivery.to("1003") == [("pop", None), ("call", "missed"), ("retract", "answered elsewhere")]
    assert delivery.to("1004") == [("pop", None), ("call", "answered"), ("call", "ended")]


async def test_abandoned_call_leaves_no_pop_behind_and_says_abandoned():
    _, delivery, _ = await run_capture("billing_abandoned")
    assert delivery.to("1003") == [("pop", None), ("retract", "abandoned")]


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


# --------------------------------------------- off the happy path (issue 19)

CDR = FIXTURES / "cdr"


async def run_events(events, lookup=None, **options):
    delivery = Recorder()
    lookup = lookup or InMemoryLookup()
    orchestrator = Orchestrator(lookup, delivery, **options)
    for event in events:
        orchestrator.handle(event)
        await asyncio.sleep(0)
    await orchestrator.drain()
    return orchestrator, delivery, lookup


async def test_a_restricted_caller_pops_with_no_number_and_no_card():
    events = [e for e in replay([(CDR / "e_withheld.ami").read_bytes()]) if e.call_id == "1796396729.58"]
    _, delivery, lookup = await run_events(events)
    pops = [m for _, m in delivery.sent if m["type"] == "pop"]
    assert {a for a, m in delivery.sent if m["type"] == "pop"} == {"1001", "1002"}
    for pop in pops:
        assert pop["caller"]["number"] is None and pop["caller"]["name"] is None and pop["caller"].get("e164") is None
        assert pop["card"]["persons"] == [] and pop["card"]["status"] == "withheld"
    assert "+34912345678" not in repr(delivery.sent) and "Ana Lopez" not in repr(delivery.sent)
    assert lookup.calls[-1] is None  # the lookup begun at call.queued was given up


async def test_a_restriction_learnt_after_the_pop_replaces_what_the_screen_shows():
    from telephony.events import CallQueued, CallRinging

    events = [CallQueued("c1", "2026-12-04T15:05:30.400000Z", "support", "+34912345678", "Ana Lopez", 1),
              CallRinging("c1", "2026-12-04T15:05:30.406000Z", "1001", "support", "+34912345678", "Ana Lopez"),
              CallRinging("c1", "2026-12-04T15:05:30.407000Z", "1001", "support", None, None, "restricted")]
    orchestrator, delivery, _ = await run_events(events)
    first, second = [m for _, m in delivery.sent if m["type"] == "pop"]
    assert first["caller"]["number"] == "+34912345678"  # what could be known at the time
    assert second["caller"]["number"] is None and second["card"]["status"] == "withheld"
    assert orchestrator.pops_for("1001")[0]["caller"]["number"] is None
    assert orchestrator.calls["c1"].to_state()["caller_number"] is None


async def test_a_busy_phone_gets_its_pop_retracted_as_busy():
    _, delivery, _ = await run_events(replay([(CDR / "d2_direct_agent_busy.ami").read_bytes()]))
    assert delivery.to("1006") == [("pop", None), ("retract", "busy")]


async def test_the_caller_hanging_up_on_ringing_phones_is_abandoned_not_unanswered():
    _, delivery, _ = await run_events(replay([(CDR / "b_abandon_while_ringing.ami").read_bytes()]))
    assert delivery.to("1001") == [("pop", None), ("retract", "abandoned")]
    assert delivery.to("1002") == [("pop", None), ("retract", "abandoned")]


async def test_queue_retries_keep_one_card_per_agent_per_call():
    """queues.conf ``retry``: the same member is rung again every few seconds."""
    from telephony.events import CallAnswered, CallEnded, CallMissed, CallQueued, CallRinging

    t = iter(f"2026-12-04T15:00:{s:02d}.000000Z" for s in range(60))
    events = [CallQueued("c1", next(t), "sales", "+34912345678", "Ana", 1)]
    for _ in range(5):
        events += [CallRinging("c1", next(t), "1003", "sales", "+34912345678", "Ana"), CallMissed("c1", next(t), "1003", "no-answer")]
    events += [CallRinging("c1", next(t), "1004", "sales", "+34912345678", "Ana"), CallAnswered("c1", next(t), "1004", "sales", 12.0),
               CallEnded("c1", next(t), "1004", "completed", 3.0)]
    _, delivery, _ = await run_events(events)
    assert delivery.to("1003") == [("pop", None)] + [("call", "missed"), ("call", "ringing")] * 4 + [("call", "missed"), ("retract", "answered elsewhere")]


async def test_a_missed_card_is_retracted_when_the_caller_gives_up():
    from telephony.events import CallAbandoned, CallEnded, CallMissed, CallQueued, CallRinging

    events = [CallQueued("c1", "2026-12-04T15:00:00.000000Z", "sales", "+34912345678", "Ana", 1),
              CallRinging("c1", "2026-12-04T15:00:01.000000Z", "1003", "sales", "+34912345678", "Ana"),
              CallMissed("c1", "2026-12-04T15:00:05.000000Z", "1003", "no-answer"),
              CallAbandoned("c1", "2026-12-04T15:00:09.000000Z", "sales", 9.0),
              CallEnded("c1", "2026-12-04T15:00:09.000000Z", None, "abandoned", 0.0)]
    _, delivery, _ = await run_events(events)
    assert delivery.to("1003") == [("pop", None), ("call", "missed"), ("retract", "abandoned")]


async def test_a_direct_call_not_answered_is_retracted_as_not_answered():
    from telephony.events import CallEnded, CallMissed, CallRinging

    events = [CallRinging("c1", "2026-12-04T15:00:01.000000Z", "1005", None, "+34912345678", "Ana"),
              CallMissed("c1", "2026-12-04T15:00:21.000000Z", "1005", "no-answer"),
              CallEnded("c1", "2026-12-04T15:00:21.000000Z", None, "unanswered", 0.0)]
    _, delivery, _ = await run_events(events)
    assert delivery.to("1005") == [("pop", None), ("retract", "not answered")]


async def test_a_reloaded_desktop_gets_a_missed_card_back_as_missed():
    from telephony.events import CallMissed, CallQueued, CallRinging

    events = [CallQueued("c1", "2026-12-04T15:00:00.000000Z", "sales", "+34912345678", "Ana", 1),
              CallRinging("c1", "2026-12-04T15:00:01.000000Z", "1003", "sales", "+34912345678", "Ana"),
              CallMissed("c1", "2026-12-04T15:00:05.000000Z", "1003", "no-answer")]
    orchestrator, _, _ = await run_events(events)
    (replayed,) = orchestrator.pops_for("1003")
    assert replayed["state"] == "missed"
    state = orchestrator.calls["c1"].to_state()
    from screenpop.orchestrator import ActiveCall
    assert ActiveCall.from_state(state).missed == {"1003"}  # another node taking over knows it too


async def test_pop_latency_counts_from_when_the_phone_rang_so_a_pop_late_after_an_outage_shows_late():
    from datetime import datetime, timedelta, timezone

    from screenpop.metrics import ServiceMetrics
    from telephony.events import CallRinging

    rang = (datetime.now(timezone.utc) - timedelta(seconds=20)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    metrics = ServiceMetrics()
    await run_events([CallRinging("c1", rang, "1001", "support", "+34912345678", "Ana")], metrics=metrics)
    samples = {s.name: s.value for m in metrics.pop_latency.collect() for s in m.samples if not s.labels.get("le")}
    assert samples["screenpop_pop_latency_seconds_count"] == 1 and samples["screenpop_pop_latency_seconds_sum"] >= 19.9
