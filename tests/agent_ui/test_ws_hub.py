"""The /ws endpoint over real sockets: aiohttp serving, the `websockets` package as the browser."""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from agent_ui import protocol, ws as ws_route
from agent_ui.connections import CONNECTION_LOST, HEARTBEAT, TOO_SLOW, Connection, SocketSettings
from agent_ui.hub import Hub
from agent_ui.protocol import AgentState, CardUpdate, Pop, QueueState, Retract

TIMEOUT = 5.0


@dataclass
class User:
    username: str
    role: str
    agent_id: str | None = None


USERS = {
    "tok-alice": User("alice", "agent", "1001"),
    "tok-bob": User("bob", "agent", "1002"),
    "tok-sue": User("sue", "supervisor"),
    "tok-root": User("root", "admin", "9000"),
    "tok-noid": User("nobody", "agent", None),
}


async def authenticate(request: web.Request) -> User | None:
    """The test double of the session check: a token query parameter names a user."""
    return USERS.get(request.query.get("token", ""))


def pop(call_id: str, queue: str = "sales") -> Pop:
    return Pop(call_id, queue, {"number": "912345678", "name": None, "e164": "+34912345678"}, {"status": "unknown"})


async def recv_json(client, timeout: float = TIMEOUT) -> dict:
    return json.loads(await asyncio.wait_for(client.recv(), timeout))


