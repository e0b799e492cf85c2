"""The supervisors' messages: a capture through the service with cards from
a lookup, the shapes the dashboard pages rely on, alerts, wrap-up ending with
the outcome, and the notifier's coalescing."""
from __future__ import annotations

import asyncio
import dataclasses

from customer_lookup.card import KNOWN, CustomerCard, Person, SourceStatus
from screenpop.config import SupervisionSettings
from screenpop.interactions.record import fold
from screenpop.supervision.notifier import Notifier
from screenpop.supervision.services import SupervisionService
from screenpop.supervision.stats import DayFigures
from telephony.queues import Changes, QueueMonitor
from tests.supervision.helpers import capture_messages
from tests.supervision.test_stats import events_of

QUEUE_KEYS = {"type", "queue", "waiting", "longest_wait_seconds", "agents", "today", "alerts", "updated_at"}
WAITING_KEYS = {"call_id", "caller_number", "customer_name", "vip", "since", "position"}
AGENT_KEYS = {"type", "agent_id", "name", "state", "pause_reason", "since", "queues", "call", "today"}
TODAY_KEYS = {"offered", "answered", "abandoned", "avg_wait_seconds", "avg_talk_seconds", "service_level", "sl_threshold_seconds"}


class Figures:
    """A StatsCache stand-in fed by hand: the arithmetic is the real one."""

    def __init__(self):
        self.day = DayFigures()

    def queue(self, name):
        return self.day.queue(name)

    def agent(self, agent_id):
        return self.day.agent(agent_id)

    def queue_names(self):
        return set(self.day.queues)


def build(settings=SupervisionSettings(), clock=lambda: 0.0):
    changes = Changes()
    figures = Figures()
    service = SupervisionService(settings, QueueMonitor(wrap_up_max=settings.wrap_up_max_seconds), stats=figures,
                                 notify=changes.update, clock=clock)
    return service, changes, figures


def feed(service, messages, tracker=None, until=None):
    from telephony.tracker import CallTracker

    tracker = tracker or CallTracker()
    for message in messages:
        service.on_ami(message)
        for event in tracker.feed(message):
            service.on_call_event(event)
        if until is not None and until(message):
            return tracker
    return tracker


def ana_card() -> CustomerCard:
    return CustomerCard(KNOWN, "+34912345678", "+34912345678", [Person(name="Ana García", vip=True)], {"sales": SourceStatus("ok")})


def test_messages_have_the_dashboard_shapes_with_who_is_waiting():
    service, changes, figures = build()
    messages = capture_messages("support_answered")
    joined = lambda m: m.get("Event") == "AgentCalled" and "1001" in m.get("Interface", "")
    tracker = feed(service, messages, until=joined)
    service.on_card("1795383106.0", ana_card())
    queue = service.queue_message("support")
    assert set(queue) >= QUEUE_KEYS and set(queue["today"]) >= TODAY_KEYS
    (caller,) = queue["waiting"]
    assert set(caller) >= WAITING_KEYS
    assert (caller["call_id"], caller["caller_number"], caller["customer_name"], caller["vip"], caller["position"]) == (
        "1795383106.0", "+34912345678", "Ana García", True, 1)
    assert caller["since"] == "2026-11-22T21:31:46.875399Z"
    assert queue["longest_wait_seconds"] >= 0 and queue["alerts"] == [] or queue["alerts"][0]["kind"] == "longest_wait"
    alice = service.agent_message("1001")
    assert set(alice) >= AGENT_KEYS
    assert alice["state"] == "ringing" and alice["call"]["customer_name"] == "Ana García"
    assert alice["call"]["card"]["persons"][0]["vip"] is True and alice["call"]["queue"] == "support"
    # to the end of the call: 1001 wraps up and shows the call it wraps up
    feed(service, messages[messages.index(next(m for m in messages if joined(m))) + 1:], tracker)
    alice = service.agent_message("1001")
    assert (alice["state"], alice["call"]["call_id"], alice["name"], alice["queues"]) == ("wrap_up", "1795383106.0", "Alice Agent", ["support"])
    assert service.queue_message("support")["agents"] == {"logged_in": 2, "available": 1, "ringing": 0, "on_call": 0,
                                                          "wrap_up": 1, "paused": 0, "unavailable": 0}
    # the outcome is saved: back to available, and everyone was told
    changes.agents.clear()
    service.outcome_saved("1795383106.0")
    assert "1001" in changes.agents and service.agent_message("1001")["state"] == "available"
    assert service.agent_message("1001")["call"] is None


