"""The simulator writes CEL rows as Asterisk's cel_pgsql does (telephony/
simulator/cel.py), so the outage tests can reconcile from them: for every
scenario, the call read back from its CEL rows (telephony.cel) is the call
the tracker makes of its AMI events, within a second of every time; and the
rows look like the real ones of tests/fixtures/cdr."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from screenpop.interactions.record import fold
from telephony.cel import CelRow, call_events
from telephony.simulator import SCENARIOS, IdAllocator, plan_call
from telephony.simulator.cel import COLUMNS, CelRecorder
from telephony.tracker import CallTracker

START = 1796396649.0
CDR = Path(__file__).resolve().parents[1] / "fixtures" / "cdr"


def rows_and_events(scenario: str, **options):
    plan = plan_call(scenario, IdAllocator(3), "+34912345678", "Ana Garcia", start_ts=START, **options)
    recorder, tracker = CelRecorder(), CallTracker()
    rows, events = [], []
    for i, (_, raw) in enumerate(plan.events):
        event = {key: str(value) for key, value in raw.items()}  # as the AMI decoder hands them over
        rows += [CelRow.from_mapping({"id": i, **row}) for row in recorder.feed(event)]
        events += tracker.feed(event)
    return plan, rows, events


def seconds(ts):
    from datetime import datetime
    return None if ts is None else datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_scenario_read_back_from_its_cel_rows_is_the_call_ami_told(scenario):
    plan, rows, events = rows_and_events(scenario)
    assert {r.linkedid for r in rows} == {plan.linkedid}
    assert [r.eventtype for r in rows].count("LINKEDID_END") == 1 and rows[-1].eventtype == "LINKEDID_END"
    presentation = next((e.presentation for e in reversed(events) if hasattr(e, "presentation")), None)
    ami, cel = fold(events), fold(call_events(rows, presentation=presentation))
    for key in ("queue", "answered_by", "end_reason", "caller_number"):
        assert getattr(cel, key) == getattr(ami, key), (scenario, key)
    assert sorted(cel.agents_answered) == sorted(ami.agents_answered), scenario
    assert set(cel.agents_rung) == set(ami.agents_rung), scenario
    for key in ("started_at", "queued_at", "answered_at", "ended_at"):
        a, c = seconds(getattr(ami, key)), seconds(getattr(cel, key))
        assert (a is None) == (c is None), (scenario, key)
        if a is not None:
            assert abs(a - c) < 1.0, (scenario, key, a, c)


def test_rows_have_the_columns_and_shapes_of_asterisks():
    with (CDR / "a_support_answered.cel.csv").open(newline="") as f:
        real = next(csv.DictReader(f))
    assert set(COLUMNS) == set(real) - {"id"}
    _, rows, _ = rows_and_events("queue_answered")
    kinds = {r.eventtype for r in rows}
    assert {"CHAN_START", "APP_START", "APP_END", "ANSWER", "BRIDGE_ENTER", "BRIDGE_EXIT", "HANGUP", "CHAN_END", "LINKEDID_END"} <= kinds
    hangup = next(r for r in rows if r.eventtype == "HANGUP")
    assert set(hangup.extra_json()) == {"hangupcause", "hangupsource", "dialstatus"}
    queue = next(r for r in rows if r.eventtype == "APP_START" and r.appname == "Queue")
    assert queue.appdata.split(",")[0] == "support"
