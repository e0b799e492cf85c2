"""Asterisk's CEL rows replayed as call events (telephony.cel), on the real
rows Asterisk 22 wrote for the captured calls (tests/fixtures/cdr, byte for
byte from ../shared/cdr): the same call as the AMI stream tells it, within
a second of every time."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from screenpop.interactions.record import fold
from telephony.cel import CelRow, call_events, group_by_call
from telephony.protocol import decode_all
from telephony.tracker import CallTracker

CDR = Path(__file__).resolve().parents[1] / "fixtures" / "cdr"
SCENARIOS = ["a_support_answered", "b_abandon_while_ringing", "c_sales_rna_then_answered", "d_direct_agent",
             "d2_direct_agent_busy", "e_withheld"]
TIMES = ("started_at", "queued_at", "first_ring_at", "answered_at", "ended_at")


def cel_rows(name: str) -> list[CelRow]:
    with (CDR / f"{name}.cel.csv").open(newline="", encoding="utf-8") as f:
        return [CelRow.from_mapping(row) for row in csv.DictReader(f)]


def ami_events(name: str):
    messages, _ = decode_all((CDR / f"{name}.ami").read_bytes())
    tracker = CallTracker()
    return [e for m in messages for e in tracker.feed(m)]


def seconds(ts: str | None) -> float | None:
    from datetime import datetime
    return None if ts is None else datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_call_from_cel_is_the_call_ami_told(name):
    by_call: dict[str, list] = {}
    for event in ami_events(name):
        by_call.setdefault(event.call_id, []).append(event)
    cel_calls = group_by_call(cel_rows(name))
    assert set(cel_calls) == set(by_call)
    for call_id, rows in cel_calls.items():
        presentation = next((e.presentation for e in reversed(by_call[call_id]) if hasattr(e, "presentation")), "allowed")
        ami, cel = fold(by_call[call_id]), fold(call_events(rows, presentation=presentation))
        for key in ("queue", "answered_by", "end_reason"):
            assert getattr(cel, key) == getattr(ami, key), (call_id, key)
        if presentation == "restricted":  # a caller who hid their number: hidden here whatever the rows store
            assert (cel.caller_number, cel.caller_name) == (None, None), call_id
        else:
            assert (cel.caller_number, cel.caller_name) == (ami.caller_number, ami.caller_name), call_id
        assert sorted(cel.agents_rung) == sorted(ami.agents_rung), call_id
        for key in TIMES:
            a, c = seconds(getattr(ami, key)), seconds(getattr(cel, key))
            assert (a is None) == (c is None), (call_id, key)
            if a is not None:
                assert abs(a - c) < 1.0, (call_id, key, a, c)
        for key in ("wait_seconds", "talk_seconds"):
            assert abs((getattr(cel, key) or 0) - (getattr(ami, key) or 0)) < 1.0, (call_id, key)


def test_the_missed_reasons_match_the_tracker():
    for name in SCENARIOS:
        ami = {(e.call_id, e.agent): e.reason for e in ami_events(name) if e.type == "call.missed"}
        cel = {}
        for rows in group_by_call(cel_rows(name)).values():
            cel.update({(e.call_id, e.agent): e.reason for e in call_events(rows, presentation="allowed") if e.type == "call.missed"})
        assert cel == ami, name


def test_a_call_ami_never_saw_keeps_its_number_only_when_trusted_and_the_dialplan_did_not_hide_it():
    calls = group_by_call(cel_rows("e_withheld"))
    private = call_events(calls["1796396729.58"], trust_unseen_numbers=True)  # Set(CALLERID(num-pres)=prohib)
    assert {getattr(e, "presentation", None) for e in private} >= {"restricted"}
    assert "+34912345678" not in repr(private) and "Ana Lopez" not in repr(private)
    plain = call_events(group_by_call(cel_rows("a_support_answered"))["1796396649.8"], trust_unseen_numbers=True)
    assert plain[0].caller_number == "+34912345678"
    unseen = call_events(group_by_call(cel_rows("a_support_answered"))["1796396649.8"])
    assert unseen[0].caller_number is None and unseen[0].presentation == "unverified"


def test_a_call_still_in_progress_has_no_end():
    rows = group_by_call(cel_rows("a_support_answered"))["1796396649.8"]
    cut = [r for r in rows if r.eventtime < rows[0].eventtime + 5.0]  # before the agent hung up
    events = call_events(cut, presentation="allowed")
    assert "call.answered" in [e.type for e in events] and "call.ended" not in [e.type for e in events]


def test_rows_of_a_database_driver_and_of_csv_read_alike():
    from datetime import datetime
    row = {"id": 7, "eventtype": "CHAN_START", "eventtime": datetime(2026, 12, 4, 15, 4, 9, 883724), "channame": "X",
           "uniqueid": "1.1", "linkedid": "1.1", "extra": "not json"}
    parsed = CelRow.from_mapping(row)
    assert parsed == CelRow.from_mapping({**row, "eventtime": "2026-12-04 15:04:09.883724"})
    assert parsed.extra_json() == {}
