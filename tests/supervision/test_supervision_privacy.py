"""``[privacy] partial_phone_roles = ["supervisor"]`` end to end, nothing
mocked: the PBX simulator places a call through the whole node, and every
way a caller's number reaches a supervisor shows it partially: the live
queue and agent messages of the supervisors' socket, the replay a socket
gets when it opens, a supervisor following an agent (``/ws?agent=``), and
the REST routes (queues, agents, their calls of the day).  An admin (not
listed) and the agent see the same numbers whole.  Without the setting
nothing changes: ``test_supervision_e2e.py`` checks that supervisors read
whole numbers in the same messages and routes."""
from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest

from tests.stack import Stack
from tests.supervision.test_supervision_e2e import ANA, SECRET, Board, agent_is, supervised
from tests.wsclient import collect

MASKED_ANA = "+*******5678"  # phone_visible_digits = 4
WHOLE_DIGITS = "912345678"  # ANA's digits past the country code: never in a supervisor's message


def phones_partial_for_supervisors(settings):
    settings = supervised(settings)
    return replace(settings, privacy=replace(settings.privacy, partial_phone_roles=["supervisor"]))


@pytest.fixture
async def stack(demo_dbs, tmp_path):
    async with Stack(demo_dbs, tmp_path, secret=SECRET, configure=phones_partial_for_supervisors) as stack:
        yield stack


def waiting_named(queue: str):
    return lambda b: any(w["customer_name"] for w in b.queues.get(queue, {}).get("waiting", []))


def texts(board: Board) -> str:
    return json.dumps(board.log)


async def test_supervisors_read_callers_numbers_partially_everywhere_admins_and_agents_whole(stack):
    supervisor, admin = Board(await stack.socket("supervisor")), Board(await stack.socket("admin"))
    watcher = await stack.socket("supervisor", f"{await stack.token('supervisor')}&agent=1001")
    agent = await stack.socket("agent1001")
    for board in (supervisor, admin):
        await board.until(lambda b: "support" in b.queues and "1001" in b.agents)

    # Ana waits in support (1001 answers after 16 simulated seconds: 8 s here), then talks a while
    placed = asyncio.create_task(stack.simulator.place_call(
        "queue_answered", ANA, "Ana Garcia", queue="support", agents=["1001"], answer_after=16, talk_seconds=60,
        speed=2))

    # live queue messages: the waiting caller
    await supervisor.until(waiting_named("support"))
    await admin.until(waiting_named("support"))
    assert supervisor.queues["support"]["waiting"][0]["caller_number"] == MASKED_ANA
    assert admin.queues["support"]["waiting"][0]["caller_number"] == ANA

    # the replay of a socket that opens while Ana waits
    late = Board(await stack.socket("supervisor"))
    await late.until(lambda b: "support" in b.queues)
    assert late.queues["support"]["waiting"][0]["caller_number"] == MASKED_ANA

    # REST while she waits
    status, queues = await stack.api_as("GET", "/api/v1/queues", "supervisor")
    assert status == 200
    (support,) = [q for q in queues["items"] if q["queue"] == "support"]
    assert support["waiting"][0]["caller_number"] == MASKED_ANA
    status, as_admin = await stack.api_as("GET", "/api/v1/queues/support", "admin")
    assert status == 200 and as_admin["waiting"][0]["caller_number"] == ANA

    # the agent's own pop is whole; a supervisor following the agent reads it partially
    pop = (await collect(agent, lambda m: m["type"] == "pop"))[-1]
    assert pop["caller"]["number"] == ANA
    followed = (await collect(watcher, lambda m: m["type"] == "pop"))[-1]
    assert followed["call_id"] == pop["call_id"] and followed["caller"]["number"] == MASKED_ANA
    assert WHOLE_DIGITS not in json.dumps(followed)

    # on the call: the agent message carries the call, its caller and card
    await supervisor.until(agent_is("1001", "on_call"))
    await admin.until(agent_is("1001", "on_call"))
    call = supervisor.agents["1001"]["call"]
    assert call["caller_number"] == MASKED_ANA and call["card"]["e164"] == MASKED_ANA
    assert admin.agents["1001"]["call"]["caller_number"] == ANA and admin.agents["1001"]["call"]["card"]["e164"] == ANA
    again = Board(await stack.socket("supervisor"))  # replayed agent messages too
    await again.until(agent_is("1001", "on_call"))
    assert again.agents["1001"]["call"]["caller_number"] == MASKED_ANA
    status, alice = await stack.api_as("GET", "/api/v1/agents/1001", "supervisor")
    assert status == 200 and alice["call"]["caller_number"] == MASKED_ANA and alice["call"]["card"]["e164"] == MASKED_ANA
    status, agents = await stack.api_as("GET", "/api/v1/agents", "supervisor")
    assert status == 200 and next(a for a in agents["items"] if a["agent_id"] == "1001")["call"]["caller_number"] == MASKED_ANA

    # the call ends (played faster now): the calls of the day
    stack.simulator.set_speed(50)
    linkedid = await placed
    await supervisor.until(agent_is("1001", "wrap_up"))

    async def calls_today(path: str, username: str) -> list[dict]:
        for _ in range(200):  # the call reaches the log one writer flush after it ends
            status, body = await stack.api_as("GET", path, username)
            assert status == 200, body
            if [c for c in body["calls_today"] if c["call_id"] == linkedid and c["ended_at"]]:
                return body["calls_today"]
            await asyncio.sleep(0.05)
        raise AssertionError(f"{linkedid} never in {path}")

    for path in ("/api/v1/queues/support", "/api/v1/agents/1001"):
        (logged,) = [c for c in await calls_today(path, "supervisor") if c["call_id"] == linkedid]
        assert logged["caller_number"] == MASKED_ANA and logged["caller_e164"] == MASKED_ANA, path
        assert WHOLE_DIGITS not in json.dumps(logged), path
        (logged,) = [c for c in await calls_today(path, "admin") if c["call_id"] == linkedid]
        assert logged["caller_number"] == ANA, path

    # nothing a supervisor's sockets received named Ana's whole number; the admin's did
    for board in (supervisor, late, again):
        assert WHOLE_DIGITS not in texts(board) and MASKED_ANA in texts(board)
    assert ANA in texts(admin)
    for board in (supervisor, admin, late, again):
        await board.close()
    await watcher.close()
    await agent.close()
