"""End to end, nothing mocked: the PBX simulator speaks AMI over TCP to the
whole service, a supervisor's `websockets` client receives queue and agent
state as calls happen, the REST API and the wallboard show the same, the
day's figures agree with the interaction log, and the view is right again
after the AMI link comes back from an outage during which events were lost."""
from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import replace

import pytest

from tests.stack import Stack

ANA = "+34912345678"  # a demo persona: known in all three demo systems
WALLBOARD_TOKEN = "wall-7f3a9c"
SECRET = "e2e-secret"


def supervised(settings):
    """Pushes every 50 ms, wrap-up held up to an hour, the AMI link retried within 0.2 s, a wallboard token."""
    return replace(
        settings,
        ami=replace(settings.ami, reconnect_max=0.2),
        supervision=replace(settings.supervision, wallboard_token=WALLBOARD_TOKEN, push_interval_seconds=0.05,
                            wrap_up_max_seconds=3600),
    )


class Board:
    """A supervisor's socket and the latest state it was told of.  A reader
    task keeps taking messages, as a browser does, so the socket never backs
    up and closes cleanly."""

    def __init__(self, ws):
        self.ws = ws
        self.queues: dict[str, dict] = {}
        self.agents: dict[str, dict] = {}
        self.log: list[dict] = []
        self._moved = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self):
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                self.log.append(message)
                if message["type"] == "queue":
                    self.queues[message["queue"]] = message
                elif message["type"] == "agent":
                    self.agents[message["agent_id"]] = message
                self._moved.set()
        finally:
            self._moved.set()

    async def until(self, check, timeout: float = 10.0):
        async def wait():
            while not check(self):
                if self._reader.done():
                    raise AssertionError("the socket closed")
                self._moved.clear()
                await self._moved.wait()
        try:
            await asyncio.wait_for(wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"timed out; queues={self.queues} agents={self.agents}") from None

    async def close(self):
        await self.ws.close()
        await self._reader

    def agent_states(self, agent_id: str) -> list[str]:
        states = [m["state"] for m in self.log if m["type"] == "agent" and m["agent_id"] == agent_id]
        return [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s]


@pytest.fixture
async def stack(demo_dbs, tmp_path):
    async with Stack(demo_dbs, tmp_path, secret=SECRET, configure=supervised) as stack:
        yield stack


async def supervisor_board(stack) -> Board:
    return Board(await stack.socket("supervisor"))


def agent_is(agent_id, state):
    return lambda b: b.agents.get(agent_id, {}).get("state") == state


async def test_supervisor_sees_calls_as_they_happen_and_the_figures_match_the_log(stack):
    board = await supervisor_board(stack)
    # on connect: every queue and member, from the resync after login
    await board.until(lambda b: {"support", "sales", "billing"} <= set(b.queues) and {"1001", "1002", "1003", "1004"} <= set(b.agents))
    assert board.queues["support"]["agents"]["logged_in"] == 2 and board.queues["support"]["waiting"] == []
    assert board.agents["1001"]["state"] == "available" and board.agents["1001"]["queues"] == ["support"]

    placed = asyncio.create_task(stack.simulator.place_call("queue_answered", ANA, "Ana Garcia", queue="support",
                                                            agents=["1001", "1002"], speed=4))
    await board.until(lambda b: any(w["customer_name"] for w in b.queues["support"]["waiting"]))
    (ana,) = board.queues["support"]["waiting"]
    assert ana["caller_number"] == ANA and "Ana" in ana["customer_name"] and ana["position"] == 1
    linkedid = ana["call_id"]
    await board.until(agent_is("1001", "on_call"))
    alice = board.agents["1001"]
    assert alice["call"]["call_id"] == linkedid and alice["call"]["card"]["e164"] == ANA
    await board.until(agent_is("1001", "wrap_up"))
    assert await placed == linkedid
    await board.until(lambda b: b.queues["support"]["today"]["answered"] >= 1 and b.agents["1001"]["today"]["answered"] >= 1)
    assert board.agent_states("1001")[-3:] == ["ringing", "on_call", "wrap_up"]
    assert "ringing" in board.agent_states("1002") and board.agents["1002"]["state"] == "available"

    # a caller who gives up in billing (1003 never answers)
    await stack.simulator.place_call("queue_abandoned", "+34911000111", "Zed", queue="billing", speed=8)
    await board.until(lambda b: b.queues["billing"]["today"]["abandoned"] >= 1)
    assert board.queues["billing"]["waiting"] == [] and board.queues["billing"]["today"]["service_level"] == 0.0
    assert {a["kind"] for a in board.queues["billing"]["alerts"]} == {"service_level"}

    # the figures agree with the interaction log
    status, logged = await stack.api_as("GET", "/api/v1/interactions?limit=200", "supervisor")
    assert status == 200
    offered = Counter(i["queue"] for i in logged["items"])
    answered = Counter(i["queue"] for i in logged["items"] if i["answered_at"])
    abandoned = Counter(i["queue"] for i in logged["items"] if i["end_reason"] == "abandoned")
    status, queues = await stack.api_as("GET", "/api/v1/queues", "supervisor")
    assert status == 200
    for item in queues["items"]:
        today = item["today"]
        assert (today["offered"], today["answered"], today["abandoned"]) == (
            offered[item["queue"]], answered[item["queue"]], abandoned[item["queue"]]), item["queue"]
    assert {i["queue"]: i["today"]["offered"] for i in queues["items"]} == {"support": 1, "sales": 0, "billing": 1}

    # drill down: the queue's and the agent's calls of the day
    status, support = await stack.api_as("GET", "/api/v1/queues/support", "admin")
    assert status == 200 and [c["call_id"] for c in support["calls_today"]] == [linkedid]
    status, _ = await stack.api_as("PUT", f"/api/v1/interactions/{linkedid}/outcome", "agent1001", json={"disposition": "resolved"})
    assert status == 200
    await board.until(agent_is("1001", "available"))  # the outcome ends wrap-up at once
    status, alice = await stack.api_as("GET", "/api/v1/agents/1001", "supervisor")
    assert status == 200 and alice["state"] == "available" and alice["today"]["answered"] == 1
    assert [(c["call_id"], c["disposition"]) for c in alice["calls_today"]] == [(linkedid, "resolved")]
    assert (await stack.api_as("GET", "/api/v1/queues/nope", "supervisor"))[0] == 404
    assert (await stack.api_as("GET", "/api/v1/agents/9999", "supervisor"))[0] == 404
    await board.close()


