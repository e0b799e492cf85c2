"""The fold of call events into interaction records: the real captures give
the expected records; duplicates, replays, reordering and split views give
the same record (pure, no database)."""
from __future__ import annotations

import dataclasses
import random
from datetime import date

import pytest

from customer_lookup.card import KNOWN, MULTIPLE, CustomerCard, Person, SourceStatus
from screenpop.interactions.record import (
    InteractionRecord,
    apply,
    canonical_ts,
    fold,
    lookup_from_card,
    merge,
    with_lookup,
)
from screenpop.interactions.rows import from_row, to_row
from telephony.events import CallEnded, CallQueued

from .conftest import CAPTURES, by_call, capture_events


def record_of(name: str) -> InteractionRecord:
    (events,) = by_call(capture_events(name)).values()
    return fold(events)


def test_queued_call_answered_by_the_first_of_two_agents():
    r = record_of("support_answered")
    assert r.call_id == "1795383106.0"
    assert (r.caller_number, r.caller_name, r.queue) == ("+34912345678", "Ana Garcia", "support")
    assert r.agents_rung == ["1002", "1001"]
    assert r.answered_by == "1001" and r.agents_answered == ["1001"]
    assert r.queued_at == r.started_at == "2026-11-22T21:31:46.875399Z"
    assert r.first_ring_at == "2026-11-22T21:31:46.876345Z"
    assert r.answered_at == "2026-11-22T21:31:47.878725Z"
    assert r.ended_at == r.last_event_at == "2026-11-22T21:31:52.383818Z"
    assert (r.wait_seconds, r.talk_seconds, r.end_reason) == (1.003, 4.505, "completed")
    assert r.transfers == [] and r.disposition is None and r.card_status is None


def test_no_answer_then_next_agent():
    r = record_of("sales_no_answer_then_next")
    assert (r.queue, r.agents_rung, r.answered_by) == ("sales", ["1003", "1004"], "1004")
    assert (r.wait_seconds, r.talk_seconds, r.end_reason) == (6.008, 3.505, "completed")
    assert r.ring_times == {"1003": "2026-11-22T21:32:08.483925Z", "1004": "2026-11-22T21:32:13.490105Z"}


def test_abandoned_caller_keeps_the_wait_and_has_no_answer():
    r = record_of("billing_abandoned")
    assert (r.caller_number, r.queue, r.agents_rung) == ("0034912345679", "billing", ["1003"])
    assert r.answered_by is None and r.answered_at is None
    assert (r.wait_seconds, r.talk_seconds, r.end_reason) == (4.505, 0.0, "abandoned")
    assert r.ended_at == "2026-11-22T21:32:37.777460Z"


def test_direct_call_has_no_queue():
    r = record_of("direct_call")
    assert (r.caller_number, r.caller_name, r.queue, r.queued_at) == ("912345680", None, None, None)
    assert r.started_at == r.first_ring_at == "2026-11-22T21:32:44.007924Z"
    assert (r.answered_by, r.wait_seconds, r.talk_seconds) == ("1004", 1.503, 3.505)


def test_blind_transfer_keeps_the_chain_and_the_first_wait():
    r = record_of("blind_transfer")
    assert r.agents_rung == ["1005", "1002"]
    assert r.agents_answered == ["1005", "1002"] and r.answered_by == "1002"
    assert r.answered_at == "2026-11-22T21:33:51.209694Z" and r.wait_seconds == 1.503  # the caller's wait
    assert r.transfers == [
        {"ts": "2026-11-22T21:33:53.713782Z", "from_agent": "1005", "to_agent": "1002", "to_queue": None, "to_number": None}
    ]
    assert (r.talk_seconds, r.end_reason) == (10.015, "completed")


def test_burst_gives_one_record_per_call_with_its_own_fields():
    calls = by_call(capture_events("burst_small"))
    records = {cid: fold(evs) for cid, evs in calls.items()}
    assert len(records) == len(calls) >= 8
    assert all(r.ended for r in records.values())
    abandoned = {cid for cid, r in records.items() if r.end_reason == "abandoned"}
    assert abandoned and all(records[c].answered_by is None and records[c].wait_seconds > 0 for c in abandoned)
    r = records["1795383421.130"]  # 1003 rang in vain, then 1004 answered
    assert (r.queue, r.agents_rung, r.answered_by, r.wait_seconds) == ("sales", ["1003", "1004"], "1004", 6.009)
    assert {r.caller_name for r in records.values()} >= {f"Caller {i}" for i in range(8)}


