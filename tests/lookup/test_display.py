"""Numbers and fields as the agent reads them (customer_lookup/display.py),
and the pop and card messages that carry them (screenpop.orchestrator).

Pure: no server.  The browser side (the header not naming the caller twice,
labels and amounts on the card) is in tests/browser/test_desk_readable.py."""
from __future__ import annotations

import asyncio

from customer_lookup.card import KNOWN, CustomerCard, Person, SourceStatus
from customer_lookup.display import CardDisplay, default_label, format_phone, same_name
from screenpop.config import load_settings
from screenpop.orchestrator import ActiveCall, Orchestrator, pop_message
from telephony.events import CallQueued, CallRinging


def test_a_number_of_the_agents_country_is_written_nationally():
    assert format_phone("0034912345679", "ES") == "912 34 56 79"
    assert format_phone("+34912345678", "ES") == "912 34 56 78"
    assert format_phone("912345680", "ES") == "912 34 56 80"
    assert format_phone("+34 600 11 22 33", "ES") == "600 11 22 33"


def test_a_foreign_number_is_written_internationally():
    assert format_phone("+14155550100", "ES") == "+1 415-555-0100"
    assert format_phone("004930123456", "ES") == "+49 30 123456"
    # The same US number for an agent in the US is national.
    assert format_phone("+14155550100", "US") == "(415) 555-0100"


def test_withheld_stays_withheld_and_nonsense_is_shown_as_given():
    for withheld in (None, "", "anonymous", "<unknown>", "Restricted"):
        assert format_phone(withheld, "ES") is None, withheld
    assert format_phone(" 12 ", "ES") == "12"  # a short code: not guessed at
    assert format_phone("call reception", "ES") == "call reception"


def test_a_number_is_read_in_its_sources_region():
    # '(415) 555-0100' style without +1, stored by a US system, shown to a Spanish agent.
    display = CardDisplay(region="ES", source_regions={"crm": "US"})
    assert display.phone("4155550100", "crm") == "+1 415-555-0100"
    assert display.phone("4155550100") == "4155550100"  # invalid in ES: as given
    assert display.phone("415.555.0100 ext. 12", "crm") == "+1 415-555-0100 ext. 12"


def test_labels_come_from_the_source_or_from_the_field_name():
    assert default_label("account_status") == "Account status"
    assert default_label("sla_tier") == "SLA tier"
    assert default_label("ticketsTotal") == "Tickets total"
    assert default_label("notes") == "Notes"
    display = CardDisplay(labels={"billing": {"account_status": "Account"}})
    assert display.label("billing", "account_status") == "Account"
    assert display.label("support", "account_status") == "Account status"


def test_labels_and_regions_are_read_from_the_config(tmp_path):
    path = tmp_path / "screenpop.toml"
    path.write_text('[lookup]\ndefault_region = "US"\n\n'
                    '[[sources]]\nname = "billing"\nkind = "sql"\ndsn = "sqlite+aiosqlite:///x.sqlite3"\n'
                    'phones_query = "SELECT 1, 2"\nrecord_query = "SELECT 1"\ndefault_region = "ES"\n'
                    'labels = {account_status = "Account state"}\n', encoding="utf-8")
    display = CardDisplay.from_settings(load_settings(path, env={}))
    assert display.region == "US"
    assert display.label("billing", "account_status") == "Account state"
    assert display.phone("912345678", "billing") == "+34 912 34 56 78"


def test_same_name_ignores_case_and_spaces():
    assert same_name("ANA  GARCIA", "Ana Garcia")
    assert same_name("Ana Garcia", "anagarcia")
    assert not same_name("Ana Garcia", "Ana Garcés")
    assert not same_name(None, "Ana") and not same_name("", "")


def card() -> CustomerCard:
    person = Person(name="Ana Garcia", extra={"billing": {"account_status": "active", "phone_alt": "0034912345680", "empty": None},
                                              "support": {"sla_tier": "vip"}})
    return CustomerCard(KNOWN, "0034912345679", "+34912345679", [person], {"billing": SourceStatus("ok")})


def test_the_card_gains_display_values_and_keeps_the_raw_ones():
    raw = card().to_dict()
    shown = CardDisplay(labels={"billing": {"account_status": "Account"}}).card(raw)
    assert shown["caller_number"] == "0034912345679" and shown["e164"] == "+34912345679"
    assert shown["caller_display"] == "912 34 56 79"
    (person,) = shown["persons"]
    assert person["extra"] == raw["persons"][0]["extra"]  # untouched, for the code that reads it
    assert person["details"] == [
        {"source": "billing", "field": "account_status", "label": "Account", "value": "active"},
        {"source": "billing", "field": "phone_alt", "label": "Phone alt", "value": "912 34 56 80"},
        {"source": "support", "field": "sla_tier", "label": "SLA tier", "value": "vip"},
    ]
    assert "details" not in raw["persons"][0] and "caller_display" not in raw  # the cached card is not changed


def test_odd_cards_do_not_break_the_display():
    display = CardDisplay()
    assert display.card(None) is None
    odd = display.card({"status": "unknown", "caller_number": None, "e164": None, "persons": ["x", {"extra": "text"}]})
    assert odd["caller_display"] is None and odd["persons"][0] == "x" and odd["persons"][1]["details"] == []


def test_the_pop_carries_the_number_as_received_and_as_read():
    call = ActiveCall("1.1", "0034912345679", "ANA GARCIA", "sales", card=card())
    message = pop_message(call, "1001", CardDisplay(region="ES"))
    assert message["caller"] == {"number": "0034912345679", "display": "912 34 56 79", "name": "ANA GARCIA", "e164": "+34912345679"}
    assert message["card"]["caller_display"] == "912 34 56 79"
    withheld = pop_message(ActiveCall("1.2", None, None, "sales"), "1001", CardDisplay())
    assert withheld["caller"]["number"] is None and withheld["caller"]["display"] is None


class OneCard:
    default_region = "US"

    async def lookup(self, number, *, on_late=None):
        return CustomerCard(KNOWN, number, "+14155550100", [Person(name="Bo")], {"crm": SourceStatus("ok")})


class Recorder:
    def __init__(self):
        self.sent = []

    def send_to_agent(self, agent_id, message):
        self.sent.append(message)
        return 1

    def send_to_supervisors(self, message):
        return 0


async def test_the_orchestrator_writes_numbers_in_the_lookups_region():
    delivery = Recorder()
    orchestrator = Orchestrator(OneCard(), delivery)
    ts = "2026-12-04T10:00:00.000000Z"
    orchestrator.handle(CallQueued(call_id="9.9", ts=ts, queue="sales", caller_number="+1 415 555 0100", caller_name=None, position=1))
    orchestrator.handle(CallRinging(call_id="9.9", ts=ts, agent="1001", queue="sales", caller_number="+1 415 555 0100", caller_name=None))
    await orchestrator.drain()
    await asyncio.sleep(0)
    (pop,) = [m for m in delivery.sent if m["type"] == "pop"]
    assert pop["caller"]["display"] == "(415) 555-0100" and pop["caller"]["number"] == "+1 415 555 0100"
    assert orchestrator.pops_for("1001")[0]["card"]["caller_display"] == "(415) 555-0100"