async def wait_until(predicate, timeout: float = TIMEOUT, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


class Server:
    def __init__(self, hub: Hub, server: TestServer):
        self.hub = hub
        self.server = server
        self.clients = []

    def url(self, query: str = "") -> str:
        return str(self.server.make_url("/ws")).replace("http://", "ws://", 1) + query

    async def connect(self, token: str, **kwargs):
        """A reading browser; returns it after its 'hello' (by then the hub has registered it)."""
        client = await connect(self.url(f"?token={token}"), open_timeout=TIMEOUT, **kwargs)
        self.clients.append(client)
        hello = await recv_json(client)
        assert hello["type"] == "hello"
        return client

    async def connect_stalled(self, token: str):
        """A browser that never reads: tiny receive buffer, websockets stops reading after one message."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((self.server.host, self.server.port))
        sock.setblocking(False)
        client = await connect(self.url(f"?token={token}"), sock=sock, max_queue=1, open_timeout=TIMEOUT)
        self.clients.append(client)
        return client


class PlainServer:
    """What ``web.AppRunner`` does by default: handlers are NOT cancelled when a peer vanishes.

    TestServer cancels them (handler_cancellation=True); the connection code
    must end cleanly both ways, so lifecycle tests run under each."""

    def __init__(self, app: web.Application):
        self.runner = web.AppRunner(app)
        self.host = "127.0.0.1"
        self.port = None

    async def start_server(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def make_url(self, path: str):
        return f"http://{self.host}:{self.port}{path}"

    async def close(self) -> None:
        await self.runner.cleanup()


@pytest.fixture
async def make_server():
    made: list[Server] = []

    async def make(settings: SocketSettings = SocketSettings(heartbeat=5.0), replay=None, on_ack=None, *, cancel_handlers: bool = True) -> Server:
        hub = Hub(replay, settings=settings, on_ack=on_ack) if replay else Hub(settings=settings, on_ack=on_ack)
        app = web.Application()
        ws_route.setup(app, hub, authenticate)
        server = TestServer(app, host="127.0.0.1") if cancel_handlers else PlainServer(app)
        await server.start_server()
        made.append(Server(hub, server))
        return made[-1]

    yield make
    for srv in made:
        for client in srv.clients:
            client.transport.abort()
        await srv.server.close()


both_handler_modes = pytest.mark.parametrize("cancel_handlers", [True, False], ids=["handler-cancellation", "no-handler-cancellation"])


# ------------------------------------------------------------------ routing


async def test_the_first_message_says_who_is_connected(make_server):
    srv = await make_server()
    client = await connect(srv.url("?token=tok-alice"))
    srv.clients.append(client)
    hello = await recv_json(client)
    assert hello["user"] == {"username": "alice", "role": "agent", "agent_id": "1001"}
    assert hello["protocol"] == 1 and hello["heartbeat"] == 5.0 and hello["server_time"].endswith("Z")


async def test_an_agent_receives_only_their_own_pops(make_server):
    srv = await make_server()
    alice = await srv.connect("tok-alice")
    bob = await srv.connect("tok-bob")
    assert srv.hub.connected_agents() == {"1001", "1002"}

    assert srv.hub.send_to_agent("1002", pop("for-bob")) == 1
    assert srv.hub.send_to_agent("1001", pop("for-alice")) == 1
    assert srv.hub.send_to_agent("7777", pop("for-nobody")) == 0

    # Each socket's queue is in order: had bob's pop reached alice, it would come first.
    assert (await recv_json(alice))["call_id"] == "for-alice"
    assert (await recv_json(bob))["call_id"] == "for-bob"


async def test_a_query_parameter_cannot_subscribe_to_another_agent(make_server):
    srv = await make_server()
    await srv.connect("tok-alice&agent_id=1002&agent=1001")  # naming yourself is fine, other keys are ignored
    assert srv.hub.connected_agents() == {"1001"}
    assert srv.hub.send_to_agent("1002", pop("c1")) == 0
    with pytest.raises(InvalidStatus) as refused:
        await connect(srv.url("?token=tok-alice&agent=1002"), open_timeout=TIMEOUT)
    assert refused.value.response.status_code == 403
    assert b"only their own pops" in refused.value.response.body


async def test_a_supervisor_can_follow_one_agent_without_making_it_look_logged_in(make_server):
    srv = await make_server(replay=lambda agent_id: [pop("open-" + agent_id)])
    sue = await connect(srv.url("?token=tok-sue&agent=1002"), open_timeout=TIMEOUT)
    srv.clients.append(sue)
    hello = await recv_json(sue)
    assert hello["user"]["watching"] == "1002"
    assert (await recv_json(sue))["call_id"] == "open-1002"  # the agent's open pops, replayed
    assert srv.hub.connected_agents() == set() and len(srv.hub.watchers_of("1002")) == 1
    assert srv.hub.send_to_supervisors(QueueState("sales", 1)) == 0  # a watcher is not on the supervisors' feed

    bob = await srv.connect("tok-bob")
    assert (await recv_json(bob))["call_id"] == "open-1002"
    assert srv.hub.send_to_agent("1002", Retract("open-1002", "abandoned")) == 2
    assert (await recv_json(sue))["type"] == "retract" and (await recv_json(bob))["type"] == "retract"
    assert srv.hub.send_to_agent("1001", pop("not-bobs")) == 0


@pytest.mark.parametrize("origin, status", [("http://evil.example", 403), ("null", 403), (None, 101), ("SAME", 101)])
async def test_a_foreign_page_cannot_open_the_socket_with_the_agents_cookie(make_server, origin, status):
    srv = await make_server()
    if origin == "SAME":
        origin = f"http://{srv.server.host}:{srv.server.port}"
    headers = {"Origin": origin} if origin else {}
    if status == 403:
        with pytest.raises(InvalidStatus) as refused:
            await connect(srv.url("?token=tok-alice"), open_timeout=TIMEOUT, additional_headers=headers)
        assert refused.value.response.status_code == 403
        assert len(srv.hub) == 0
    else:
        client = await connect(srv.url("?token=tok-alice"), open_timeout=TIMEOUT, additional_headers=headers, origin=None)
        srv.clients.append(client)
        assert (await recv_json(client))["type"] == "hello"


async def test_every_tab_of_an_agent_receives_every_pop(make_server):
    srv = await make_server()
    tabs = [await srv.connect("tok-alice") for _ in range(3)]
    assert len(srv.hub.connections_of("1001")) == 3

    assert srv.hub.send_to_agent("1001", pop("c1")) == 3
    assert srv.hub.send_to_agent("1001", Retract("c1", "answered elsewhere")) == 3
    for tab in tabs:
        assert (await recv_json(tab))["type"] == "pop"
        assert await recv_json(tab) == {"type": "retract", "call_id": "c1", "reason": "answered elsewhere"}


async def test_fan_out_encodes_a_message_once_whatever_the_number_of_sockets(make_server, monkeypatch):
    srv = await make_server()
    tabs = [await srv.connect("tok-alice") for _ in range(4)]
    calls = []
    real = protocol.encode
    monkeypatch.setattr(protocol, "encode", lambda msg: calls.append(msg) or real(msg))
    assert srv.hub.send_to_agent("1001", pop("c1")) == 4
    assert len(calls) == 1
    for tab in tabs:
        assert (await recv_json(tab))["call_id"] == "c1"


async def test_supervisors_receive_queue_and_agent_states_and_no_pops(make_server):
    srv = await make_server()
    alice = await srv.connect("tok-alice")
    sue = await srv.connect("tok-sue")
    root = await srv.connect("tok-root")  # an admin with an agent id is still a supervisor socket
    assert srv.hub.connected_agents() == {"1001"} and len(srv.hub.supervisors()) == 2

    srv.hub.send_to_agent("1001", pop("c1"))
    assert srv.hub.send_to_supervisors(QueueState("sales", 3, {"longest_wait_seconds": 42})) == 2
    assert srv.hub.send_to_supervisors(AgentState("1001", "ringing", {"call_id": "c1"})) == 2
    srv.hub.send_to_agent("1001", Retract("c1", "abandoned"))

    for supervisor in (sue, root):
        assert await recv_json(supervisor) == {"type": "queue", "queue": "sales", "waiting": 3, "longest_wait_seconds": 42}
        assert await recv_json(supervisor) == {"type": "agent", "agent": "1001", "state": "ringing", "call_id": "c1"}
    assert (await recv_json(alice))["type"] == "pop"
    assert (await recv_json(alice))["type"] == "retract"  # not the supervisors' messages in between


@pytest.mark.parametrize("query, status", [("", 401), ("?token=wrong", 401), ("?token=tok-noid", 403)])
async def test_a_socket_without_a_usable_login_is_refused_before_the_upgrade(make_server, query, status):
    srv = await make_server()
    with pytest.raises(InvalidStatus) as refused:
        await connect(srv.url(query), open_timeout=TIMEOUT)
    assert refused.value.response.status_code == status
    assert len(srv.hub) == 0


async def test_a_browser_offering_compression_gets_none(make_server):
    srv = await make_server()
    client = await srv.connect("tok-alice", compression="deflate")  # what browsers offer
    assert client.protocol.extensions == []
    assert "permessage-deflate" not in client.response.headers.get("Sec-WebSocket-Extensions", "")


async def test_an_agent_with_too_many_sockets_is_refused_more(make_server):
    srv = await make_server(SocketSettings(heartbeat=5.0, max_per_audience=2))
    for _ in range(2):
        await srv.connect("tok-alice")
    with pytest.raises(InvalidStatus) as refused:
        await connect(srv.url("?token=tok-alice"), open_timeout=TIMEOUT)
    assert refused.value.response.status_code == 429
    await srv.connect("tok-bob")  # the limit is per agent
    assert len(srv.hub) == 3


@pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")
async def test_the_user_can_come_from_an_auth_middleware_and_a_broken_session_store_is_a_503():
    @web.middleware
    async def auth(request, handler):
        """Stand-in for the real session middleware (agent_ui.auth, written separately)."""
        request["user"] = USERS.get(request.query.get("token", ""))
        return await handler(request)

    hub = Hub(settings=SocketSettings(heartbeat=5.0))
    app = web.Application(middlewares=[auth])
    ws_route.setup(app, hub)  # no authenticate given: request["user"]
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("/ws")).replace("http://", "ws://", 1)
    try:
        client = await connect(url + "?token=tok-bob", open_timeout=TIMEOUT)
        assert (await recv_json(client))["user"]["agent_id"] == "1002"
        await client.close()
        with pytest.raises(InvalidStatus) as refused:
            await connect(url, open_timeout=TIMEOUT)
        assert refused.value.response.status_code == 401

        async def failing(request):
            raise ConnectionError("session store unreachable")

        app2 = web.Application()
        ws_route.setup(app2, Hub(), failing)
        server2 = TestServer(app2, host="127.0.0.1")
        await server2.start_server()
        try:
            with pytest.raises(InvalidStatus) as refused:
                await connect(str(server2.make_url("/ws")).replace("http://", "ws://", 1), open_timeout=TIMEOUT)
            assert refused.value.response.status_code == 503
            assert refused.value.response.headers["Retry-After"] == "5"
        finally:
            await server2.close()
    finally:
        await server.close()


async def test_a_middleware_can_close_the_socket_when_its_session_ends():
    ended = asyncio.Event()

    @web.middleware
    async def session_watch(request, handler):
        """Stand-in for the auth middleware's periodic session re-check."""

        async def end_later():
            await ended.wait()
            request[ws_route.CONNECTION].close(ws_route.SESSION_ENDED, "session ended", reason="session-ended")

        task = asyncio.create_task(end_later())
        try:
            return await handler(request)
        finally:
            task.cancel()

    hub = Hub(settings=SocketSettings(heartbeat=5.0))
    app = web.Application(middlewares=[session_watch])
    ws_route.setup(app, hub, authenticate)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        client = await connect(str(server.make_url("/ws?token=tok-alice")).replace("http://", "ws://", 1), open_timeout=TIMEOUT)
        assert (await recv_json(client))["type"] == "hello"
        [conn] = hub.connections_of("1001")
        ended.set()
        with pytest.raises(ConnectionClosed) as closed:
            await recv_json(client)
        assert closed.value.rcvd.code == 4401 and closed.value.rcvd.reason == "session ended"
        await wait_until(lambda: len(hub) == 0, what="the socket to be forgotten")
        assert conn.end_reason == "session-ended"
    finally:
        await server.close()


# ------------------------------------------------------------------ replay


async def test_a_reconnecting_browser_gets_the_pops_of_its_open_calls(make_server):
    open_pops = {"1001": [pop("c1"), pop("c2", "billing")], "1002": [pop("c9")]}
    asked = []

    async def replay(agent_id):
        asked.append(agent_id)
        return open_pops.get(agent_id, [])

    srv = await make_server(replay=replay)
    first = await srv.connect("tok-alice")
    assert [(await recv_json(first))["call_id"] for _ in range(2)] == ["c1", "c2"]
    await first.close()
    await wait_until(lambda: not srv.hub.connected_agents(), what="the first socket to be forgotten")

    open_pops["1001"] = [pop("c2", "billing")]  # c1 ended while the browser was away
    again = await srv.connect("tok-alice")
    replayed = await recv_json(again)
    assert (replayed["call_id"], replayed["queue"]) == ("c2", "billing")
    srv.hub.send_to_agent("1001", pop("live"))
    assert (await recv_json(again))["call_id"] == "live"
    assert asked == ["1001", "1001"]


async def test_live_messages_sent_during_the_replay_come_after_it(make_server):
    gate = asyncio.Event()

    async def slow_replay(agent_id):
        await gate.wait()
        return [pop("c1")]

    srv = await make_server(replay=slow_replay)
    alice = await srv.connect("tok-alice")
    assert srv.hub.send_to_agent("1001", Retract("c1", "abandoned")) == 1  # while the replay is pending
    gate.set()
    assert (await recv_json(alice))["type"] == "pop"
    assert (await recv_json(alice))["type"] == "retract"  # the retract is not overtaken by the older pop


async def test_a_failing_replay_still_serves_the_socket(make_server, caplog):
    async def broken(agent_id):
        raise RuntimeError("orchestrator not ready")

    srv = await make_server(replay=broken)
    alice = await srv.connect("tok-alice")
    srv.hub.send_to_agent("1001", pop("c1"))
    assert (await recv_json(alice))["call_id"] == "c1"
    assert "ws replay failed user=alice agent=1001" in caplog.text


# ------------------------------------------------------------------ slow, dead and hostile clients


@both_handler_modes
async def test_a_client_that_stops_reading_is_dropped_while_a_fast_one_gets_everything_in_order(make_server, caplog, cancel_handlers):
    caplog.set_level(logging.WARNING, logger="agent_ui.connections")
    srv = await make_server(SocketSettings(queue_size=32, heartbeat=30.0, close_timeout=5.0), cancel_handlers=cancel_handlers)
    fast = await srv.connect("tok-alice")
    [fast_conn] = srv.hub.connections_of("1001")
    stalled = await srv.connect_stalled("tok-alice")
    await wait_until(lambda: len(srv.hub.connections_of("1001")) == 2, what="both tabs")
    [stalled_conn] = [c for c in srv.hub.connections_of("1001") if c is not fast_conn]

    received: list[str] = []
    lags: list[float] = []
    sent_at: dict[str, float] = {}

    async def read_fast():
        async for raw in fast:
            call_id = json.loads(raw)["call_id"]
            lags.append(time.monotonic() - sent_at[call_id])
            received.append(call_id)

    reader = asyncio.create_task(read_fast())
    pad = "x" * 16_000
    sent = 0

    async def send_next() -> int:
        nonlocal sent
        # Pace on the fast reader only (a window of 8), never on the stalled one.
        await wait_until(lambda: len(received) >= sent - 8, what="the fast client to keep up")
        sent_at[str(sent)] = time.monotonic()
        offered = srv.hub.send_to_agent("1001", CardUpdate(str(sent), {"pad": pad}))
        sent += 1
        return offered

    while len(srv.hub.connections_of("1001")) == 2:
        assert sent < 2_000, "the stalled client was never dropped"
        await send_next()
    assert srv.hub.dropped == 1 and stalled_conn.end_reason == TOO_SLOW
    assert srv.hub.connections_of("1001") == [fast_conn]
    for _ in range(100):
        assert await send_next() == 1  # only the fast tab is left, and it takes everything
    await wait_until(lambda: len(received) == sent, what="the fast client to get every message")
    reader.cancel()

    assert received == [str(i) for i in range(sent)]
    assert max(lags) < 1.0
    assert "ws client too slow, dropped agent=1001 queued=32 user=alice" in caplog.text
    dropped = [r for r in caplog.records if "too slow, dropped" in r.getMessage()]
    assert len(dropped) == 1

    # When the stalled browser reads again, it finds the close frame: 1013, try again later.
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(stalled.recv(), TIMEOUT)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013


async def test_a_full_queue_never_blocks_the_sender_and_drops_with_1013():
    """The same rule without the network: a writer stuck forever, offers still return at once."""

    class StuckSocket:
        closed_with = None

        async def send_frame(self, frame, opcode):
            await asyncio.Event().wait()

        async def close(self, *, code, message):
            self.closed_with = (code, message)
            return True

    ws = StuckSocket()
    conn = Connection(ws, User("alice", "agent", "1001"), SocketSettings(queue_size=4))
    conn._writer = asyncio.create_task(conn._write())
    await asyncio.sleep(0)  # the writer takes one frame and blocks on it
    started = time.perf_counter()
    results = [conn.offer(b"{}") for _ in range(10)]
    assert time.perf_counter() - started < 0.05
    assert results == [True] * 4 + [False] * 6
    assert conn.end_reason == TOO_SLOW and not conn.open
    await asyncio.wait_for(conn._closer, TIMEOUT)
    assert ws.closed_with == (1013, b"too slow, reconnect")
    assert conn._writer.cancelled()


@both_handler_modes
async def test_heartbeat_drops_a_client_that_stopped_answering(make_server, cancel_handlers):
    srv = await make_server(SocketSettings(heartbeat=0.2, close_timeout=0.5), cancel_handlers=cancel_handlers)
    alice = await srv.connect("tok-alice")
    bob = await srv.connect("tok-bob")
    [bob_conn] = srv.hub.connections_of("1002")

    bob.transport.pause_reading()  # TCP stays up, but bob answers no ping: a frozen laptop
    await wait_until(lambda: "1002" not in srv.hub.connected_agents(), timeout=10 * 0.2, what="the heartbeat to drop bob")
    assert bob_conn.end_reason == HEARTBEAT

    await asyncio.sleep(3 * 0.2)  # alice answers pings: still here several intervals later
    assert srv.hub.connected_agents() == {"1001"}
    srv.hub.send_to_agent("1001", pop("c1"))
    assert (await recv_json(alice))["call_id"] == "c1"


@both_handler_modes
async def test_a_client_gone_without_a_close_frame_is_forgotten(make_server, cancel_handlers):
    srv = await make_server(SocketSettings(heartbeat=0.2, close_timeout=0.5), cancel_handlers=cancel_handlers)
    await srv.connect("tok-alice")
    bob = await srv.connect("tok-bob")
    [bob_conn] = srv.hub.connections_of("1002")

    bob.transport.abort()  # RST, no close frame
    await wait_until(lambda: "1002" not in srv.hub.connected_agents(), timeout=5 * 0.2, what="bob to be forgotten")
    assert bob_conn.end_reason == CONNECTION_LOST
    assert srv.hub.send_to_agent("1002", pop("c1")) == 0
    assert srv.hub.connected_agents() == {"1001"}


@both_handler_modes
async def test_malformed_frames_get_an_error_and_repeated_abuse_closes_with_1008(make_server, caplog, cancel_handlers):
    srv = await make_server(SocketSettings(heartbeat=5.0, max_strikes=3), cancel_handlers=cancel_handlers)
    alice = await srv.connect("tok-alice")

    await alice.send("{not json")
    assert await recv_json(alice) == {"type": "error", "reason": "frame is not valid JSON"}
    await alice.send(json.dumps({"type": "ping", "id": "p1"}))  # a good frame in between is answered
    pong = await recv_json(alice)
    assert (pong["type"], pong["id"]) == ("pong", "p1")
    await alice.send(b"\x00\x01")
    assert (await recv_json(alice))["reason"].startswith("binary frames")
    await alice.send(json.dumps({"type": "subscribe", "agent": "1002"}))

    with pytest.raises(ConnectionClosed) as closed:
        await recv_json(alice)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    await wait_until(lambda: not srv.hub.connected_agents(), what="the abusive socket to be forgotten")
    assert "reason=abuse user=alice agent=1001" in caplog.text


async def test_a_frame_over_4kb_gets_an_error_and_a_huge_one_closes_with_1009(make_server):
    srv = await make_server(SocketSettings(heartbeat=5.0, max_frame=64 * 1024))
    alice = await srv.connect("tok-alice")
    await alice.send(json.dumps({"type": "ping", "pad": "x" * 5000}))
    assert (await recv_json(alice))["reason"] == "frame larger than 4096 bytes"
    await alice.send("x" * 100_000)
    with pytest.raises(ConnectionClosed) as closed:
        await recv_json(alice)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_acks_reach_the_injected_handler_with_the_user(make_server):
    acks = []
    srv = await make_server(on_ack=lambda conn, ack: acks.append((conn.agent_id, ack.call_id)))
    alice = await srv.connect("tok-alice")
    await alice.send(json.dumps({"type": "ack", "call_id": "c1"}))
    await alice.send(json.dumps({"type": "ping", "id": 1}))
    assert (await recv_json(alice))["type"] == "pong"  # frames are handled in order: the ack came first
    assert acks == [("1001", "c1")]


@both_handler_modes
async def test_shutting_the_server_down_closes_every_socket_with_1001(make_server, cancel_handlers):
    srv = await make_server(SocketSettings(heartbeat=5.0, close_timeout=2.0), cancel_handlers=cancel_handlers)
    alice = await srv.connect("tok-alice")
    sue = await srv.connect("tok-sue")
    started = time.monotonic()
    await srv.server.close()
    assert time.monotonic() - started < 2.0  # every socket ended; shutdown did not sit out a timeout
    for client in (alice, sue):
        with pytest.raises(ConnectionClosed) as closed:
            await recv_json(client)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert len(srv.hub) == 0


# ------------------------------------------------------------------ the orchestrator as the sender


class CardLookup:
    """Stand-in for LookupService (its own tests are in tests/lookup): one card now, a fuller one later."""

    def __init__(self):
        self.late = asyncio.Event()

    async def lookup(self, number, *, on_late=None):
        from customer_lookup.card import KNOWN, PENDING, CustomerCard, Person, SourceStatus

        async def later():
            await self.late.wait()
            await on_late(CustomerCard(KNOWN, number, number, [Person(name="Ana Garcia", billing={"balance": "9.00"})], {"billing": SourceStatus("ok")}))

        asyncio.create_task(later())
        return CustomerCard(KNOWN, number, number, [Person(name="Ana Garcia")], {"billing": SourceStatus(PENDING)})


async def test_the_orchestrator_pops_retracts_updates_and_replays_through_real_sockets(make_server):
    from screenpop.orchestrator import Orchestrator
    from telephony.events import CallAnswered, CallEnded, CallQueued, CallRinging, iso_utc

    holder = {}
    srv = await make_server(replay=lambda agent_id: holder["orchestrator"].pops_for(agent_id))
    lookup = CardLookup()
    orchestrator = holder["orchestrator"] = Orchestrator(lookup, srv.hub)
    alice_tabs = [await srv.connect("tok-alice") for _ in range(2)]
    bob = await srv.connect("tok-bob")
    now = iso_utc(time.time())

    orchestrator.handle(CallQueued("c1", now, "support", "+34912345678", "ANA", 1))
    orchestrator.handle(CallRinging("c1", now, "1001", "support", "+34912345678", "ANA"))
    orchestrator.handle(CallRinging("c1", now, "1002", "support", "+34912345678", "ANA"))
    await orchestrator.drain()
    for client in (*alice_tabs, bob):
        popped = await recv_json(client)
        assert (popped["type"], popped["call_id"], popped["state"]) == ("pop", "c1", "ringing")
        assert popped["card"]["persons"][0]["name"] == "Ana Garcia" and popped["caller"]["number"] == "+34912345678"

    await bob.close()  # bob's browser reloads while the phone rings: the pop comes back
    await wait_until(lambda: "1002" not in srv.hub.connected_agents(), what="bob's old socket to go")
    bob = await srv.connect("tok-bob")
    assert (await recv_json(bob))["call_id"] == "c1"

    orchestrator.handle(CallAnswered("c1", now, "1001", "support", 4.0))
    await orchestrator.drain()
    assert await recv_json(bob) == {"type": "retract", "call_id": "c1", "reason": "answered elsewhere"}
    for tab in alice_tabs:
        update = await recv_json(tab)
        assert (update["type"], update["event"], update["agent"]) == ("call", "answered", "1001")

    lookup.late.set()  # the slow billing source answers
    for tab in alice_tabs:
        card = await recv_json(tab)
        assert card["type"] == "card" and card["card"]["persons"][0]["billing"] == {"balance": "9.00"}

    third = await srv.connect("tok-alice")  # a new tab mid-call shows the answered call with the late data
    replayed = await recv_json(third)
    assert (replayed["call_id"], replayed["state"]) == ("c1", "answered")
    assert replayed["card"]["persons"][0]["billing"] == {"balance": "9.00"}

    orchestrator.handle(CallEnded("c1", now, "1001", "completed", 30.0))
    await orchestrator.drain()
    for tab in (*alice_tabs, third):
        assert (await recv_json(tab))["event"] == "ended"
    late_tab = await srv.connect("tok-alice")
    srv.hub.send_to_agent("1001", Retract("marker", "test"))
    assert (await recv_json(late_tab))["call_id"] == "marker"  # no replay: the call is over
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(bob.recv(), 0.2)  # bob heard nothing after the retract


async def test_the_connections_gauge_reads_the_hub(make_server):
    from screenpop.metrics import ServiceMetrics

    srv = await make_server()
    metrics = ServiceMetrics()
    metrics.bind_gauge(metrics.ws_connections, lambda: len(srv.hub))
    await srv.connect("tok-alice")
    await srv.connect("tok-sue")
    assert b"screenpop_websocket_connections 2.0" in metrics.render()

