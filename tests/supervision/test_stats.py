"""Today's figures from the interaction log: the arithmetic on the captures'
calls, then the same calls stored in real SQLite and PostgreSQL logs, read
incrementally as calls move, and again from scratch (a restarted process)."""
from __future__ import annotations

import asyncio
import dataclasses
import gc
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, update

from screenpop.db import create_engine
from screenpop.interactions.models import interactions
from screenpop.interactions.record import InteractionRecord, fold
from screenpop.interactions.store import InteractionStore
from screenpop.supervision.stats import CallFigures, DayFigures, StatsCache, day_start, read_pages, read_rows
from telephony.events import CallEvent
from telephony.replay import replay
from tests.supervision.helpers import CAPTURES, FIXTURES

CAPTURE_DAY = 1795383500.0  # 2026-11-22 21:38 UTC, just after the captures


def events_of(*names: str) -> dict[str, list[CallEvent]]:
    calls: dict[str, list[CallEvent]] = defaultdict(list)
    for name in names:
        for event in replay([(FIXTURES / f"{name}.ami").read_bytes()]):
            calls[event.call_id].append(event)
    return dict(calls)


def rows_of(*names: str) -> list[dict]:
    return [dataclasses.asdict(fold(events)) for events in events_of(*names).values()]


def q(offered, answered, abandoned, wait, talk, sl, threshold=20.0):
    return {"offered": offered, "answered": answered, "abandoned": abandoned, "avg_wait_seconds": wait,
            "avg_talk_seconds": talk, "service_level": sl, "sl_threshold_seconds": threshold}


EXPECTED = {
    "support_answered": ({"support": q(1, 1, 0, 1.0, 4.5, 1.0)}, {"1001": (1, 4.5)}),
    "sales_no_answer_then_next": ({"sales": q(1, 1, 0, 6.0, 3.5, 1.0)}, {"1004": (1, 3.5)}),
    "billing_abandoned": ({"billing": q(1, 0, 1, None, None, 0.0)}, {}),
    "direct_call": ({}, {"1004": (1, 3.5)}),  # not a queue call: the agent's figures only
    "blind_transfer": ({}, {"1005": (1, 2.5), "1002": (1, 5.5)}),  # each agent's own part of the call
    "burst_small": (
        {"billing": q(3, 0, 3, None, None, 0.0), "sales": q(3, 1, 2, 6.0, 3.5, 0.3333), "support": q(2, 2, 0, 2.0, 4.0, 1.0)},
        {"1001": (1, 2.5), "1002": (1, 5.5), "1004": (1, 3.5), "1005": (1, 20.5)},
    ),
}


def figures_of(day: DayFigures) -> tuple[dict, dict]:
    queues = {name: day.queue(name) for name in day.queues}
    agents = {agent: (a["answered"], a["talk_seconds"]) for agent in day.agents if (a := day.agent(agent))["answered"]}
    return queues, agents


@pytest.mark.parametrize("name", CAPTURES)
def test_capture_figures(name):
    day = DayFigures()
    day.update(rows_of(name))
    assert figures_of(day) == EXPECTED[name]


def test_rows_seen_again_replace_the_old_version():
    events = events_of("support_answered")["1795383106.0"]
    answered_at = next(i for i, e in enumerate(events) if e.type == "call.answered")
    day = DayFigures()
    assert day.update([dataclasses.asdict(fold(events[:answered_at + 1]))]) == {"support"}
    assert day.queue("support") == q(1, 1, 0, 1.0, None, 1.0)  # talking: no talk time yet
    assert day.agent("1001") == {"answered": 1, "talk_seconds": 0.0}
    day.update([dataclasses.asdict(fold(events))])
    day.update([dataclasses.asdict(fold(events))])  # the same row twice counts once
    assert day.queue("support") == q(1, 1, 0, 1.0, 4.5, 1.0)
    assert day.agent("1001") == {"answered": 1, "talk_seconds": 4.5}


