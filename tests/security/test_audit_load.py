"""The audit trail under load, beside the service's other writers, on real
SQLite files and PostgreSQL: nothing times out, nothing is dropped (the soak
benchmark lost two thirds of the ``pop.delivered`` entries to "database is
locked" on SQLite)."""
from __future__ import annotations

import asyncio

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
