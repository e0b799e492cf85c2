"""The writer on SQLite and PostgreSQL: every call of the real captures ends
up in the log exactly once with the folded content, also when the same
events come twice, when the database goes away in the middle of the writes
and comes back, when the memory bound spills to the file, and when the
process stops during an outage and a new one replays the file."""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from customer_lookup.card import KNOWN, CustomerCard, Person, SourceStatus
from screenpop.interactions import spill
from screenpop.interactions.models import interactions
from screenpop.interactions.record import InteractionRecord, fold, lookup_from_card, with_lookup
from screenpop.interactions.store import InteractionStore
from screenpop.interactions.writer import InteractionWriter
from telephony.events import CallEvent

from tests.pg import admin

from .conftest import by_call, capture_events

FAST = dict(flush_interval=0.02, retry_min=0.05, retry_max=0.3, write_timeout=3.0, batch_size=50)


def many_calls(copies: int) -> list[CallEvent]:
    """The real captures' events, each call cloned under new call ids."""
    base = capture_events()
    return [dataclasses.replace(e, call_id=f"{e.call_id}#{k}") for k in range(copies) for e in base]


def expected(events: list[CallEvent], cards: dict[str, CustomerCard] | None = None) -> dict[str, InteractionRecord]:
    out = {cid: fold(evs) for cid, evs in by_call(events).items()}
    for cid, card in (cards or {}).items():
        out[cid] = with_lookup(out[cid], **lookup_from_card(card))
    return out


async def assert_logged(store: InteractionStore, want: dict[str, InteractionRecord]) -> None:
    async with store.engine.connect() as conn:
        total = (await conn.execute(select(func.count()).select_from(interactions))).scalar_one()
    assert total == len(want)  # once each
    for call_id, record in want.items():
        got = await store.get(call_id)
        assert got == record, call_id


async def eventually(condition, timeout=10.0, what="condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def a_card(name: str, e164: str) -> CustomerCard:
    return CustomerCard(KNOWN, e164, e164, [Person(name=name, keys={"sales": [f"C-{name}"]})], {"sales": SourceStatus("ok")}, generated_at="2026-11-22T21:40:00Z")


async def feed(writer: InteractionWriter, events: list[CallEvent], pause: float = 0.0) -> None:
    for event in events:
        writer.submit(event)
        if pause:
            await asyncio.sleep(pause)


# ------------------------------------------------------------------- normal


async def test_every_call_logged_once_with_lookups(store):
    events = capture_events()
    cards = {"1795383106.0": a_card("Ana", "+34912345678"), "1795383127.6": a_card("Bob", "+14155550100")}
    writer = InteractionWriter(store, **FAST)
    await writer.start()
    await feed(writer, events, pause=0.001)
    for cid, card in cards.items():
        writer.submit_lookup(cid, card)
    await writer.stop()
    await assert_logged(store, expected(events, cards))
    assert writer.stats.failures == 0 and writer.stats.pending == 0

    # the same events again, as after a reconnect replay, in another process
    again = InteractionWriter(store, **FAST)
    await again.start()
    await feed(again, events[::-1])
    for cid, card in cards.items():
        again.submit_lookup(cid, card)
    await again.stop()
    assert again.stats.rows_written == 0  # nothing written twice
    await assert_logged(store, expected(events, cards))


async def test_submit_never_raises_and_returns_at_once(store, caplog):
    writer = InteractionWriter(store, **FAST)  # not even started
    writer.submit(object())
    writer.submit(dataclasses.replace(capture_events("direct_call")[0], ts="not a time"))
    writer.submit_lookup("c1", object())
    writer.submit_lookup("c1", {"status": "known", "e164": "+1", "persons": "garbage"})
    assert "interaction event refused" in caplog.text and "interaction lookup refused" in caplog.text
    await writer.stop()


async def test_a_bad_record_does_not_hold_the_others_back(store, caplog):
    writer = InteractionWriter(store, **FAST)
    events = capture_events("support_answered", "direct_call")
    bad = dataclasses.replace(events[0], call_id="x" * 500)  # longer than the column
    await writer.start()
    await feed(writer, [*events, bad])
    await writer.stop()
    await assert_logged(store, expected(events))
    assert writer.stats.rejected == 1 and f"interaction record rejected call_id={'x' * 500}" in caplog.text


# ------------------------------------------------------------------ outages


async def pg_block(dsn: str) -> None:
    """No new connections, and every existing one killed: the database is gone."""
    name = make_url(dsn).database
    conn = await admin()
    try:
        await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name)
    finally:
        await conn.close()