def test_service_level_threshold_per_queue():
    day = DayFigures(lambda queue: 5.0 if queue == "sales" else 20.0)
    day.update(rows_of("burst_small", "sales_no_answer_then_next"))
    # the two answered sales calls waited 6 s: outside 5 s
    assert day.queue("sales")["service_level"] == 0.0 and day.queue("sales")["sl_threshold_seconds"] == 5.0
    assert day.queue("support")["service_level"] == 1.0


def test_a_waiting_caller_is_offered_but_not_yet_in_the_service_level():
    events = events_of("billing_abandoned")["1795383152.12"]
    queued = [e for e in events if e.type == "call.queued"]
    figures = CallFigures.from_row(dataclasses.asdict(fold(queued)))
    assert (figures.queue, figures.wait_over, figures.answered) == ("billing", False, False)
    day = DayFigures()
    day.update([dataclasses.asdict(fold(queued))])
    assert day.queue("billing") == q(1, 0, 0, None, None, None)


def test_day_start_in_a_time_zone():
    assert day_start(CAPTURE_DAY) == datetime(2026, 11, 22, tzinfo=timezone.utc)
    # 21:38 UTC is already the 23rd in Tokyo
    assert day_start(CAPTURE_DAY, "Asia/Tokyo") == datetime(2026, 11, 22, 15, tzinfo=timezone.utc)


async def test_figures_from_a_real_log_survive_a_restart(log_engine):
    store = InteractionStore(log_engine)
    clock = [CAPTURE_DAY]
    cache = StatsCache(log_engine, lambda queue: 20.0, clock=lambda: clock[0])
    assert await cache.refresh() == set()
    assert cache.queue("support") == q(0, 0, 0, None, None, None)

    # a call in progress, then its end
    events = events_of("support_answered")["1795383106.0"]
    answered_at = next(i for i, e in enumerate(events) if e.type == "call.answered")
    await store.upsert([fold(events[:answered_at + 1])])
    assert await cache.refresh() == {"support"}
    assert cache.queue("support") == q(1, 1, 0, 1.0, None, 1.0)
    assert cache.agents_changed == {"1001"}  # only the agent who answered: only its message is rebuilt
    await store.upsert([fold(events)])
    assert await cache.refresh() == {"support"}
    assert cache.queue("support") == q(1, 1, 0, 1.0, 4.5, 1.0)
    assert await cache.refresh() == set()  # nothing moved
    assert cache.agents_changed == set()

    # the rest of the captures
    rest = [fold(evs) for cid, evs in events_of(*[c for c in CAPTURES if c != "support_answered"]).items()]
    await store.upsert(rest)
    assert await cache.refresh() == {"billing", "sales", "support"}
    expected = {"support": q(3, 3, 0, 1.7, 4.2, 1.0), "sales": q(4, 2, 2, 6.0, 3.5, 0.5), "billing": q(4, 0, 4, None, None, 0.0)}
    assert {name: cache.queue(name) for name in ("support", "sales", "billing")} == expected
    assert cache.agent("1004") == {"answered": 3, "talk_seconds": 10.5}

    # a restarted process reads the same figures back
    again = StatsCache(log_engine, lambda queue: 20.0, clock=lambda: clock[0])
    await again.refresh()
    assert {name: again.queue(name) for name in ("support", "sales", "billing")} == expected
    assert again.agent("1005") == cache.agent("1005") == {"answered": 2, "talk_seconds": 23.0}

    # the next day starts from nothing
    clock[0] = CAPTURE_DAY + 86400
    assert await cache.refresh() == {"support", "sales", "billing"}
    assert cache.agents_changed >= {"1001", "1004", "1005"}  # a new day: everyone's figures went back to nothing
    assert cache.queue("support") == q(0, 0, 0, None, None, None) and cache.agent("1004")["answered"] == 0


