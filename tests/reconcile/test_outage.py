"""An AMI cut on the whole node, through a TCP proxy in front of the PBX
simulator, with the simulator writing Asterisk's CEL rows to a real
database as cel_pgsql does (nothing mocked).

During the cut one call ends, one is answered, and one begins and ends
entirely.  Afterwards the log holds exactly one record per call, each as
Asterisk saw it: who rang, who answered, the queue, start, answer and end
within a second of Asterisk's own, the end reason; the fields taken from
Asterisk's records are marked, the link's outage showed on /healthz and
/metrics and reached every screen as a ``pbx`` message."""
from __future__ import annotations

import asyncio
import collections
from dataclasses import replace
from datetime import datetime

import pytest
from sqlalchemy import text

from adapters.engine import make_engine
from screenpop.interactions.record import fold
from telephony.tracker import CallTracker
from tests.faults.harness import Inbox, eventually, start_call
from tests.faults.proxy import TcpProxy
from tests.reconcile.celdb import CelSink, create_cel_table
from tests.stack import Stack, seed_databases

ANA, BOB, CARLA = "+34912345678", "+14155550100", "+34600111222"


@pytest.fixture(scope="module")
def demo_dbs(tmp_path_factory):
    return seed_databases(tmp_path_factory.mktemp("reconcile"))


def epoch(ts: str | None) -> float | None:
    return None if ts is None else datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


class Truth:
    """Every event the simulator played, whether or not a client heard it:
    the calls as AMI would have told them without the cut."""

    def __init__(self, simulator):
        self.events: dict[str, list[dict]] = collections.defaultdict(list)
        simulator.on_event_sent(lambda event, _at: self.events[str(event.get("Linkedid", ""))].append(
            {k: str(v) for k, v in event.items()}))

    def record(self, call_id: str):
        tracker = CallTracker()
        return fold([e for ev in self.events[call_id] for e in tracker.feed(ev)])