async def test_rest_roles_and_the_wallboard_token(stack):
    for path in ("/api/v1/queues", "/api/v1/queues/support", "/api/v1/agents", "/api/v1/agents/1001"):
        assert (await stack.api_as("GET", path, "agent1001"))[0] == 403, path
        assert (await stack.api_as("GET", path, None))[0] == 401, path
        assert (await stack.api_as("GET", path, "supervisor"))[0] == 200, path
    status, agents = await stack.api_as("GET", "/api/v1/agents", "admin")
    assert status == 200 and {"1001", "1002", "1003", "1004"} <= {a["agent_id"] for a in agents["items"]}

    async def wall(query: str = "", headers=None):
        async with stack.http.get(f"{stack.url}/api/v1/wallboard{query}", headers=headers) as r:
            return r.status, await r.json()

    assert (await wall())[0] == 401
    assert (await wall("?token=wrong"))[0] == 401
    assert (await wall("?token=" + WALLBOARD_TOKEN[:-1]))[0] == 401
    status, body = await wall("?token=" + WALLBOARD_TOKEN)
    assert status == 200 and {q["queue"] for q in body["queues"]} == {"support", "sales", "billing"}
    assert (await wall(headers={"Authorization": f"Bearer {WALLBOARD_TOKEN}"}))[0] == 200
    # a session is no wallboard token
    assert (await wall(headers={"Authorization": f"Bearer {await stack.token('supervisor')}"}))[0] == 401

    # while a caller waits, the wall shows the wait but not who is calling
    placed = asyncio.create_task(stack.simulator.place_call("queue_abandoned", ANA, "Ana Garcia", queue="billing",
                                                            patience=30, speed=2))

    async def waiting():
        while True:
            status, body = await wall("?token=" + WALLBOARD_TOKEN)
            billing = next(q for q in body["queues"] if q["queue"] == "billing")
            if billing["waiting"]:
                return billing
            await asyncio.sleep(0.05)

    billing = await asyncio.wait_for(waiting(), 10)
    (caller,) = billing["waiting"]
    assert caller["caller_number"] is None and caller["customer_name"] is None and caller["since"]
    status, full = await stack.api_as("GET", "/api/v1/queues/billing", "supervisor")
    assert full["waiting"][0]["caller_number"] == ANA
    placed.cancel()

    # every route is in the OpenAPI document
    async with stack.http.get(f"{stack.url}/api/v1/openapi.json") as r:
        spec = await r.json()
    for path in ("/api/v1/queues", "/api/v1/queues/{queue}", "/api/v1/agents", "/api/v1/agents/{agent_id}", "/api/v1/wallboard"):
        assert "get" in spec["paths"][path]


