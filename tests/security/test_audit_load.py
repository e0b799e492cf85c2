"""The audit trail under load, beside the service's other writers, on real
SQLite files and PostgreSQL: nothing times out, nothing is dropped (the soak
benchmark lost two thirds of the ``pop.delivered`` entries to "database is
locked" on SQLite)."""
from __future__ import annotations

import asyncio
import contextlib

import pytest
from sqlalchemy import func, select

from screenpop.db import create_engine, writing
from screenpop.interactions.migrate import migrate
from screenpop.interactions.models import interactions
from screenpop.interactions.record import InteractionRecord
from screenpop.interactions.rows import to_row
from screenpop.interactions.store import InteractionStore
from screenpop.security.audit import POP_DELIVERED, AuditStore, AuditTrail
from screenpop.security.models import audit_log

BUSY_TIMEOUT = 0.5  # the driver's busy timeout for these tests (5 s in the service)


@pytest.fixture
async def engine(dsn):
    await migrate(dsn)
    options = {"connect_args": {"timeout": BUSY_TIMEOUT}} if dsn.startswith("sqlite") else {}
    engine = create_engine(dsn, **options)
    yield engine
    await engine.dispose()


async def count(engine, table) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


def record(i: int) -> InteractionRecord:
    return InteractionRecord(f"load-{i}", caller_number="+34600111222", queue="sales",
                             started_at=f"2026-11-23T09:{i // 60 % 60:02d}:{i % 60:02d}.000000Z")


def pop_delivered(trail: AuditTrail, i: int) -> None:
    trail.record(f"agent:{1000 + i % 2000}", POP_DELIVERED, "call", f"load-{i // 3}", actor_role="agent",
                 customer=f"sales:c-{i}", detail={"agent_id": str(1000 + i % 2000), "card_status": "known"})


async def test_writers_wait_their_turn_past_the_busy_timeout(engine):
    """One write transaction held open across awaits for longer than the busy
    timeout (what the interaction writer did under a busy event loop): the
    audit trail and the interaction store wait for it instead of failing."""
    trail = AuditTrail(AuditStore(engine), flush_interval=0.02)
    store = InteractionStore(engine)
    await trail.start()
    held = asyncio.Event()

    async def slow_writer() -> None:
        async with writing(engine) as conn:
            await conn.execute(interactions.insert(), [to_row(InteractionRecord("slow-1"))])
            held.set()
            await asyncio.sleep(BUSY_TIMEOUT * 4)

    try:
        slow = asyncio.create_task(slow_writer())
        await asyncio.wait_for(held.wait(), 5)
        for i in range(300):
            pop_delivered(trail, i)
        upserted = await asyncio.wait_for(asyncio.gather(*(store.upsert([record(i)]) for i in range(20))), 10)
        await asyncio.wait_for(slow, 5)
        await asyncio.wait_for(trail.flush(), 10)
    finally:
        await trail.stop()
    assert upserted == [1] * 20
    assert trail.stats.as_dict == {"written": 300, "dropped": 0, "failures": 0}
    assert await count(engine, audit_log) == 300 and await count(engine, interactions) == 21


async def test_a_write_inside_a_write_raises_instead_of_waiting_for_itself(engine):
    async with writing(engine):
        if engine.dialect.name == "sqlite":
            with pytest.raises(RuntimeError, match="wait for itself"):
                async with writing(engine):
                    pass
    # a task started inside is not "inside": it waits its turn
    async with writing(engine) as conn:
        other = asyncio.create_task(InteractionStore(engine).upsert([record(1)]))
        await conn.execute(interactions.insert(), [to_row(InteractionRecord("outer"))])
        await asyncio.sleep(0.05)
    assert await asyncio.wait_for(other, 5) == 1 and await count(engine, interactions) == 2


def test_each_event_loop_has_its_own_turns(tmp_path):
    """The service, the CLI and the tests run several loops on one engine;
    an asyncio.Lock used on one loop cannot be waited for on another."""
    dsn = f"sqlite+aiosqlite:///{tmp_path}/loops.sqlite3"
    asyncio.run(migrate(dsn))
    engine = create_engine(dsn)

    async def contend(run: int) -> None:
        await asyncio.gather(*(InteractionStore(engine).upsert([record(run * 10 + i)]) for i in range(5)))

    try:
        asyncio.run(contend(1))
        asyncio.run(contend(2))
    finally:
        asyncio.run(engine.dispose())


