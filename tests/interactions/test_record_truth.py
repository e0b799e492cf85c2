"""The record keeps what the PBX did off the happy path (issue 19): a caller
found restricted on the agent legs leaves no number, name or customer in the
log whatever order its partial views arrive in; an agent whose phone never
rang (busy) is not among the agents rung; what Asterisk's own records
corrected is written as it is and marked."""
from __future__ import annotations

import itertools

from screenpop.interactions.record import fold, merge, with_lookup
from telephony.events import CallAnswered, CallEnded, CallMissed, CallQueued, CallRinging

T = "2026-12-04T15:05:{:02d}.000000Z".format

RESTRICTED_CALL = [
    CallQueued("c1", T(30), "support", "+34912345678", "Ana Lopez", 1),
    CallRinging("c1", T(31), "1002", "support", None, None, "restricted"),
    CallRinging("c1", T(31), "1001", "support", None, None, "restricted"),
    CallAnswered("c1", T(33), "1001", "support", 3.0),
    CallMissed("c1", T(33), "1002", "answered-elsewhere"),
    CallEnded("c1", T(40), "1001", "completed", 7.0),
]


def test_a_restricted_call_keeps_no_number_in_any_order():
    for order in itertools.permutations(RESTRICTED_CALL[:4]):
        record = fold(order)
        assert (record.caller_number, record.caller_name, record.presentation) == (None, None, "restricted"), order


def test_a_lookup_made_with_the_number_before_the_restriction_is_scrubbed_too():
    early = with_lookup(fold(RESTRICTED_CALL[:1]), "+34912345678", "Ana Lopez", {"sales": ["C-17"]}, "known", T(30))
    record = merge(early, fold(RESTRICTED_CALL[1:]))
    assert (record.caller_e164, record.customer_name, record.customer_keys, record.card_status) == (None, None, {}, "withheld")
    again = merge(record, with_lookup(fold(RESTRICTED_CALL[:1]), "+34912345678", "Ana Lopez", {"sales": ["C-17"]}, "known", T(59)))
    assert again.caller_number is None and again.customer_name is None  # a late lookup replayed from a spill file


def test_an_allowed_call_keeps_its_number():
    record = fold([CallQueued("c2", T(1), "sales", "+14155550100", "Bob", 1),
                   CallRinging("c2", T(2), "1004", "sales", "+14155550100", "Bob")])
    assert (record.caller_number, record.presentation) == ("+14155550100", "allowed")


def test_a_busy_agent_was_not_rung():
    events = [CallRinging("d2", T(4), "1006", None, "+34955666777", "Elena Martin"),
              CallMissed("d2", T(4), "1006", "busy"), CallEnded("d2", T(4), None, "unanswered", 0.0)]
    for order in itertools.permutations(events):
        record = fold(order)
        assert record.agents_rung == [] and set(record.unreached) == {"1006"} and record.agents_offered == [], order
    other = fold([*events, CallRinging("d2", T(5), "1005", None, "+34955666777", "Elena Martin")])
    assert other.agents_rung == ["1005"]


async def test_the_store_keeps_a_restricted_call_hidden_and_writes_reconciled_fields_as_they_are(store):
    early = with_lookup(fold(RESTRICTED_CALL[:1]), "+34912345678", "Ana Lopez", {"sales": ["C-17"]}, "known", T(30))
    await store.upsert([early])
    await store.upsert([fold(RESTRICTED_CALL[1:])])
    stored = await store.get("c1")
    assert (stored.caller_number, stored.caller_name, stored.customer_name, stored.presentation) == (None, None, None, "restricted")
    # the reconnect's clock had the call end late; Asterisk's record says 15:05:40
    late = fold([*RESTRICTED_CALL[1:5], CallEnded("c1", T(55), "1001", "completed", 22.0)])
    await store.upsert([late])
    assert (await store.get("c1")).ended_at == T(55)  # a merge keeps the later end
    import dataclasses
    truth = dataclasses.replace(late, ended_at=T(40), talk_seconds=7.0)
    assert await store.write_reconciled([(truth, ["ended_at", "talk_seconds"])]) == 1
    fixed = await store.get("c1")
    assert (fixed.ended_at, fixed.talk_seconds) == (T(40), 7.0)
    assert fixed.reconciled == ["ended_at", "talk_seconds"] and fixed.reconciled_at is not None
    assert fixed.caller_number is None and fixed.presentation == "restricted"


def test_a_kept_restricted_number_stays_apart_and_only_admins_see_it():
    from screenpop.security.privacy import NO_MASKING, PrivacyRules

    kept = [RESTRICTED_CALL[0],
            CallRinging("c1", T(31), "1001", "support", None, None, "restricted", "+34912345678", "Ana Lopez")]
    record = fold(kept)
    assert record.caller_number is None and (record.hidden_number, record.hidden_name) == ("+34912345678", "Ana Lopez")
    data = record.to_dict()
    for rules in (NO_MASKING, PrivacyRules(partial_phone_roles=frozenset({"agent"}))):
        assert rules.view(data, "admin")["hidden_number"] == "+34912345678"
        for role in ("supervisor", "support", "agent"):
            assert "hidden_number" not in rules.view(data, role) and "hidden_name" not in rules.view(data, role)
