"""Three `screenpop serve` processes behave as one service (issue 6).

Real parts only: three node processes on loopback, the machine's Redis and
a scratch PostgreSQL database, the PBX simulator speaking AMI over TCP, and
independent `websockets` clients as the agents' browsers."""
from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.demo import demo_sources
from screenpop.auth.store import AccountStore, ensure_demo_users
from screenpop.demo import demo_users
from screenpop.interactions.migrate import migrate
from telephony.simulator import PbxSimulator
from tests.cluster.nodes import SECRET, Cluster, collect, drain, write_config
from tests.conftest import REDIS_URL
from tests.pg import scratch_database

ANA = "+34912345678"


@pytest.fixture
async def storage():
    async with scratch_database("cluster") as dsn:
        await migrate(dsn)
        engine = create_async_engine(dsn)
        await ensure_demo_users(AccountStore(engine), demo_users())
        yield dsn, engine
        await engine.dispose()


@pytest.fixture
async def simulator():
    sim = PbxSimulator(seed=11, secret=SECRET)
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
async def redis_url_and_prefix(redis_client):
    prefix = f"test:cluster:{uuid.uuid4().hex[:10]}:"
    yield REDIS_URL, prefix
    keys = [key async for key in redis_client.scan_iter(match=prefix + "*")]
    if keys:
        await redis_client.delete(*keys)


@pytest.fixture
async def cluster(tmp_path, demo_dbs, storage, simulator, redis_url_and_prefix):
    redis_url, prefix = redis_url_and_prefix
    config = write_config(tmp_path / "node.toml", ami_port=simulator.port, storage_dsn=storage[0], redis_url=redis_url,
                          prefix=prefix, sources=demo_sources(demo_dbs))
    nodes = Cluster(config, tmp_path)
    try:
        for name in ("node-a", "node-b", "node-c"):
            nodes.start(name)
        await nodes.wait_up(*nodes.nodes.values())
        yield nodes
    finally:
        await nodes.stop()


async def records(engine, call_ids) -> dict[str, list[dict]]:
    """The interaction rows of these calls, as PostgreSQL holds them (a list per call: exactly one expected)."""
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text(
            "SELECT call_id, answered_by, queue, ended_at, end_reason, agents_rung, answer_times, transfers FROM interactions WHERE call_id = ANY(:ids)"),
            {"ids": list(call_ids)})).mappings().all()
    out: dict[str, list[dict]] = {c: [] for c in call_ids}
    for row in rows:
        out[row["call_id"]].append(dict(row))
    return out


async def logged_and_ended(engine, call_ids, timeout: float = 15.0) -> dict[str, list[dict]]:
    deadline = time.monotonic() + timeout
    while True:
        found = await records(engine, call_ids)
        if all(rows and rows[0]["ended_at"] is not None for rows in found.values()) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.1)


def pops_of(messages, call_id):
    return [m for m in messages if m["type"] == "pop" and m["call_id"] == call_id]