async def pg_unblock(dsn: str) -> None:
    conn = await admin()
    try:
        await conn.execute(f'ALTER DATABASE "{make_url(dsn).database}" ALLOW_CONNECTIONS true')
    finally:
        await conn.close()


class Outage:
    """Takes the database away and brings it back, on either engine.  SQLite:
    the file is swapped (atomically) for one that is not a database, the real
    one kept under another name and swapped back."""

    def __init__(self, engine):
        self.engine = engine
        self.url = engine.url

    @property
    def sqlite_path(self) -> Path:
        return Path(self.url.database)

    async def begin(self) -> None:
        if self.url.get_backend_name() == "sqlite":
            path = self.sqlite_path
            os.link(path, path.with_suffix(".away"))
            garbage = path.with_suffix(".garbage")
            garbage.write_bytes(b"this is not a database " * 100)
            os.replace(garbage, path)
        else:
            await pg_block(self.url.render_as_string(hide_password=False))

    async def end(self) -> None:
        if self.url.get_backend_name() == "sqlite":
            os.replace(self.sqlite_path.with_suffix(".away"), self.sqlite_path)
        else:
            await pg_unblock(self.url.render_as_string(hide_password=False))


async def test_database_lost_during_writes_then_back(store, engine, caplog):
    caplog.set_level(logging.INFO, logger="screenpop.interactions")
    events = many_calls(30)  # 420 calls, ~1800 events
    writer = InteractionWriter(store, **FAST)
    outage = Outage(engine)
    await writer.start()
    feeding = asyncio.create_task(feed(writer, events, pause=0.002))
    await eventually(lambda: writer.stats.rows_written > 20, what="first writes")
    await outage.begin()
    try:
        await eventually(lambda: writer.stats.failures >= 2, what="failed writes")
        assert writer.stats.outage
    finally:
        await asyncio.sleep(0.5)  # events keep coming while the database is away
        await outage.end()
    await feeding
    # duplicates of everything, as a reconnect replay would send them
    await feed(writer, events[: len(events) // 3])
    await eventually(lambda: writer.stats.pending == 0 and not writer.stats.outage, what="queue drained")
    await writer.stop()
    assert writer.stats.dropped == 0 and writer.stats.rejected == 0
    await assert_logged(store, expected(events))
    assert "interaction write failed, queueing" in caplog.text
    assert "interaction log reachable again" in caplog.text


async def test_spill_file_when_memory_is_full_and_at_stop_then_replayed_by_the_next_process(store, engine, tmp_path, caplog):
    events = many_calls(3)  # 42 calls
    path = tmp_path / "spill" / "interactions.jsonl"
    writer = InteractionWriter(store, spill_path=path, max_pending=10, **FAST)
    outage = Outage(engine)
    await writer.start()
    await outage.begin()
    try:
        await feed(writer, events, pause=0.001)
        await eventually(lambda: writer.stats.spilled >= 10, what="spill")
        await writer.stop(timeout=1.0)  # stops during the outage: the rest goes to the file too
    finally:
        await outage.end()
    assert "interaction records spilled to file reason='queue full'" in caplog.text
    assert writer.stats.dropped == 0 and writer.stats.pending == 0
    assert not (await store.search(limit=1)).total
    # a replay tried during the outage left its part aside in .replay; both are kept
    kept = tmp_path / "copy.jsonl"
    kept.write_bytes(b"".join(p.read_bytes() for p in (writer.replay_path, path) if p.exists()))
    records = spill.read_chunk(kept, 0, 10_000)[0]
    assert {r.call_id for r in records} == set(by_call(events))

    later = InteractionWriter(store, spill_path=path, **FAST)  # a restart
    await later.start()
    await eventually(lambda: not path.exists() and not later.replay_path.exists(), what="spill replayed")
    await later.stop()
    await assert_logged(store, expected(events))

    # a crash after writing but before deleting the file: replayed again, nothing changes
    path.write_bytes(kept.read_bytes())
    again = InteractionWriter(store, spill_path=path, **FAST)
    await again.start()
    assert await again.flush()
    await again.stop()
    assert again.stats.replayed == len(records) and again.stats.rows_written == 0
    await assert_logged(store, expected(events))


async def test_without_a_spill_file_the_bound_drops_with_an_error(store, engine, caplog):
    writer = InteractionWriter(store, max_pending=3, **FAST)
    events = capture_events("burst_small")
    outage = Outage(engine)
    await outage.begin()
    try:
        await feed(writer, events)
        assert writer.stats.pending == 3 and writer.stats.dropped > 0
        assert "interaction queue full, record dropped" in caplog.text
        await writer.stop(timeout=0.5)
        assert "interaction records lost at stop calls=3" in caplog.text
    finally:
        await outage.end()


def test_torn_and_damaged_spill_lines_are_skipped(tmp_path, caplog):
    path = tmp_path / "s.jsonl"
    good = [InteractionRecord("a", queue="q"), InteractionRecord("b", end_reason="completed")]
    spill.append(path, good)
    with open(path, "a") as f:
        f.write("{not json}\n")
        f.write(spill.to_line(InteractionRecord("c"))[:-5])  # torn: no newline
    records, offset, at_end = spill.read_chunk(path, 0, 100)
    assert records == good and at_end and offset == path.stat().st_size
    first, offset, at_end = spill.read_chunk(path, 0, 1)
    assert first == good[:1] and not at_end
    assert spill.read_chunk(path, offset, 1)[0] == good[1:]
    assert "torn last line" in caplog.text and "unreadable line" in caplog.text


# ---------------------------------------------------------------- hanging


async def test_a_hanging_database_times_out_writes_and_loses_nothing(engine, store, tmp_path):
    """The database answers nothing (another session holds the table or the
    file locked): writes time out, are retried, and once the lock goes every
    call is there once; a stop during the hang spills what is queued."""
    events = capture_events()
    path = tmp_path / "spill.jsonl"
    writer = InteractionWriter(store, spill_path=path, **{**FAST, "write_timeout": 0.5})
    await writer.start()
    await feed(writer, events[:10])
    await eventually(lambda: writer.stats.rows_written > 0, what="first writes")
    async with engine.connect() as blocker:
        if engine.dialect.name == "postgresql":
            await blocker.exec_driver_sql("BEGIN")
            await blocker.exec_driver_sql("LOCK TABLE interactions IN ACCESS EXCLUSIVE MODE")
        else:
            await blocker.exec_driver_sql("BEGIN EXCLUSIVE")
        await feed(writer, events[10:])
        await eventually(lambda: writer.stats.failures >= 1, what="timed-out writes")
        started = asyncio.get_running_loop().time()
        await writer.stop(timeout=0.3)  # stopping while it hangs: queued records go to the file
        # SQLite's driver thread finishes its busy wait (5 s) before a cancelled write returns
        assert asyncio.get_running_loop().time() - started < 7
        assert path.exists() or writer.replay_path.exists()
        await blocker.rollback()
    assert writer.stats.dropped == 0
    later = InteractionWriter(store, spill_path=path, **FAST)
    await later.start()
    await eventually(lambda: not path.exists() and not later.replay_path.exists(), what="spill replayed")
    await later.stop()
    await assert_logged(store, expected(events))