async def test_a_call_in_progress_whose_events_did_not_move_is_not_read_again(log_engine):

    store = InteractionStore(log_engine)
    events = events_of("support_answered")["1795383106.0"]
    answered_at = next(i for i, e in enumerate(events) if e.type == "call.answered")
    await store.upsert([fold(events[:answered_at + 1])])  # answered, not ended
    cache = StatsCache(log_engine, lambda queue: 20.0, clock=lambda: CAPTURE_DAY, overlap=5.0)
    await cache.refresh()
    start = day_start(CAPTURE_DAY)
    newest = cache._newest
    assert [r["call_id"] for r in await read_rows(log_engine, start, newest)] == ["1795383106.0"]
    later = newest + timedelta(seconds=6)
    assert await read_rows(log_engine, start, later) == []  # in progress, but nothing moved since
    await store.upsert([fold(events)])  # it ends: its newest event moves, so it is read again
    assert await cache.refresh() == {"support"} and cache.queue("support")["avg_talk_seconds"] == 4.5


async def test_a_full_read_in_small_pages_gives_the_same_figures_and_never_shows_half_a_day(log_engine):
    store = InteractionStore(log_engine)
    await store.upsert([fold(evs) for evs in events_of(*CAPTURES).values()])
    whole = StatsCache(log_engine, lambda queue: 20.0, clock=lambda: CAPTURE_DAY)
    await whole.refresh()
    paged = StatsCache(log_engine, lambda queue: 20.0, clock=lambda: CAPTURE_DAY, page=2)
    await paged.refresh()
    names = ("support", "sales", "billing")
    assert {n: paged.queue(n) for n in names} == {n: whole.queue(n) for n in names}
    assert paged.figures.agents == whole.figures.agents and len(paged.figures.calls) == len(whole.figures.calls) > 4

    # the next full read: between its pages, readers still see the whole (old) day
    seen = []
    paged.day = None  # as at a day change: the next refresh reads the whole day
    before = paged.figures

    async def watch():
        while True:
            seen.append(paged.queue("sales")["offered"])
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    await paged.refresh()
    watcher.cancel()
    assert len(seen) > 2 and set(seen) == {whole.queue("sales")["offered"]}
    assert paged.figures is not before  # new figures, swapped in once whole


async def written_as_they_went(engine) -> None:
    """Stamp each stored call as written when its last event came, as a
    writer keeping up with the PBX leaves them (one test upsert stamps all
    with one instant)."""
    async with engine.begin() as conn:
        await conn.execute(update(interactions).values(events_written_at=interactions.c.last_event_at))


async def test_ended_calls_are_forgotten_per_call_but_stay_counted(log_engine):
    store = InteractionStore(log_engine)
    await store.upsert([fold(evs) for evs in events_of(*CAPTURES).values()])
    await written_as_they_went(log_engine)
    whole = DayFigures()  # every call, nothing forgotten
    whole.update(await read_rows(log_engine, day_start(CAPTURE_DAY)))
    newest = max(c.written_at for c in whole.calls.values())
    # the captures span more than the look-back and its margin: the early calls are settled
    kept = {cid for cid, c in whole.calls.items() if c.written_at >= newest - timedelta(seconds=10.0 + 60.0)}
    assert 0 < len(kept) < len(whole.calls)
    cache = StatsCache(log_engine, lambda queue: 20.0, clock=lambda: CAPTURE_DAY)
    await cache.refresh()
    assert set(cache.figures.calls) == kept
    names = ("support", "sales", "billing")
    figures = {n: cache.queue(n) for n in names}
    assert figures == {n: whole.queue(n) for n in names}
    assert await cache.refresh() == set()  # the recent calls read again: replaced, not counted twice
    assert {n: cache.queue(n) for n in names} == figures