def test_alerts_for_a_long_wait_and_a_low_service_level():
    settings = SupervisionSettings(longest_wait_alert_seconds=3.0, service_level_alert=0.8)
    now = [0.0]
    service, changes, figures = build(settings, clock=lambda: now[0])
    messages = capture_messages("billing_abandoned")
    tracker = feed(service, messages, until=lambda m: m.get("Event") == "QueueCallerJoin")
    joined_at = service.monitor.queue("billing").waiting[0].since
    now[0] = joined_at + 1
    assert service.queue_message("billing")["alerts"] == []
    changes.queues.clear()
    now[0] = joined_at + 4
    service.tick()
    assert "billing" in changes.queues  # the alert appeared with time alone
    (alert,) = service.queue_message("billing")["alerts"]
    assert alert["kind"] == "longest_wait" and alert["threshold"] == 3.0 and alert["value"] >= 4.0 and "billing" in alert["message"]
    feed(service, messages[[i for i, m in enumerate(messages) if m.get("Event") == "QueueCallerJoin"][0] + 1:], tracker)
    figures.day.update([dataclasses.asdict(fold(e)) for e in events_of("billing_abandoned").values()])
    service.stats_changed({"billing"})
    (alert,) = service.queue_message("billing")["alerts"]
    assert (alert["kind"], alert["value"], alert["threshold"]) == ("service_level", 0.0, 0.8)
    today = service.queue_message("billing")["today"]
    assert (today["offered"], today["answered"], today["abandoned"]) == (1, 0, 1)


async def test_notifier_coalesces_bursts_and_skips_repeats():
    sent = []
    state = {"support": 0}
    notifier = Notifier(sent.append, lambda q: {"type": "queue", "queue": q, "n": state[q], "updated_at": "x"},
                        lambda a: {"type": "agent", "agent_id": a}, interval=0.2)
    for n in range(50):  # a burst: one push
        state["support"] = n
        notifier.mark(Changes({"support"}, {"1001"}))
    await asyncio.sleep(0.01)
    assert sent == [{"type": "queue", "queue": "support", "n": 49, "updated_at": "x"}, {"type": "agent", "agent_id": "1001"}]
    state["support"] = 50
    notifier.mark(Changes({"support"}, set()))
    await asyncio.sleep(0.05)
    assert len(sent) == 2  # within the interval: held back
    await asyncio.sleep(0.25)
    assert sent[-1]["n"] == 50 and len(sent) == 3
    notifier.mark(Changes({"support"}, {"1001"}))  # nothing new to say
    await asyncio.sleep(0.3)
    assert len(sent) == 3
    notifier.close()


async def test_a_big_flush_is_spread_over_turns_of_the_loop_queues_first():
    sent, turns = [], []
    notifier = Notifier(sent.append, lambda q: {"type": "queue", "queue": q}, lambda a: {"type": "agent", "agent_id": a},
                        interval=0.2, per_step=10)
    loop = asyncio.get_running_loop()

    def count_turns():  # another callback of the loop, interleaved with the flush
        turns.append(len(sent))
        if len(turns) < 50:
            loop.call_soon(count_turns)

    notifier.mark(Changes({f"q{i}" for i in range(4)}, {f"{1000 + i}" for i in range(36)}))
    loop.call_soon(count_turns)
    await asyncio.sleep(0.05)
    assert len(sent) == 40 and [m["type"] for m in sent[:4]] == ["queue"] * 4
    assert {0, 10, 20, 30} & set(turns) and max(b - a for a, b in zip(turns, turns[1:])) <= 10  # never more than a step at once
    notifier.close()


def test_new_figures_rebuild_only_the_agents_whose_figures_changed():
    service, changes, _ = build()
    feed(service, capture_messages("burst_small"))
    assert len(service.agent_ids()) >= 5
    changes.queues.clear()
    changes.agents.clear()
    service.stats_changed({"sales"}, {"1002"})
    assert changes.agents == {"1002"} and "sales" in changes.queues
    changes.agents.clear()
    service.stats_changed(set())  # not told which: every agent
    assert changes.agents == set(service.agent_ids())


