"""Search on SQLite and PostgreSQL: a number typed in any format finds the
same calls (the lookup's normalization, with its default region)."""
from __future__ import annotations

from screenpop.interactions.record import InteractionRecord, fold, with_lookup
from screenpop.interactions.store import InteractionStore
from telephony.events import CallAnswered, CallEnded, CallQueued, CallRinging, CallTransferred

TS = "2026-11-23T10:00:00.000000Z"


def call(call_id: str, received: str, *, e164: str | None = None, ring=("1001",), answer=None, transfer_to=None) -> InteractionRecord:
    events = [CallQueued(call_id, TS, "support", received, "Caller", 1)]
    events += [CallRinging(call_id, TS, agent, "support", received, "Caller") for agent in ring]
    if answer:
        events.append(CallAnswered(call_id, TS, answer, "support", 2.0))
    if transfer_to:
        events.append(CallTransferred(call_id, TS, from_agent=answer, to_agent=transfer_to))
    events.append(CallEnded(call_id, TS, answer, "completed" if answer else "unanswered", 10.0))
    record = fold(events)
    return with_lookup(record, e164, None, {}, "unknown", TS) if e164 else record


async def ids(store: InteractionStore, **where) -> set[str]:
    return {r.call_id for r in (await store.search(**where)).items}


async def test_a_number_in_any_format_finds_the_same_calls(engine):
    store = InteractionStore(engine, default_region="ES")
    await store.upsert([
        call("plus.1", "+34912345678", e164="+34912345678"),
        call("idd.1", "0034912345678"),  # as the trunk sent it, never looked up
        call("national.1", "912 34 56 78"),
        call("neighbour.1", "+34912345679", e164="+34912345679"),
        call("usa.1", "+14155550100", e164="+14155550100"),
    ])
    ana = {"plus.1", "idd.1", "national.1"}
    for typed in ("+34912345678", "0034912345678", "912345678", "+34 912 34 56 78", "0034 912-345-678", "(+34) 912345678"):
        assert await ids(store, number=typed) == ana, typed
    assert await ids(store, number="5678") == ana  # a part of a number still matches as digits
    assert await ids(store, number="001 415 555 0100") == {"usa.1"}
    assert await ids(store, number="+34912345679") == {"neighbour.1"}


async def test_the_national_form_is_read_in_the_configured_region(engine):
    await InteractionStore(engine).upsert([call("usa.1", "+1 415-555-0100"), call("es.1", "+34912345678", e164="+34912345678")])
    assert await ids(InteractionStore(engine, default_region="US"), number="(415) 555-0100") == {"usa.1"}
    assert await ids(InteractionStore(engine, default_region="US"), number="011 34 912 345 678") == {"es.1"}