async def test_a_call_logged_late_is_counted_without_reading_the_day_again(log_engine):
    """A call whose row reaches the log late (the writer's queue replayed
    after a database outage) has events older than every call already read.
    Read by the events' time, the incremental read never saw it, and the
    whole day was read again every 10 minutes to catch it; read by the time
    of the write, it is counted by the next read, and the day is not read
    again."""
    store = InteractionStore(log_engine)
    calls = {cid: fold(evs) for cid, evs in events_of(*CAPTURES).items()}
    late = min(calls, key=lambda cid: calls[cid].last_event_at)  # the oldest call of the captures
    await store.upsert([record for cid, record in calls.items() if cid != late])
    await written_as_they_went(log_engine)
    cache = StatsCache(log_engine, lambda queue: 20.0, clock=lambda: CAPTURE_DAY)
    await cache.refresh()
    day = cache.figures
    await store.upsert([calls[late]])
    everything = StatsCache(log_engine, lambda queue: 20.0, clock=lambda: CAPTURE_DAY)
    await everything.refresh()  # a restarted process: the whole day, read now
    assert figures_of(day) != figures_of(everything.figures)  # the late call counts for something

    await cache.refresh()
    assert cache.figures is day  # an incremental read, not the day again
    assert figures_of(cache.figures) == figures_of(everything.figures)


async def test_a_lookup_logged_late_does_not_count_a_settled_call_again(log_engine):
    """Only a change of the call's events stamps a new write time: a lookup
    result written after its call was settled (and forgotten per call) must
    not bring the call back to the incremental read, which would count it a
    second time."""
    store = InteractionStore(log_engine)
    await store.upsert([fold(evs) for evs in events_of(*CAPTURES).values()])
    await written_as_they_went(log_engine)
    cache = StatsCache(log_engine, lambda queue: 20.0, clock=lambda: CAPTURE_DAY)
    await cache.refresh()
    before = figures_of(cache.figures)
    rows = {row["call_id"]: row for row in await read_rows(log_engine, day_start(CAPTURE_DAY))}
    settled = sorted(cid for cid, row in rows.items() if cid not in cache.figures.calls and row["answered_at"])
    assert settled, "the captures span more than the look-back: their early answered calls are settled"
    lookup = InteractionRecord(settled[0], caller_e164="+34912345678", customer_name="Late Lookup SL",
                               card_status="known", lookup_at="2026-11-22T21:40:00.000000Z")
    assert await store.upsert([lookup]) == 1  # the row changed ...
    stamped = {row["call_id"]: row["events_written_at"] for row in await read_rows(log_engine, day_start(CAPTURE_DAY))}
    assert stamped[settled[0]] == rows[settled[0]]["events_written_at"]  # ... but not its events' write time
    await cache.refresh()
    assert figures_of(cache.figures) == before
    assert settled[0] not in cache.figures.calls


async def test_a_whole_day_read_forgets_settled_calls_as_it_goes(log_engine, monkeypatch):
    """A whole-day read held every call of the day until its last page: late
    on a busy day, a million entries at once.  In pages of 2, it holds the
    calls not yet settled and a page or so more, and ends as a read in one
    page does."""
    store = InteractionStore(log_engine)
    await store.upsert([fold(evs) for evs in events_of(*CAPTURES).values()])
    await written_as_they_went(log_engine)
    everything = len(await read_rows(log_engine, day_start(CAPTURE_DAY)))
    held = []
    update = DayFigures.update

    def counting(self, rows):
        changed = update(self, rows)
        held.append(len(self.calls))
        return changed

    monkeypatch.setattr(DayFigures, "update", counting)
    whole = StatsCache(log_engine, lambda queue: 20.0, clock=lambda: CAPTURE_DAY)
    await whole.refresh()
    paged = StatsCache(log_engine, lambda queue: 20.0, clock=lambda: CAPTURE_DAY, page=2)
    held.clear()
    await paged.refresh()
    assert len(held) > 2 and max(held) < everything, (held, everything)
    assert set(paged.figures.calls) == set(whole.figures.calls)
    names = ("support", "sales", "billing")
    assert {n: paged.queue(n) for n in names} == {n: whole.queue(n) for n in names}