async def test_view_is_right_again_after_an_ami_outage_with_lost_events(stack):
    board = await supervisor_board(stack)
    await board.until(lambda b: "support" in b.queues and "1001" in b.agents)
    simulator, connection = stack.simulator, stack.service.connection
    first = asyncio.create_task(simulator.place_call("queue_answered", ANA, "Ana Garcia", queue="support",
                                                     agents=["1001", "1002"], talk_seconds=40, speed=20))
    await board.until(agent_is("1001", "on_call"))
    linkedid = board.agents["1001"]["call"]["call_id"]

    # the link goes down and cannot come back (wrong secret) while Ana's call
    # ends and a new caller starts waiting in billing: all of it unseen
    logins = connection.logins
    simulator.server.secret = "not-now"
    for session in list(simulator.server.sessions):
        session.writer.close()
    await first
    second = asyncio.create_task(simulator.place_call("queue_abandoned", "+34911000222", "Yan", queue="billing",
                                                      patience=40, speed=20))
    while not simulator.pbx.stats["billing"].entries:
        await asyncio.sleep(0.01)
    assert board.agents["1001"]["state"] == "on_call"  # what we last knew
    await board.until(lambda b: b.queues["support"]["link_up"] is False)  # ... and the board says it may be stale
    simulator.server.secret = SECRET

    async def relogged():
        while connection.logins == logins:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(relogged(), 5)

    # after the resync: Ana's call is over, the new caller waits in billing
    await board.until(lambda b: b.agents["1001"]["state"] == "wrap_up" and b.queues["billing"]["waiting"])
    assert board.agents["1001"]["call"]["call_id"] == linkedid and board.queues["support"]["link_up"] is True
    (yan,) = board.queues["billing"]["waiting"]
    assert yan["caller_number"] == "+34911000222"
    assert board.queues["support"]["agents"]["on_call"] == 0 and board.queues["support"]["waiting"] == []
    # a supervisor who opens the dashboard now gets the same view
    late = await supervisor_board(stack)
    await late.until(lambda b: "billing" in b.queues and "1001" in b.agents)
    assert late.queues["billing"]["waiting"][0]["call_id"] == yan["call_id"] and late.agents["1001"]["state"] == "wrap_up"
    await second
    await board.until(lambda b: b.queues["billing"]["waiting"] == [])
    await board.close()
    await late.close()


async def test_simulated_traffic_figures_agree_with_the_interaction_log(stack):
    board = await supervisor_board(stack)
    await board.until(lambda b: {"support", "sales", "billing"} <= set(b.queues))
    callers = [(ANA, "Ana Garcia"), ("+14155550100", "Bob Smith"), ("+34600111222", "Frank Moreno"), (None, None),
               ("0034 91 234 56 79", "Carla Ruiz")]
    placed = await stack.simulator.run_traffic(3.0, callers, duration=2.5, speed=10)
    assert placed >= 5
    for _ in range(100):  # the last hang-ups reach the log one writer flush later
        status, logged = await stack.api_as("GET", "/api/v1/interactions?limit=200", "supervisor")
        ended = [i for i in logged["items"] if i["ended_at"]]
        if len(ended) >= placed:
            break
        await asyncio.sleep(0.05)
    assert len(ended) == placed
    offered = Counter(i["queue"] for i in ended if i["queued_at"])
    answered = Counter(i["queue"] for i in ended if i["queued_at"] and i["answered_at"])
    abandoned = Counter(i["queue"] for i in ended if i["queued_at"] and i["end_reason"] == "abandoned")
    expected = {q: {"offered": offered[q], "answered": answered[q], "abandoned": abandoned[q]} for q in ("support", "sales", "billing")}

    def settled(b):
        return all({k: b.queues[q]["today"][k] for k in ("offered", "answered", "abandoned")} == expected[q] for q in expected)

    await board.until(settled)
    # everyone is off the phone and nobody waits; answered calls left their agents in wrap-up
    assert all(b["waiting"] == [] and b["agents"]["ringing"] == 0 and b["agents"]["on_call"] == 0 for b in board.queues.values())
    answered_by = Counter(i["answered_by"] for i in ended if i["answered_by"])
    for agent_id, count in answered_by.items():
        assert board.agents[agent_id]["state"] == "wrap_up"
        assert board.agents[agent_id]["today"]["answered"] >= count
    status, rest = await stack.api_as("GET", "/api/v1/agents", "supervisor")
    assert {a["agent_id"]: a["state"] for a in rest["items"]} == {a: m["state"] for a, m in board.agents.items()}
    await board.close()
