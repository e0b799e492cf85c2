"""Hostile WebSocket clients against the wired service (PBX simulator → AMI →
orchestrator → hub), with independent ``websockets`` clients.

The contract is docs/design.md, "WebSocket messages": before the upgrade
401 (not logged in) and 403 (foreign Origin); after it a malformed frame
gets an ``error`` message, repeated bad frames close with 1008, a frame over
64 KB with 1009, a client that cannot keep up with 1013.  Whatever one
client does, the server stays up and every other agent's pop still arrives
at once."""
from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.stack import Stack, seed_databases

ANA = "+34912345678"
PROMPT = 1.0  # seconds from the ring leaving the PBX to the pop on the agent's screen, at worst


@pytest.fixture(scope="module")
def demo_dbs(tmp_path_factory):  # the `stack` fixture (tests/conftest.py) runs on these
    return seed_databases(tmp_path_factory.mktemp("ws"), customers=120)


async def refused(url: str, **options) -> tuple[int, dict]:
    """The HTTP status and JSON body of a refused upgrade."""
    with pytest.raises(InvalidStatus) as caught:
        ws = await websockets.connect(url, proxy=None, **options)
        await ws.close()
    response = caught.value.response
    return response.status_code, json.loads(response.body)


async def closed_with(ws, timeout: float = 5.0) -> int:
    """Read until the server closes; its close code."""

    async def drain():
        try:
            while True:
                await ws.recv()
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd is not None else None

    return await asyncio.wait_for(drain(), timeout)


async def next_of(ws, kind: str, timeout: float = 5.0) -> dict:
    async def read():
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == kind:
                return message

    return await asyncio.wait_for(read(), timeout)


async def pop_latency(stack: Stack, ws, agent: str = "1001") -> float:
    """Place a call ringing ``agent`` only; seconds from the ring leaving the
    PBX (AMI AgentCalled) to the pop arriving on ``ws``."""
    rang: dict[str, float] = {}

    def hook(event, sent_at):
        if event.get("Event") == "AgentCalled" and "Linkedid" in event:
            rang.setdefault(str(event["Linkedid"]), sent_at)

    remove = stack.simulator.on_event_sent(hook)
    try:
        placing = asyncio.create_task(stack.simulator.place_call(
            "queue_answered", ANA, "Ana Garcia", queue="support", agents=[agent], speed=10))
        pop = await next_of(ws, "pop", timeout=10)
        arrived = time.time()
        linkedid = await placing
    finally:
        remove()
    assert pop["call_id"] == linkedid
    return arrived - rang[linkedid]


async def test_no_credentials_is_401_before_the_upgrade(stack):
    """No cookie and no token: a plain 401 JSON answer, never a socket that
    opens and closes; a garbage token, an empty one and one of 4 KB alike."""
    for query in ("", "?token=", "?token=garbage", "?token=" + "A" * 4096, "?token=%00%ff", "?agent=1001"):
        status, body = await refused(stack.ws_url + query)
        assert status == 401 and isinstance(body["error"], str), (query, status, body)
    status, body = await refused(stack.ws_url, additional_headers={"Authorization": "Bearer not-a-session"})
    assert status == 401, body
    status, body = await refused(stack.ws_url, additional_headers={"Cookie": "screenpop_session=forged"})
    assert status == 401, body


async def test_foreign_origin_is_403_with_a_cookie_or_a_token(stack):
    """Cross-site WebSocket hijacking: a page on another site opening /ws
    with the agent's cookie is refused (403); so is a foreign Origin with a
    token.  The same cookie from our own origin gets a socket."""
    async with stack.http.post(f"{stack.url}/api/v1/session", json={"username": "agent1001", "password": "demo"}) as r:
        assert r.status == 200
        cookie = r.cookies["screenpop_session"].value
    token = await stack.token("agent1001")
    host = stack.url.removeprefix("http://")
    for origin in ("http://evil.example", f"http://{host}.evil.example", "null", "http://127.0.0.1", f"https://evil.example:{host.split(':')[1]}"):
        status, body = await refused(stack.ws_url, origin=origin, additional_headers={"Cookie": f"screenpop_session={cookie}"})
        assert status == 403 and "origin" in body["error"].lower(), (origin, status, body)
        status, body = await refused(f"{stack.ws_url}?token={token}", origin=origin)
        assert status == 403, (origin, status, body)
    ws = await websockets.connect(stack.ws_url, proxy=None, origin=f"http://{host}",
                                  additional_headers={"Cookie": f"screenpop_session={cookie}"})
    hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert hello["type"] == "hello" and hello["user"]["agent_id"] == "1001"
    await ws.close()


async def test_an_agent_cannot_follow_another_agent(stack):
    """``?agent=`` names whose pops to follow: an agent naming someone else,
    or an id that is not printable or too long, is a 403 before the upgrade."""
    token = await stack.token("agent1001")
    for agent in ("1002", "1001%0A", "%00", "x" * 65):
        status, body = await refused(f"{stack.ws_url}?token={token}&agent={agent}")
        assert status == 403, (agent, status, body)