def explained(engine) -> list[str]:
    """Make ``engine`` answer its reads of the interaction log with their
    query plans (the real statement, the real parameters), one line a row.
    PostgreSQL is told to avoid whole-table scans: on a table this small it
    would take one whatever the indexes, so its plan then shows whether an
    index can serve the query at all."""
    postgres = engine.dialect.name == "postgresql"

    @event.listens_for(engine.sync_engine, "connect")
    def no_seqscan(dbapi_connection, _record):
        if postgres:
            cursor = dbapi_connection.cursor()
            cursor.execute("SET enable_seqscan = off")
            cursor.close()

    @event.listens_for(engine.sync_engine, "before_cursor_execute", retval=True)
    def explain(_conn, _cursor, statement, parameters, _context, _many):
        if "FROM interactions" in statement:
            statement = ("EXPLAIN " if postgres else "EXPLAIN QUERY PLAN ") + statement
        return statement, parameters


async def test_recent_changes_are_read_page_by_page_through_their_index(log_dsn):
    """The every-2-seconds read of calls whose events were written lately
    walked the whole day's calls by call id (42 ms at 90,000 calls, growing
    all day: see bench/bench_stats.py).  Now it pages through
    (events_written_at, call_id), which an index serves: every page, the
    first and the later ones, on both engines; and pages that split calls
    written at the same instant read each once."""
    at = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)
    iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # noqa: E731
    moved = [InteractionRecord(f"1795500000.{n}", started_at=iso(at - timedelta(minutes=5)), last_event_at=iso(at))
             for n in range(5)]  # five calls whose last events came at the same instant
    moved.append(InteractionRecord("1795400000.1", started_at=iso(at - timedelta(hours=1)),
                                   last_event_at=iso(at + timedelta(seconds=1))))  # an old call that just moved
    still = [InteractionRecord(f"1795600000.{n}", started_at=iso(at - timedelta(minutes=1)),
                               last_event_at=iso(at - timedelta(seconds=30))) for n in range(3)]
    engine = create_engine(log_dsn)
    try:
        await InteractionStore(engine).upsert(moved + still)
        await written_as_they_went(engine)
        pages = [[row["call_id"] for row in rows]
                 async for rows in read_pages(engine, day_start(at.timestamp()), at - timedelta(seconds=1), page=2)]
        assert pages == [["1795500000.0", "1795500000.1"], ["1795500000.2", "1795500000.3"],
                         ["1795500000.4", "1795400000.1"]]
    finally:
        await engine.dispose()

    engine = create_engine(log_dsn)
    explained(engine)
    try:
        since, changed_after = day_start(at.timestamp()), at - timedelta(seconds=1)
        plans = [await read_rows(engine, since, changed_after, limit=2),
                 await read_rows(engine, since, changed_after, after=(at, "1795500000.1"), limit=2)]
    finally:
        await engine.dispose()
    for plan in plans:
        text = " ".join(str(value) for row in plan for value in row.values())
        assert "ix_interactions_events_written_at" in text, text


async def test_reads_leave_no_statement_cycles_for_the_full_collection(log_engine):
    """The figures are read every 2 s while calls move.  Statements built per
    read (the page key's tuple comparison above all) left reference cycles
    of SQL expression objects that only a full collection frees, and the
    soak found them in its garbage at the end; the statements are now built
    once per shape and take their values as parameters."""
    store = InteractionStore(log_engine)
    await store.upsert([fold(evs) for evs in events_of(*CAPTURES).values()])
    await written_as_they_went(log_engine)
    since = day_start(CAPTURE_DAY)
    changed_after = min(r["events_written_at"] for r in await read_rows(log_engine, since))

    async def every_shape():
        for after in (None, changed_after):
            assert [row async for rows in read_pages(log_engine, since, after, page=2) for row in rows]
        assert await read_rows(log_engine, since, changed_after)

    await every_shape()  # first use: the statements are built and cached
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        await every_shape()
        gc.collect()
        sql = [type(o).__module__ + "." + type(o).__name__ for o in gc.garbage if type(o).__module__.startswith("sqlalchemy.sql")]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert sql == []
