"""Merging records from several systems into persons (pure)."""
from __future__ import annotations

from customer_lookup.breaker import CircuitBreaker
from customer_lookup.card import CustomerCard, SourceStatus, card_from_dict, KNOWN
from customer_lookup.merge import SourceRecord, merge

ANA_SALES = SourceRecord("sales", "17", {"name": "Ana Garcia", "email": "ana@example.com", "company": "Garcia SL", "vip": 0, "lifetime_value": 1234.5, "orders": '[{"id": 9, "total": 99.5}]', "billing_account": "AC-000017"})
ANA_BILLING = SourceRecord("billing", "AC-000017", {"account_no": "AC-000017", "email": "ANA@example.com ", "balance": "-42.10", "currency": "EUR", "overdue_amount": "0"})
ANA_SUPPORT = SourceRecord("support", "5b1c", {"name": "A. Garcia", "email": "ana@example.com", "open_tickets": [{"id": 3, "subject": "Router"}], "priority_notes": "calls often"})


def test_records_linked_by_email_and_account_become_one_person():
    (person,) = merge([ANA_SUPPORT, ANA_BILLING, ANA_SALES], ["sales", "billing", "support"])
    assert person.name == "Ana Garcia"  # sales first in source order
    assert person.keys == {"sales": ["17"], "billing": ["AC-000017"], "support": ["5b1c"]}
    assert person.sales["orders"] == [{"id": 9, "total": 99.5}]  # JSON text decoded
    assert person.billing["balance"] == "-42.10" and person.billing["account"] == "AC-000017"
    assert person.support["open_tickets"][0]["subject"] == "Router"
    assert person.extra == {"support": {"priority_notes": "calls often"}}


def test_two_people_sharing_a_company_number_are_two_candidates():
    boss = SourceRecord("sales", "1", {"name": "Boss", "email": "boss@acme.test", "vip": "yes"})
    clerk = SourceRecord("sales", "2", {"name": "Clerk", "email": "clerk@acme.test"})
    persons = merge([clerk, boss])
    assert [p.name for p in persons] == ["Boss", "Clerk"]  # VIP first
    assert persons[0].vip is True


def test_unlinked_records_one_per_source_are_one_person():
    a = SourceRecord("sales", "1", {"name": "Hector Lim"})
    b = SourceRecord("support", "x", {"last_contact": "2026-11-01"})
    (person,) = merge([a, b])
    assert person.name == "Hector Lim" and person.support == {"last_contact": "2026-11-01"}


def test_unlinked_records_from_one_source_stay_apart():
    assert len(merge([SourceRecord("sales", "1", {"name": "X"}), SourceRecord("sales", "2", {"name": "Y"})])) == 2


def test_an_unlinked_record_joins_the_single_linked_group_only():
    lonely = SourceRecord("support", "9", {"name": "Someone"})
    assert len(merge([ANA_SALES, ANA_BILLING, lonely])) == 1
    other = SourceRecord("sales", "18", {"name": "Other", "email": "other@example.com"})
    assert len(merge([ANA_SALES, other, lonely])) == 3


def test_hostile_strings_are_kept_verbatim_for_the_ui_to_escape():
    evil = "<script>alert(1)</script>\u202e\u200b"
    (person,) = merge([SourceRecord("sales", "1", {"name": evil, "orders": "[not json"})])
    assert person.name == evil and person.sales == {"orders": "[not json"}


def test_card_round_trips_through_json_shape():
    card = CustomerCard(KNOWN, "+34912345678", "+34912345678", merge([ANA_SALES]), {"sales": SourceStatus("ok", elapsed_ms=3.2, records=1), "billing": SourceStatus("timeout", "no answer in 150 ms")})
    data = card.to_dict()
    assert data["missing_sources"] == ["billing"]
    again = card_from_dict(data)
    assert again == card and again.person.name == "Ana Garcia"


def test_circuit_breaker_opens_after_failures_and_half_opens_after_cooldown():
    now = [0.0]
    breaker = CircuitBreaker(failures_to_open=3, cooldown=10, clock=lambda: now[0])
    for _ in range(3):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 10.5
    assert breaker.allow() and not breaker.allow()  # one trial at a time
    breaker.failure()
    assert breaker.state == "open" and breaker.retry_in() == 10
    now[0] = 21
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed" and breaker.allow()


def test_null_columns_neither_make_a_section_nor_hide_a_value():
    from customer_lookup.merge import SourceRecord, merge

    (person,) = merge(
        [
            SourceRecord("sales", "1", {"name": "Bob", "email": "bob@x.example", "billing_account": None, "segment": None}),
            SourceRecord("crm", "9", {"email": "bob@x.example", "segment": "retail"}),
        ],
        ["sales", "crm"],
    )
    assert person.billing is None
    assert person.sales == {"segment": "retail"}