async def test_agents_on_every_node_get_exactly_their_pops(cluster, storage, simulator):
    """One node ingests; agents whose browsers reached the other two get their
    pops, retracts and call updates once each, and nobody else's; the
    interaction log holds one record per call."""
    ingester = await cluster.ingester()
    a, b, c = cluster.nodes["node-a"], cluster.nodes["node-b"], cluster.nodes["node-c"]
    alice, bob, dave = await a.socket("agent1001"), await b.socket("agent1002"), await c.socket("agent1004")

    # ring-all support queue: 1001 (node a) and 1002 (node b); 1001 answers
    first = await simulator.place_call("queue_answered", ANA, "Ana Garcia", queue="support",
                                       agents=["1001", "1002"], speed=10)
    to_alice = await collect(alice, lambda m: m["type"] == "call" and m["event"] == "ended" and m["call_id"] == first)
    to_bob = await collect(bob, lambda m: m["type"] == "retract" and m["call_id"] == first)
    # a second call for 1004 alone (node c)
    second = await simulator.place_call("queue_answered", "+14155550100", "Bob Smith", queue="sales",
                                        agents=["1004"], speed=10)
    to_dave = await collect(dave, lambda m: m["type"] == "call" and m["event"] == "ended" and m["call_id"] == second)

    # nothing more comes: no duplicate delivered by a second node
    to_alice += await drain(alice, 0.5)
    to_bob += await drain(bob, 0.5)
    to_dave += await drain(dave, 0.5)
    assert len(pops_of(to_alice, first)) == 1 and pops_of(to_alice, first)[0]["card"]["e164"] == ANA
    assert "125.40" in str(pops_of(to_alice, first)[0]["card"])  # Ana's balance, from the billing source
    assert [m["event"] for m in to_alice if m["type"] == "call"] == ["answered", "ended"]
    assert [m["type"] for m in to_bob if m.get("call_id") == first] == ["pop", "retract"]
    assert to_bob[-1]["reason"] == "answered elsewhere"
    assert [m["type"] for m in to_dave if m.get("call_id") == second] == ["pop", "call", "call"]
    assert not [m for m in to_alice + to_bob if m.get("call_id") == second]
    assert not [m for m in to_dave if m.get("call_id") == first]

    logged = await logged_and_ended(storage[1], [first, second])
    assert [len(rows) for rows in logged.values()] == [1, 1]
    assert logged[first][0]["answered_by"] == "1001" and logged[first][0]["queue"] == "support"
    assert logged[second][0]["answered_by"] == "1004"

    # still one ingester; the others say they serve
    assert [n.name for n in cluster.nodes.values() if await n.ingesting()] == [ingester.name]
    for ws in (alice, bob, dave):
        await ws.close()


async def test_sigkill_of_the_ingester_mid_call_loses_and_duplicates_nothing(cluster, storage, simulator):
    """The ingesting node is SIGKILLed while a call is talking: another node
    takes the lease within seconds, resyncs from Asterisk, ends the call
    once when it ends, pops the next call once, and the log holds one
    record per call."""
    ingester = await cluster.ingester()
    others = [n for n in cluster.nodes.values() if n is not ingester]
    alice, bob = await others[0].socket("agent1001"), await others[1].socket("agent1002")

    talking = asyncio.create_task(simulator.place_call(
        "queue_answered", ANA, "Ana Garcia", queue="support", agents=["1001"], speed=1, answer_after=0.3, talk_seconds=6))
    before = await collect(alice, lambda m: m["type"] == "call" and m["event"] == "answered")
    call_id = before[-1]["call_id"]
    await asyncio.sleep(0.3)  # the live state of the answered call reaches Redis (flushed every 10 ms)

    ingester.kill()
    killed_at = time.monotonic()
    successor = await cluster.ingester(timeout=15, among=others)
    took = time.monotonic() - killed_at
    assert took < 10, f"takeover took {took:.1f}s"

    # Alice opens a second tab on another node: the call in progress is replayed there
    second_tab = await others[1].socket("agent1001")
    replayed = await collect(second_tab, lambda m: m["type"] == "pop" and m["call_id"] == call_id, timeout=5)
    assert replayed[-1]["state"] == "answered" and replayed[-1]["card"]["e164"] == ANA
    await second_tab.close()

    # a call placed after the takeover pops Bob once
    after = await simulator.place_call("queue_answered", "+14155550100", "Bob Smith", queue="sales", agents=["1002"],
                                       speed=10)
    to_bob = await collect(bob, lambda m: m["type"] == "call" and m["event"] == "ended" and m["call_id"] == after)
    assert len(pops_of(to_bob, after)) == 1

    # the call that was talking ends once, on Alice's screen, through the new ingester
    assert await talking == call_id
    rest = await collect(alice, lambda m: m["type"] == "call" and m["event"] == "ended" and m["call_id"] == call_id,
                         timeout=20)
    rest += await drain(alice, 0.5)
    assert len(pops_of(before + rest, call_id)) == 1, before + rest
    assert [m["event"] for m in before + rest if m["type"] == "call" and m["call_id"] == call_id] == ["answered", "ended"]

    logged = await logged_and_ended(storage[1], [call_id, after])
    assert [len(rows) for rows in logged.values()] == [1, 1], logged
    assert logged[call_id][0]["answered_by"] == "1001" and logged[call_id][0]["ended_at"] is not None
    assert logged[after][0]["answered_by"] == "1002"
    assert await successor.ingesting()
    await alice.close()
    await bob.close()


