"""The interaction log wired as the service wires it: configuration in, the
real orchestrator feeding the writer from the real captures, the store
answering afterwards (both engines)."""
from __future__ import annotations

import asyncio

import pytest

from customer_lookup.card import KNOWN, CustomerCard, Person, SourceStatus
from screenpop.config import ConfigError, load_settings
from screenpop.interactions.record import fold
from screenpop.interactions.service import InteractionLog
from screenpop.orchestrator import Orchestrator
from telephony.events import CallEvent

from .conftest import by_call, capture_events


class Recorder:
    def send_to_agent(self, agent_id, message):
        return 1

    def send_to_supervisors(self, message):
        return 0


class CardPerNumber:
    """Stand-in for the lookup service (which needs business databases): one
    known customer per number, the record key derived from the digits."""

    async def lookup(self, number, *, on_late=None):
        e164 = "+" + "".join(ch for ch in number or "" if ch.isdigit()).lstrip("0")
        person = Person(name=f"Customer {e164[-4:]}", keys={"sales": [f"C{e164[-4:]}"]})
        return CustomerCard(KNOWN, number, e164, [person], {"sales": SourceStatus("ok")}, generated_at="2026-11-22T21:00:00Z")


async def test_orchestrator_feeds_the_log(dsn, tmp_path):
    settings = load_settings(
        env={
            "SCREENPOP_STORAGE__DSN": dsn,
            "SCREENPOP_INTERACTIONS__SPILL_PATH": str(tmp_path / "spill.jsonl"),
            "SCREENPOP_INTERACTIONS__FLUSH_INTERVAL": "0.02",
            "SCREENPOP_INTERACTIONS__DISPOSITIONS": "resolved, sale",
            "SCREENPOP_INTERACTIONS__RETRY_MAX_SECONDS": "2.5",
        }
    )
    log = await InteractionLog.from_settings(settings)
    try:
        assert log.writer.retry_max == 2.5  # the config reaches the writer
        orchestrator = Orchestrator(CardPerNumber(), Recorder(), writer=log.writer)
        events: list[CallEvent] = capture_events()
        for event in events:
            orchestrator.handle(event)
            await asyncio.sleep(0)
        await orchestrator.drain()
        live = await log.get("1795383106.0")  # readable at once, written or not
        assert live is not None and live.end_reason == "completed"
        assert await log.writer.flush()
        for call_id, evs in by_call(events).items():
            got = await log.store.get(call_id)
            want = fold(evs)
            assert {k: getattr(got, k) for k in ("agents_rung", "answered_by", "wait_seconds", "end_reason")} == {
                k: getattr(want, k) for k in ("agents_rung", "answered_by", "wait_seconds", "end_reason")
            }
            if got.first_ring_at is not None:  # popped: the card was logged with it
                assert got.card_status == "known" and got.customer_name and got.caller_e164
        ana = await log.store.get("1795383106.0")
        assert (ana.caller_e164, ana.customer_name, ana.customer_keys) == ("+34912345678", "Customer 5678", {"sales": ["C5678"]})
        assert [r.call_id for r in (await log.store.search(customer="c5678")).items] == ["1795383106.0"]
        await log.store.set_outcome("1795383106.0", "sale", "upgrade ordered", None, "1001")
        with pytest.raises(ValueError):
            await log.store.set_outcome("1795383106.0", "callback", by_user="1001")  # not configured here
        history = await log.store.history("+34912345678")
        assert history[0]["disposition"] == "sale" and history[0]["notes"][0]["text"] == "upgrade ordered"
    finally:
        await log.close()
    assert not (tmp_path / "spill.jsonl").exists()


def test_interaction_settings_are_checked():
    assert load_settings(env={}).interactions.dispositions[0] == "resolved"
    for env in ({"SCREENPOP_INTERACTIONS__DISPOSITIONS": "a,a"}, {"SCREENPOP_INTERACTIONS__MAX_PENDING": "0"}):
        with pytest.raises(ConfigError):
            load_settings(env=env)