def test_an_agent_message_fingerprint_follows_its_card_without_serializing_it():
    service, _, _ = build()
    feed(service, capture_messages("support_answered"), until=lambda m: m.get("Event") == "AgentConnect")
    agent = next(a for a in service.agent_ids() if (service.agent_message(a) or {}).get("call"))
    call_id = service.agent_message(agent)["call"]["call_id"]
    service.on_card(call_id, {"status": "known", "persons": [{"name": "Zoe Cardholder"}]})
    first = service.fingerprint(service.agent_message(agent))
    assert service.fingerprint(service.agent_message(agent)) == first  # nothing changed: not sent again
    assert "Zoe" not in first
    service.on_card(call_id, {"status": "known", "persons": [{"name": "Zoe Cardholder", "vip": True}]})  # late data
    assert service.fingerprint(service.agent_message(agent)) != first


def test_an_ended_call_is_remembered_while_an_agent_wraps_it_up_and_no_longer():
    """Its card (11 to 18 KB of objects) was kept for the last 5,000 calls
    whatever the agents showed: 55 to 90 MB at 50 calls/s.  Now what is kept
    follows what the agents show."""
    from telephony.events import CallEnded, CallQueued

    service, _, _ = build()
    feed(service, capture_messages("support_answered"))
    service.on_card("1795383106.0", ana_card())
    ts = "2026-11-22T21:40:00.000000Z"
    ended = [f"other-{i}" for i in range(3000)]

    def end_calls(call_ids):  # calls that waited in a queue and hung up: no agent shows them
        for call_id in call_ids:
            service.on_call_event(CallQueued(call_id, ts, "support", "+34600000000", None, 1))
            service.on_card(call_id, ana_card())
            service.on_call_event(CallEnded(call_id, ts, None, "abandoned", 0.0))

    end_calls(ended[:1000])  # calls nobody answered end meanwhile: forgotten as they go
    alice = service.agent_message("1001")
    assert alice["state"] == "wrap_up" and alice["call"]["customer_name"] == "Ana García"  # still shown, still named
    assert alice["call"]["card"]["persons"][0]["name"] == "Ana García"
    assert len(service._recent) <= 3  # the test may look inside: the wrapped-up call and the last ended ones
    service.outcome_saved("1795383106.0")
    end_calls(ended[1000:])
    assert "1795383106.0" not in service._recent
    assert len(service._recent) <= 2


def test_a_caller_restricted_on_the_agent_legs_leaves_no_number_on_the_dashboard():
    """e_withheld #5 (tests/fixtures/cdr): QueueCallerJoin and call.queued
    carry the number; the agent legs say it is restricted."""
    from pathlib import Path

    from telephony.protocol import decode_all

    raw = (Path(__file__).resolve().parents[1] / "fixtures" / "cdr" / "e_withheld.ami").read_bytes()
    messages = [m for m in decode_all(raw)[0] if "Event" in m]
    start = next(i for i, m in enumerate(messages) if m.get("Linkedid") == "1796396729.58")
    answered = lambda m: m.get("Event") == "AgentConnect" and m.get("Linkedid") == "1796396729.58"
    service, _, _ = build()
    feed(service, messages[start:], until=answered)
    text = repr(service.queue_messages()) + repr([service.agent_message(a) for a in ("1001", "1002")])
    assert "+34912345678" not in text and "Ana Lopez" not in text
    assert service.agent_message("1001")["call"]["caller_number"] is None


def test_callers_are_written_as_a_supervisor_reads_them():
    from customer_lookup.display import CardDisplay

    changes = Changes()
    service = SupervisionService(SupervisionSettings(), QueueMonitor(), stats=Figures(), notify=changes.update,
                                 phone=CardDisplay(region="ES").phone)
    messages = capture_messages("billing_abandoned")  # "0034 91 234 56 79" waits in billing
    feed(service, messages, until=lambda m: m.get("Event") == "AgentCalled")
    (waiting,) = service.queue_message("billing")["waiting"]
    assert (waiting["caller_number"], waiting["caller_display"]) == ("0034912345679", "912 34 56 79")