async def test_redis_restart_nodes_keep_popping_what_they_can_and_recover(tmp_path, demo_dbs, storage, simulator):
    """Redis stops: the ingester keeps popping the agents connected to it
    and every node says so in /healthz; Redis comes back empty: the same
    ingester holds the lease again, the bus carries pops to the other nodes
    again, and the phone index is rebuilt, with no restart of any node."""
    from tests.cluster.nodes import PrivateRedis

    redis = PrivateRedis(tmp_path)
    redis.start()
    config = write_config(tmp_path / "node.toml", ami_port=simulator.port, storage_dsn=storage[0], redis_url=redis.url,
                          prefix="screenpop:", sources=demo_sources(demo_dbs),
                          index_check_seconds=1.0)  # a lost index is looked for every second (default 30 s)
    cluster = Cluster(config, tmp_path)
    try:
        for name in ("node-a", "node-b", "node-c"):
            cluster.start(name)
        await cluster.wait_up(*cluster.nodes.values())
        ingester = await cluster.ingester()
        other = next(n for n in cluster.nodes.values() if n is not ingester)
        alice, bob = await ingester.socket("agent1001"), await other.socket("agent1002")

        redis.stop()
        deadline = time.monotonic() + 10
        while (await other.health())["parts"]["redis"]["ok"]:
            assert time.monotonic() < deadline, "healthz never noticed Redis was gone"
            await asyncio.sleep(0.1)
        health = await ingester.health()
        assert health["ok"] is False and health["parts"]["redis"]["ok"] is False
        assert health["parts"]["cluster"]["ingesting"] is True  # it keeps the AMI link
        async with cluster.http.get(f"{ingester.url}/metrics") as r:
            assert "screenpop_bus_connected 0.0" in await r.text()

        during = await simulator.place_call("queue_answered", ANA, "Ana Garcia", queue="support", agents=["1001"], speed=10)
        to_alice = await collect(alice, lambda m: m["type"] == "call" and m["event"] == "ended" and m["call_id"] == during)
        assert len(pops_of(to_alice, during)) == 1  # popped without Redis (the card may lack what lives there)

        redis.start()  # empty: no lease, no index, no live state
        deadline = time.monotonic() + 20
        while True:
            healths = [await n.health() for n in cluster.nodes.values()]
            if all(h and h["ok"] for h in healths):
                break
            assert time.monotonic() < deadline, f"not recovered: {healths}"
            await asyncio.sleep(0.2)
        assert await cluster.ingester() is ingester  # the holder took its lease again

        after = await simulator.place_call("queue_answered", ANA, "Ana Garcia", queue="support", agents=["1002"], speed=10)
        to_bob = await collect(bob, lambda m: m["type"] == "call" and m["event"] == "ended" and m["call_id"] == after)
        assert len(pops_of(to_bob, after)) == 1
        # the index was rebuilt in the restarted Redis: the card knows Ana again
        deadline = time.monotonic() + 15
        card = pops_of(to_bob, after)[0]["card"]
        while card["status"] != "known":
            assert time.monotonic() < deadline, card
            again = await simulator.place_call("queue_answered", ANA, "Ana Garcia", queue="support", agents=["1002"], speed=10)
            card = pops_of(await collect(bob, lambda m: m["type"] == "pop" and m["call_id"] == again), again)[0]["card"]
        assert card["e164"] == ANA
        await alice.close()
        await bob.close()
    finally:
        await cluster.stop()
        redis.stop()


