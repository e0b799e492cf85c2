"""PostgreSQL, the interaction log's database, gone during traffic.

The shared PostgreSQL is never stopped: the node reaches a scratch database
through :class:`~tests.faults.proxy.TcpProxy`, and the outage is the proxy
cutting every connection and refusing new ones, exactly what the node would
see of a database host going down, then coming back on the same address."""
from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from screenpop.interactions.record import fold
from tests.pg import asyncpg_dsn, postgres_proxy  # noqa: F401  (postgres_proxy: the proxy fixture)
from tests.stack import Stack

from .harness import EventTap, Inbox, eventually
from .proxy import TcpProxy

CALLERS = [("+34912345678", "Ana Garcia"), ("+14155550100", "Bob Smith"), ("+34600111222", "Frank Moreno"),
           ("+34955000111", None), (None, None)]
OUTAGE_SECONDS = 10  # "down for a minute", compressed: the mechanism does not depend on the length
POP_BUDGET = 1.0  # seconds from the call event reaching the orchestrator to the pop on the agent's socket


def through(proxy: TcpProxy, dsn: str) -> str:
    return make_url(dsn).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


async def stored(dsn: str) -> dict[str, dict]:
    conn = await asyncpg.connect(asyncpg_dsn(dsn))
    try:
        rows = await conn.fetch("SELECT call_id, ended_at, end_reason, answered_by, queue FROM interactions")
    finally:
        await conn.close()
    return {r["call_id"]: dict(r) for r in rows}


async def test_postgres_down_during_traffic_queues_spills_and_replays_every_call_once(demo_dbs, tmp_path, database, proxy):
    """Proves: with PostgreSQL unreachable for a stretch of continuous
    traffic (10 s here, standing for a minute or more), pops go on within
    their budget, agents stay connected, /healthz reports storage down with
    the queued writes, the interaction writes queue in memory and, past
    ``max_pending``, spill to the file; when the database is back they are
    replayed, and in the end every call the node handled is in the log
    exactly once, with its end (none lost, none twice).

    Test settings: ``max_pending`` 4 so the spill file is used within the
    short outage; the writer's retry back-off is capped at 1 s (30 s in
    production: the replay then starts at most 30 s after the database
    returns)."""
    spill = tmp_path / "spill.jsonl"

    def configure(settings):
        return replace(settings, storage=replace(settings.storage, dsn=through(proxy, database)),
                       interactions=replace(settings.interactions, max_pending=4, spill_path=str(spill)))

    stack = Stack(demo_dbs, tmp_path, configure=configure)
    await stack.start()
    try:
        writer = stack.service.interactions.writer
        writer.retry_max = 1.0
        tap = EventTap(stack.service)
        inboxes = {agent: Inbox(await stack.socket(f"agent{agent}")) for agent in ("1001", "1002", "1003", "1004", "1005")}
        traffic = asyncio.create_task(stack.simulator.run_traffic(
            0.6, CALLERS, duration=OUTAGE_SECONDS + 5, speed=3, wait=True))
        await eventually(lambda: writer.stats.rows_written >= 3, what="first rows written", timeout=10)

        await proxy.cut()
        cut_at = time.time()
        await eventually(lambda: writer.stats.outage, what="the writer noticing the outage")
        async with stack.http.get(f"{stack.url}/healthz") as r:
            health = await r.json()
        assert r.status == 503 and health["parts"]["storage"]["ok"] is False, health
        await eventually(lambda: writer.stats.spilled > 0 and spill.exists(), what="records spilled", timeout=OUTAGE_SECONDS)
        remaining = cut_at + OUTAGE_SECONDS - time.time()
        if remaining > 0:
            await asyncio.sleep(remaining)  # the outage is a span of time: traffic keeps flowing through it
        assert writer.stats.outage and writer.stats.failures >= 2
        await proxy.restore()
        restored_at = time.time()

        await asyncio.wait_for(traffic, 30)
        ended = await eventually(lambda: len(tap.ended()) == len(tap.by_call) and tap.ended(), what="every call ended")
        await eventually(lambda: writer.stats.pending == 0 and not writer.stats.outage and not spill.exists()
                         and not writer.replay_path.exists(), what="queue and spill file replayed", timeout=15)
        recovered_in = time.time() - restored_at
        async with stack.http.get(f"{stack.url}/healthz") as r:
            assert (await r.json())["parts"]["storage"]["ok"] is True
        assert await writer.flush()  # nothing in flight either
        rows = await stored(database)

        # none lost, none twice, each with what the call events said
        assert len(ended) >= 8, f"too little traffic to prove anything: {len(ended)} calls"
        assert sorted(rows) == sorted(ended)
        for call_id, event in ended.items():
            want, row = fold(tap.by_call[call_id]), rows[call_id]  # what the call's events say
            assert row["ended_at"] is not None and row["end_reason"] == event.reason, (call_id, row, event)
            assert (row["answered_by"], row["queue"]) == (want.answered_by, want.queue), (call_id, row, want)
        assert writer.stats.replayed > 0 and writer.stats.dropped == 0 and writer.stats.rejected == 0
        calls_during = [cid for (cid, kind), at in tap.first_at.items() if kind == "call.ended" and cut_at < at < restored_at]
        assert len(calls_during) >= 3, "calls must end during the outage for it to prove anything"
        # pops went on through the outage, on time, and nobody was disconnected
        popped_during = [at for inbox in inboxes.values() for m, at in zip(inbox.messages, inbox.arrived)
                         if m["type"] == "pop" and cut_at < at < restored_at]
        assert len(popped_during) >= 3
        for agent, inbox in inboxes.items():
            assert inbox.closed is None, agent
            delays = tap.pop_delays(agent, inbox)
            assert all(late < POP_BUDGET for _, late in delays), (agent, delays)
        assert recovered_in < 10
        for inbox in inboxes.values():
            await inbox.close()
    finally:
        await stack.stop()
