"""The reconciliation on the real CEL rows Asterisk 22 wrote (tests/fixtures/
cdr), in a real CEL table on SQLite and PostgreSQL, against a real
interaction store: a call the log lacks is created, a call it holds as AMI
told it is left alone, a call AMI saw in part (answer and end at the
reconnect's clock) is corrected and marked; twice changes nothing."""
from __future__ import annotations

import dataclasses
from datetime import datetime

from screenpop.interactions.record import fold
from screenpop.reconcile.reader import CelReader
from screenpop.reconcile.services import Reconciler
from telephony.protocol import decode_all
from telephony.tracker import CallTracker
from tests.reconcile.celdb import CDR, csv_rows, insert_rows

SCENARIOS = ["a_support_answered", "b_abandon_while_ringing", "c_sales_rna_then_answered", "d_direct_agent",
             "d2_direct_agent_busy", "e_withheld"]
WINDOW = (datetime(2026, 12, 4, 15, 4).timestamp() - 3600 * 0, datetime(2026, 12, 4, 15, 6).timestamp())


def epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def ami_records() -> dict:
    out: dict = {}
    for name in SCENARIOS:
        messages, _ = decode_all((CDR / f"{name}.ami").read_bytes())
        tracker = CallTracker()
        for event in (e for m in messages for e in tracker.feed(m)):
            out.setdefault(event.call_id, []).append(event)
    return {call_id: fold(events) for call_id, events in out.items()}


async def load(cel_engine) -> None:
    for name in SCENARIOS:
        await insert_rows(cel_engine, csv_rows(name))


def window() -> tuple[float, float]:
    from datetime import timezone
    start = datetime(2026, 12, 4, 15, 4, tzinfo=timezone.utc).timestamp()
    return start, start + 120


async def test_calls_the_log_lacks_are_created_as_asterisk_recorded_them(store, cel_engine):
    await load(cel_engine)
    reconciler = Reconciler(CelReader(cel_engine), store)
    result = await reconciler.run_window(*window())
    truth = ami_records()
    assert sorted(result.created) == sorted(truth) and result.corrected == {} and result.pending == []
    for call_id, ami in truth.items():
        stored = await store.get(call_id)
        assert stored.queue == ami.queue and stored.answered_by == ami.answered_by and stored.end_reason == ami.end_reason
        assert stored.agents_rung == ami.agents_rung, call_id
        assert abs(epoch(stored.ended_at) - epoch(ami.ended_at)) < 1.0
        assert "ended_at" in stored.reconciled and stored.reconciled_at is not None
        assert stored.caller_number is None  # AMI never vouched for these numbers: withheld (unverified)
    busy = await store.get("1796396704.30")
    assert busy.agents_rung == [] and list(busy.unreached) == ["1006"]
    again = await reconciler.run_window(*window())
    assert again.written == 0 and again.unchanged == len(truth)


async def test_calls_the_log_holds_as_ami_told_them_are_left_alone(store, cel_engine):
    await load(cel_engine)
    truth = ami_records()
    await store.upsert(truth.values())
    result = await Reconciler(CelReader(cel_engine), store).run_window(*window())
    assert result.written == 0 and result.unchanged == len(truth)
    restricted = await store.get("1796396729.58")
    assert restricted.caller_number is None and restricted.presentation == "restricted"
    plain = await store.get("1796396649.8")
    assert plain.caller_number == "+34912345678" and plain.reconciled == []


async def test_a_call_seen_in_part_gets_asterisks_times_and_says_so(store, cel_engine):
    await load(cel_engine)
    truth = ami_records()["1796396670.20"]  # sales: 1003 rang out, 1004 answered
    # what the log held after a cut: answered and ended at the reconnect
    partial = dataclasses.replace(truth, answered_at="2026-12-04T15:05:30.000000Z", answer_times={"1004": "2026-12-04T15:05:30.000000Z"},
                                  ended_at="2026-12-04T15:05:31.000000Z", wait_seconds=0.0, talk_seconds=1.0,
                                  last_event_at="2026-12-04T15:05:31.000000Z")
    await store.upsert([partial])
    result = await Reconciler(CelReader(cel_engine), store).run_calls(["1796396670.20"])
    assert set(result.corrected["1796396670.20"]) >= {"answered_at", "ended_at", "wait_seconds", "talk_seconds"}
    fixed = await store.get("1796396670.20")
    for key in ("answered_at", "ended_at"):
        assert abs(epoch(getattr(fixed, key)) - epoch(getattr(truth, key))) < 1.0, key
    assert abs(fixed.wait_seconds - truth.wait_seconds) < 1.0 and abs(fixed.talk_seconds - truth.talk_seconds) < 1.0
    assert fixed.caller_number == "+34933444555"  # AMI saw it: the caller stays as AMI told it
    assert set(fixed.reconciled) == set(result.corrected["1796396670.20"])


async def test_a_call_still_in_progress_waits_for_a_later_pass(store, cel_engine):
    rows = [r for r in csv_rows("a_support_answered") if r["eventtype"] != "LINKEDID_END"]
    await insert_rows(cel_engine, rows)
    result = await Reconciler(CelReader(cel_engine), store).run_window(*window())
    assert result.pending == ["1796396649.8"] and result.written == 0
    assert await store.get("1796396649.8") is None