async def test_malformed_frames_get_errors_then_1008(stack):
    """Text that is not JSON, JSON that is not an object, JSON nested 2,000
    deep, unknown types, NaN, a binary frame: each is answered with an
    ``error`` naming the problem while the socket stays usable (a ping still
    gets its pong); the fifth bad frame closes the socket with 1008.
    Meanwhile another agent's pop arrives promptly."""
    alice = await stack.socket("agent1001")
    mallory = await stack.socket("agent1002")
    bad = ["not json at all", "[1, 2, 3]", "[" * 2000 + "]" * 2000, '{"type": "launch-missiles"}', '{"type": "ping", "id": NaN}']
    expected = ["not valid JSON", "JSON object", "nested too deeply", "unknown message type", "NaN is not valid JSON"]
    for frame, reason in zip(bad[:4], expected):
        await mallory.send(frame)
        error = await next_of(mallory, "error")
        assert reason in error["reason"], (frame[:40], error)
    await mallory.send(json.dumps({"type": "ping", "id": "still-there"}))
    assert (await next_of(mallory, "pong"))["id"] == "still-there"
    await mallory.send(bad[4])
    assert await closed_with(mallory) == 1008
    assert await pop_latency(stack, alice) < PROMPT

    binary = await stack.socket("agent1002")
    await binary.send(b"\x00\x01\xff{not text}")
    assert "binary" in (await next_of(binary, "error"))["reason"]
    for _ in range(4):
        await binary.send(bytes(range(256)))
    assert await closed_with(binary) == 1008
    await alice.close()


async def test_frames_over_4_kb_are_refused_and_over_64_kb_close_with_1009(stack):
    """A browser only sends pings and acks: a 10 KB frame gets an ``error``;
    a 1 MB frame closes the socket with 1009 (message too big) without the
    server buffering more than its 64 KB limit.  Other agents are unaffected."""
    alice = await stack.socket("agent1001")
    mallory = await stack.socket("agent1002")
    await mallory.send(json.dumps({"type": "ping", "id": "x" * 10_000}))
    assert "larger than" in (await next_of(mallory, "error"))["reason"]
    await mallory.send(json.dumps({"type": "ack", "call_id": "A" * (1024 * 1024)}))
    assert await closed_with(mallory) == 1009
    big_binary = await stack.socket("agent1002")
    await big_binary.send(b"\xff" * (1024 * 1024))
    assert await closed_with(big_binary) == 1009
    assert await pop_latency(stack, alice) < PROMPT
    await alice.close()


async def test_a_flood_that_does_not_read_is_dropped_with_1013(stack):
    """A client firing 30,000 pings and never reading the pongs fills its
    send queue: the server drops it with 1013 instead of buffering without
    end, and answers everyone else meanwhile (another agent's pop is prompt,
    /healthz answers)."""
    alice = await stack.socket("agent1001")
    token = await stack.token("agent1002")
    # A raw client that never reads: max_queue=1 and a tiny read buffer stop
    # websockets' background reader almost at once, so TCP pushes back.
    flooder = await websockets.connect(f"{stack.ws_url}?token={token}", proxy=None, max_queue=1, max_size=None)
    frame = json.dumps({"type": "ping", "id": "flood"})

    async def flood():
        for _ in range(30_000):
            await flooder.send(frame)

    flooding = asyncio.create_task(flood())
    await asyncio.sleep(0.2)
    assert await pop_latency(stack, alice) < PROMPT
    async with stack.http.get(f"{stack.url}/healthz") as r:
        assert r.status == 200
    try:
        await asyncio.wait_for(flooding, 20)
    except ConnectionClosed:
        pass
    assert await closed_with(flooder, timeout=20) == 1013
    assert len(stack.service.hub.connections_of("1002")) == 0
    await alice.close()


async def test_server_survives_every_abuse_together(stack):
    """Many hostile clients at once (garbage, binary, oversized, nested,
    half-open handshakes that never finish): afterwards the server still
    logs in, upgrades and pops, and no socket is left registered."""
    alice = await stack.socket("agent1001")

    async def garbage(i: int):
        ws = await stack.socket("agent1002")
        try:
            for n in range(10):
                await ws.send(["{", b"\x00", "[" * 3000, "x" * 5000][(i + n) % 4])
            await closed_with(ws)
        except ConnectionClosed:
            pass

    async def half_open():
        host, port = stack.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")  # never finished
        await writer.drain()
        return writer

    writers = await asyncio.gather(*[half_open() for _ in range(20)])
    await asyncio.gather(*[garbage(i) for i in range(12)])
    assert await pop_latency(stack, alice) < PROMPT
    for writer in writers:
        writer.close()
    bob = await stack.socket("agent1002")
    await bob.send(json.dumps({"type": "ping", "id": 1}))
    assert (await next_of(bob, "pong"))["id"] == 1
    await bob.close()
    await alice.close()
    await asyncio.sleep(0.2)
    assert len(stack.service.hub) == 0


async def test_too_many_sockets_for_one_agent_is_429(stack):
    """One stolen session opening sockets in a loop: after 32 for the same
    agent the upgrade is refused with 429 (JSON reason, Retry-After) while
    other agents still connect and get their pops; closing one makes room."""
    token = await stack.token("agent1002")
    sockets = [await stack.socket("agent1002", token) for _ in range(32)]
    with pytest.raises(InvalidStatus) as caught:
        await websockets.connect(f"{stack.ws_url}?token={token}", proxy=None)
    response = caught.value.response
    assert response.status_code == 429 and response.headers["Retry-After"]
    assert "too many" in json.loads(response.body)["error"]
    alice = await stack.socket("agent1001")
    assert await pop_latency(stack, alice) < PROMPT
    await sockets.pop().close()
    await asyncio.sleep(0.2)
    sockets.append(await stack.socket("agent1002", token))
    for ws in [*sockets, alice]:
        await ws.close()