async def test_an_ami_cut_leaves_one_exact_record_per_call(demo_dbs, tmp_path):
    cel_dsn = f"sqlite+aiosqlite:///{tmp_path}/asteriskcdr.sqlite3"
    cel_engine = make_engine(cel_dsn, read_only=False)
    await create_cel_table(cel_engine)
    proxy = TcpProxy(target_port=1)
    await proxy.start()
    holder: dict = {}

    def configure(settings):
        proxy.target = ("127.0.0.1", holder["stack"].simulator.port)
        return replace(settings, ami=replace(settings.ami, port=proxy.port),
                       reconcile=replace(settings.reconcile, dsn=cel_dsn, interval_seconds=0.5, settle_seconds=0.3,
                                         margin_seconds=2.0))

    stack = holder["stack"] = Stack(demo_dbs, tmp_path, configure=configure)
    sink = CelSink(cel_engine)
    stack.simulator.record_cel(sink.sink)
    truth = Truth(stack.simulator)
    sink.start()
    try:
        async with stack:
            service = stack.service
            alice = Inbox(await stack.socket("agent1001"))
            # A: answered before the cut, ends during it.  C: rings before, answered during it, ends after.
            a, _ = start_call(stack.simulator, "queue_answered", ANA, "Ana Garcia", queue="support", agents=["1001"],
                              answer_after=0.3, talk_seconds=2.5)
            c, _ = start_call(stack.simulator, "queue_answered", BOB, "Bob Smith", queue="sales", agents=["1004"],
                              answer_after=2.0, talk_seconds=4.0)
            # D: answered by 1005 before the cut, blind-transferred to 1002 during it, ends after.
            d, _ = start_call(stack.simulator, "blind_transfer", "+6591234567", "Hector Lim", agents=["1005", "1002"],
                              answer_after=0.3, transfer_after=1.5, talk_seconds=4.0)
            await eventually(lambda: alice.of(a, "call", "answered"), what="A answered before the cut")
            logins = service.connection.logins
            await proxy.cut()
            await eventually(lambda: service.connection.down_since is not None, what="the link is down")
            await eventually(lambda: any(m.get("type") == "pbx" and m.get("state") == "down" for m in alice.messages),
                             what="the banner message")
            health = await stack.api("GET", "/healthz", None)
            # B: begins and ends inside the cut.
            b, b_done = start_call(stack.simulator, "queue_answered", CARLA, "Frank Moreno", queue="support",
                                   agents=["1002"], answer_after=0.4, talk_seconds=0.8)
            await asyncio.wait_for(b_done, 10)
            await asyncio.sleep(1.5)  # A is over too now; C was answered
            await proxy.restore()
            await eventually(lambda: service.connection.logins > logins and service.connection.state == "connected",
                             timeout=10, what="the link is back")
            await eventually(lambda: any(m.get("type") == "pbx" and m.get("state") == "up" for m in alice.messages),
                             what="the banner goes")
            token = await stack.token("supervisor")
            records = {call_id: await stack.logged(call_id, token, timeout=20) for call_id in (a, b, c, d)}
            await eventually(lambda: service.ingest.reconciliation.passes >= 2 and not service.ingest.reconciliation.pending,
                             timeout=20, what="reconciled")
            records = {call_id: (await stack.api("GET", f"/api/v1/interactions/{call_id}", token))[1] for call_id in (a, b, c, d)}
            status, found = await stack.api("GET", "/api/v1/interactions?limit=50", token)

            async def offered(queue: str) -> int:
                return (await stack.api("GET", f"/api/v1/queues/{queue}", token))[1]["today"]["offered"]

            figures: dict = {}

            async def counted() -> bool:
                figures.update(support=await offered("support"), sales=await offered("sales"))
                return figures["support"] == 2 and figures["sales"] == 1

            for _ in range(100):  # the supervisors' figures count the call born inside the cut
                if await counted():
                    break
                await asyncio.sleep(0.1)
            metrics = await (await stack.http.get(f"{stack.url}/metrics")).text()
            await alice.close()
    finally:
        await sink.stop()
        await proxy.stop()
        await cel_engine.dispose()

    # the outage was visible while it lasted
    assert health[0] == 503 and health[1]["parts"]["ami"]["ok"] is False and "down_since" in health[1]["parts"]["ami"]
    assert "screenpop_calls_reconciled_total" in metrics and "screenpop_ami_outage_seconds" in metrics
    assert figures["support"] == 2 and figures["sales"] == 1
    # one record per call, nothing else, nothing twice
    assert status == 200 and sorted(i["call_id"] for i in found["items"]) == sorted([a, b, c, d])
    for call_id in (a, b, c, d):
        real, got = truth.record(call_id), records[call_id]
        assert (got["queue"], got["answered_by"], got["end_reason"]) == (real.queue, real.answered_by, real.end_reason), call_id
        assert got["agents_rung"] == real.agents_rung, call_id
        for key in ("started_at", "answered_at", "ended_at"):
            assert abs(epoch(got[key]) - epoch(getattr(real, key))) < 1.0, (call_id, key, got[key], getattr(real, key))
        assert abs(got["talk_seconds"] - real.talk_seconds) < 1.0 and abs(got["wait_seconds"] - real.wait_seconds) < 1.0, call_id
    assert set(records[b]["reconciled"]) >= {"queue", "answered_at", "ended_at"}  # born and dead inside the cut
    assert records[b]["caller_number"] is None  # AMI never saw it: its presentation is not known
    assert "ended_at" in records[a]["reconciled"]  # it ended during the cut: not at the reconnect
    assert records[a]["caller_number"] == ANA and records[c]["caller_number"] == BOB
    # the transfer made during the cut: from 1005 to 1002, who answered and had the caller at the end
    assert [(t["from_agent"], t["to_agent"]) for t in records[d]["transfers"]] == [("1005", "1002")]
    assert records[d]["answered_by"] == "1002" and records[d]["agents_answered"] == ["1005", "1002"]