async def test_a_flood_of_pops_is_written_whole_beside_the_interaction_writer(engine):
    """20,000 entries at 10,000/s (500 every 50 ms: 10 times the old writer's
    one batch of 200 per 0.2 s flush interval, 60 times the soak's pops) while
    the interaction writer writes without pause: none dropped, all stored."""
    trail = AuditTrail(AuditStore(engine))  # the service's defaults: 10,000 pending, 0.2 s
    store = InteractionStore(engine)
    flooding = True

    async def interaction_writer() -> int:
        written, i = 0, 0
        while flooding:
            written += await store.upsert([record(i + k) for k in range(20)])
            i += 20
        return written

    await trail.start()
    try:
        writer = asyncio.create_task(interaction_writer())
        for burst in range(40):
            for i in range(burst * 500, (burst + 1) * 500):
                pop_delivered(trail, i)
            await asyncio.sleep(0.05)
        flooding = False
        upserted = await asyncio.wait_for(writer, 10)
        for _ in range(500):
            if not trail.pending:
                break
            await asyncio.sleep(0.02)
    finally:
        await trail.stop()
    assert trail.stats.as_dict == {"written": 20_000, "dropped": 0, "failures": 0}
    assert await count(engine, audit_log) == 20_000
    assert upserted > 0 and await count(engine, interactions) == upserted


class FlakyStore:
    """Fails every other write, after a round trip (as a lost connection would)."""

    def __init__(self, flaky: bool = True):
        self.rows, self.calls, self.flaky = [], 0, flaky

    async def write(self, events):
        self.calls += 1
        await asyncio.sleep(0.001)
        if self.flaky and self.calls % 2:
            raise ConnectionError("connection lost")
        self.rows.extend(events)
        return len(events)


async def test_a_failed_batch_is_written_again_whole_and_in_order():
    store = FlakyStore()
    trail = AuditTrail(store, batch_size=100, flush_interval=0.001, max_pending=10_000)
    await trail.start()
    try:
        for i in range(250):
            pop_delivered(trail, i)
        await asyncio.sleep(0)  # the writer takes a batch...
        for i in range(250, 1000):
            pop_delivered(trail, i)  # ...while more arrive
        for _ in range(500):
            if not trail.pending:
                break
            await asyncio.sleep(0.01)
    finally:
        await trail.stop()
    assert [e.customer for e in store.rows] == [f"sales:c-{i}" for i in range(1000)]
    assert trail.stats.failures >= 5 and trail.stats.dropped == 0 and trail.stats.written == 1000


async def test_a_failed_batch_back_in_a_full_queue_drops_the_oldest(caplog):
    store = FlakyStore()
    store.calls = 0  # the first write fails
    trail = AuditTrail(store, batch_size=3, max_pending=4)
    for i in range(4):
        pop_delivered(trail, i)
    writing_batch = asyncio.create_task(trail.flush())
    await asyncio.sleep(0)  # batch 0..2 out, 3 queued
    for i in range(4, 8):
        pop_delivered(trail, i)  # 3..7: one too many, 3 dropped
    with pytest.raises(ConnectionError):
        await writing_batch
    # 0..2 back in front of 4..7: the oldest over the bound dropped, counted, logged once
    assert trail.pending == 4 and trail.stats.dropped == 4
    assert caplog.text.count("audit entries dropped") == 1 and "count=1 reason=queue-full max_pending=4" in caplog.text
    while trail.pending:  # 4..6 written, 7 fails and is written next time
        with contextlib.suppress(ConnectionError):
            await trail.flush()
    assert [e.customer for e in store.rows] == [f"sales:c-{i}" for i in range(4, 8)]


async def test_entries_written_while_the_queue_overflows_are_not_counted_as_dropped():
    """The batch being written is out of the queue: a full queue drops what
    is still waiting, and the counter says what was really lost."""
    store = FlakyStore(flaky=False)
    trail = AuditTrail(store, batch_size=3, max_pending=4)
    for i in range(4):
        pop_delivered(trail, i)
    writing_batch = asyncio.create_task(trail.flush())
    await asyncio.sleep(0)  # batch 0..2 out, 3 queued
    for i in range(4, 8):
        pop_delivered(trail, i)  # 3..7: one too many, 3 dropped
    await writing_batch
    assert [e.customer for e in store.rows] == [f"sales:c-{i}" for i in (0, 1, 2, 4, 5, 6, 7)]
    assert trail.stats.dropped == 1 and trail.stats.written == 7 and trail.pending == 0


class DownStore:
    calls = 0

    async def write(self, events):
        self.calls += 1
        await asyncio.sleep(0)
        raise ConnectionError("database down")


async def test_new_entries_do_not_cut_the_back_off_short():
    """While the database is away, a busy queue (its wake-ups) must not turn
    the retry back-off into a retry per entry."""
    store = DownStore()
    trail = AuditTrail(store, batch_size=1, flush_interval=0.05)
    await trail.start()
    try:
        for i in range(60):
            pop_delivered(trail, i)
            await asyncio.sleep(0.005)
    finally:
        trail._task.cancel()
        await asyncio.gather(trail._task, return_exceptions=True)
    assert 1 <= store.calls <= 4 and trail.pending == 60  # back-off 0.1 s, 0.2 s, 0.4 s: nothing lost