async def test_supervisors_notes_and_billing_pushes_work_from_any_node(cluster, simulator):
    """A supervisor on a node that does not ingest sees the queues live; a
    note added and a balance pushed through other nodes reach the agent's
    open card, wherever that agent's browser is."""
    from tests.cluster.nodes import BILLING_TOKEN

    ingester = await cluster.ingester()
    followers = [n for n in cluster.nodes.values() if n is not ingester]
    watching, serving = followers
    supervisor = await watching.socket("supervisor")
    alice = await serving.socket("agent1001")

    talking = asyncio.create_task(simulator.place_call(
        "queue_answered", ANA, "Ana Garcia", queue="support", agents=["1001"], speed=1, answer_after=0.3, talk_seconds=4))
    before = await collect(alice, lambda m: m["type"] == "call" and m["event"] == "answered")
    pop = pops_of(before, before[-1]["call_id"])[0]
    call_id = pop["call_id"]
    account = next(p["billing"]["account"] for p in pop["card"]["persons"] if p.get("billing"))

    # the supervisor's socket on a non-ingesting node hears the support queue and agent 1001
    heard = await collect(supervisor, lambda m: m["type"] == "agent" and m.get("agent_id") == "1001"
                          and m.get("call") and m["call"].get("call_id") == call_id)
    assert any(m["type"] == "queue" and m["queue"] == "support" for m in heard)
    status, queues = await watching.api("GET", "/api/v1/queues", "supervisor")
    assert status == 200 and "support" in [q["queue"] for q in queues["items"]]

    # a note through the ingester's peer, a balance through the ingester itself
    status, body = await watching.api("POST", f"/api/v1/interactions/{call_id}/notes", "supervisor",
                                      json={"text": "Called about invoice 42"})
    assert status == 201, body
    async with cluster.http.put(f"{ingester.url}/api/v1/billing/balances/{account}",
                                json={"balance": "-77.70", "currency": "EUR"},
                                headers={"Authorization": f"Bearer {BILLING_TOKEN}"}) as r:
        assert r.status == 200, await r.text()
    updates = await collect(alice, lambda m: m["type"] == "card" and "-77.70" in str(m["card"]))
    assert updates[-1]["call_id"] == call_id
    deadline = time.monotonic() + 5
    while True:  # the note is on the live call, as a reconnecting browser on any node gets it
        status, pops = await serving.api("GET", "/api/v1/pops", "agent1001")
        notes = [n["text"] for p in pops["items"] if p["call_id"] == call_id for n in p["notes"]]
        if "Called about invoice 42" in notes:
            break
        assert time.monotonic() < deadline, pops
        await asyncio.sleep(0.1)
    assert await talking == call_id
    await supervisor.close()
    await alice.close()


async def test_traffic_over_three_nodes_every_pop_once_to_an_agent_that_was_rung(cluster, storage, simulator):
    """Mixed traffic (ring-all, linear, transfers, abandons) for a few seconds
    with the five agents spread over the three nodes: each pop arrives once,
    only at an agent the interaction log says was rung (or transferred to),
    and every call is logged once and ended."""
    from tests.cluster.nodes import drain

    await cluster.ingester()
    nodes = list(cluster.nodes.values())
    agents = ["1001", "1002", "1003", "1004", "1005"]
    sockets = {agent: await nodes[i % 3].socket(f"agent{agent}") for i, agent in enumerate(agents)}
    received: dict[str, list[dict]] = {agent: [] for agent in agents}

    async def listen(agent):
        while True:
            received[agent].extend(await drain(sockets[agent], 0.5))

    listeners = [asyncio.create_task(listen(agent)) for agent in agents]
    callers = [(ANA, "Ana Garcia"), ("+14155550100", "Bob Smith"), (None, None), ("912345680", None)]
    placed = await simulator.run_traffic(2.0, callers, duration=4.0, speed=4.0)
    await asyncio.sleep(1.5)  # the last retracts and ends travel over the bus
    for task in listeners:
        task.cancel()
    assert placed >= 6

    pops = [(agent, m["call_id"]) for agent, messages in received.items() for m in messages if m["type"] == "pop"]
    assert pops, "no pop at all"
    assert len(pops) == len(set(pops)), "a pop was delivered twice"
    logged = await logged_and_ended(storage[1], {call_id for _, call_id in pops})
    assert all(len(rows) == 1 and rows[0]["ended_at"] is not None for rows in logged.values()), logged
    for agent, call_id in pops:
        row = logged[call_id][0]
        rung = set(row["agents_rung"] or []) | {t.get("to_agent") for t in row["transfers"] or []}
        assert agent in rung or agent == logged[call_id][0]["answered_by"], json.dumps([agent, call_id, dict(logged[call_id][0]), [m for m in received[agent] if m.get("call_id") == call_id]], default=str)
    for ws in sockets.values():
        await ws.close()