@pytest.mark.parametrize("name", CAPTURES)
def test_duplicates_replays_and_any_order_give_the_same_record(name):
    for events in by_call(capture_events(name)).values():
        expected = fold(events)
        assert fold(events + events) == expected  # the same events twice
        assert fold(events[: len(events) // 2] + events) == expected  # replayed after a reconnect
        rng = random.Random(7)
        for _ in range(5):
            shuffled = events[:]
            rng.shuffle(shuffled)
            assert fold(shuffled) == expected
        cut = len(events) // 2
        a, b = fold(events[:cut]), fold(events[cut:])
        if a is not None and b is not None:
            assert merge(a, b) == merge(b, a) == expected
            assert merge(merge(a, b), b) == expected


def card(name: str | None, *, status=KNOWN, e164="+34912345678", at="2026-11-22T21:31:46.9Z", keys=None) -> CustomerCard:
    persons = [Person(name=name, keys=keys or {"sales": ["C-17"]})] if name else []
    return CustomerCard(status, e164, e164, persons, {"sales": SourceStatus("ok")}, generated_at=at)


def test_lookup_from_a_card_keeps_keys_of_every_candidate_and_a_name_only_when_sure():
    known = lookup_from_card(card("Ana Garcia", keys={"sales": ["C-17"], "billing": ["A-9"]}))
    assert known == {
        "caller_e164": "+34912345678", "customer_name": "Ana Garcia",
        "customer_keys": {"sales": ["C-17"], "billing": ["A-9"]}, "card_status": "known",
        "lookup_at": "2026-11-22T21:31:46.900000Z",
    }
    several = CustomerCard(MULTIPLE, "1", "+1", [Person(name="A", keys={"sales": ["1"]}), Person(name="B", keys={"sales": ["2", "1"]})])
    out = lookup_from_card(several.to_dict())  # the card as JSON works too
    assert out["customer_name"] is None and out["customer_keys"] == {"sales": ["1", "2"]}


def test_the_later_card_wins_whatever_order_they_are_merged_in():
    base = InteractionRecord(call_id="c1")
    early = with_lookup(base, **lookup_from_card(card("Old Name", at="2026-11-22T21:00:00Z")))
    late = with_lookup(base, **lookup_from_card(card("New Name", at="2026-11-22T21:00:05Z")))
    assert merge(early, late).customer_name == merge(late, early).customer_name == "New Name"
    assert merge(late, base).customer_name == merge(base, late).customer_name == "New Name"


def test_outcome_is_never_lost_by_merging_events_in():
    events = by_call(capture_events("support_answered"))["1795383106.0"]
    stored = dataclasses.replace(
        fold(events[:2]), disposition="sale", follow_up=date(2026, 12, 1), outcome_by="ana", outcome_at="2026-11-22T21:40:00.000000Z"
    )
    out = fold(events, stored)
    assert (out.disposition, out.follow_up, out.outcome_by) == ("sale", date(2026, 12, 1), "ana")
    assert out.end_reason == "completed"


def test_row_round_trip_and_derived_search_columns():
    r = with_lookup(record_of("blind_transfer"), "+34600111222", "Frank Moreno", {"sales": ["C|1"], "billing": ["A-9"]}, "known", "2026-11-22T21:33:50Z")
    row = to_row(r)
    assert row["caller_digits"] == "34600111222"
    assert row["customer_name_folded"] == "frank moreno"
    assert row["customer_key_list"] == "|billing:a-9|sales:c/1|"
    assert row["answered_agents"] == "|1005|1002|"
    row.update(disposition=None, follow_up=None, outcome_by=None, outcome_at=None)
    assert from_row(row) == r


def test_times_are_canonical_utc_strings():
    assert canonical_ts("2026-11-22T22:31:46+01:00") == "2026-11-22T21:31:46.000000Z"
    assert canonical_ts("2026-11-22T21:31:46") == "2026-11-22T21:31:46.000000Z"
    with pytest.raises(ValueError):
        canonical_ts("yesterday")
    with pytest.raises(ValueError):
        merge(InteractionRecord("a"), InteractionRecord("b"))
    queued = CallQueued("x", "2026-11-22T21:31:46Z", "q", None, None, 1)
    ended = CallEnded("x", "2026-11-22T21:31:50Z", None, "unanswered", 0.0)
    assert apply(apply(None, ended), queued) == apply(apply(None, queued), ended)
