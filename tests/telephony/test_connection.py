"""The live AMI connection against a fake Asterisk speaking real AMI over real TCP."""
from __future__ import annotations

import asyncio
import logging
import random
import re
import socket
import time
from pathlib import Path

import pytest

from screenpop.config import AmiSettings
from telephony import connection as connection_module
from telephony.connection import AmiConnection, AmiNotConnected
from telephony.link import LinkDown, LinkUp, Snapshot
from telephony.protocol import decode_all, encode_message

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BANNER = "Asterisk Call Manager/11.0.0"
SECRET = "s3cret-Xq9"


class FakeAmi:
    """Enough of Asterisk's manager: banner, Login, Ping, the two resync lists, Logoff.

    ``chunks`` splits every write (one byte at a time, random sizes) with a
    yield between pieces so the client really reads them separately."""

    def __init__(self, *, secret: str = SECRET):
        self.username, self.secret = "screenpop", secret
        self.port = 0
        self.answer_pings = True
        self.ignored: set[str] = set()  # lower-case action names never answered
        self.chunks = None
        self.channels: list[dict] = []
        self.queue_params: list[dict] = []
        self.queue_members: list[dict] = []
        self.queue_entries: list[dict] = []
        self.during_lists: list[dict] = []  # events written inside the CoreShowChannels list
        self.after_lists: list[dict] = []  # events written in the same write as QueueStatusComplete
        self.actions: list[dict] = []
        self.login_times: list[float] = []
        self._server = None
        self._authed: dict[asyncio.StreamWriter, asyncio.Lock] = {}
        self._locks: dict[asyncio.StreamWriter, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._server.close()
        for writer in list(self._locks):
            writer.close()
        await self._server.wait_closed()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def count(self, name: str) -> int:
        return sum(1 for action in self.actions if action.get("Action", "").lower() == name)

    async def push(self, *events: dict) -> None:
        await self.push_raw(b"".join(encode_message(event) for event in events))

    async def push_raw(self, data: bytes) -> None:
        for writer in list(self._authed):
            await self._write(writer, data)

    async def _write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        async with self._locks[writer]:  # a chunked event must not interleave with a reply
            for piece in self.chunks(data) if self.chunks else [data]:
                if writer.is_closing():
                    return
                writer.write(piece)
                await writer.drain()
                if self.chunks:
                    await asyncio.sleep(0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.add(asyncio.current_task())
        self._locks[writer] = asyncio.Lock()
        try:
            await self._write(writer, BANNER.encode() + b"\r\n")
            buffer = b""
            while data := await reader.read(65536):
                *blocks, buffer = (buffer + data).split(b"\r\n\r\n")
                for block in blocks:
                    action = dict(line.split(": ", 1) for line in block.decode().split("\r\n") if ": " in line)
                    self.actions.append(action)
                    if not await self._answer(writer, action):
                        return
        except ConnectionError:
            pass
        finally:
            self._authed.pop(writer, None)
            self._locks.pop(writer, None)
            writer.close()
            self._tasks.discard(asyncio.current_task())

    async def _answer(self, writer, action: dict) -> bool:
        name = action.get("Action", "").lower()
        tag = {"ActionID": action["ActionID"]} if "ActionID" in action else {}
        reply = lambda **headers: encode_message({**headers, **tag})  # noqa: E731
        if name in self.ignored:
            return True
        if name == "login":
            self.login_times.append(time.monotonic())
            if (action.get("Username"), action.get("Secret")) != (self.username, self.secret):
                await self._write(writer, reply(Response="Error", Message="Authentication failed"))
                return False
            self._authed[writer] = True
            await self._write(writer, reply(Response="Success", Message="Authentication accepted")
                              + encode_message({"Event": "FullyBooted", "Privilege": "system,all", "Status": "Fully Booted"}))
        elif name == "ping":
            if self.answer_pings:
                await self._write(writer, reply(Response="Success", Ping="Pong", Timestamp="1795383105.870879"))
        elif name == "logoff":
            await self._write(writer, reply(Response="Goodbye", Message="Thanks for all the fish."))
            return False
        elif name == "coreshowchannels":
            await self._write(writer, self._list(reply, "Channels will follow", [
                *({"Event": "CoreShowChannel", **tag, **c} for c in self.channels), *self.during_lists,
                {"Event": "CoreShowChannelsComplete", **tag, "EventList": "Complete", "ListItems": len(self.channels)}]))
        elif name == "queuestatus":
            items = [{"Event": "QueueParams", **tag, **p} for p in self.queue_params]
            items += [{"Event": "QueueMember", **tag, **m} for m in self.queue_members]
            items += [{"Event": "QueueEntry", **tag, **e} for e in self.queue_entries]
            await self._write(writer, self._list(reply, "Queue status will follow", [
                *items, {"Event": "QueueStatusComplete", **tag, "EventList": "Complete", "ListItems": len(items)},
                *self.after_lists]))
        else:
            await self._write(writer, reply(Response="Error", Message="Invalid/unknown command"))
        return True

    @staticmethod
    def _list(reply, message: str, events: list[dict]) -> bytes:
        return reply(Response="Success", EventList="start", Message=message) + b"".join(map(encode_message, events))


@pytest.fixture
async def ami():
    server = FakeAmi()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def running():
    """Start connections; each is stopped (and its run() awaited) at teardown."""
    started: list[tuple[AmiConnection, asyncio.Task]] = []

    def start(conn: AmiConnection) -> AmiConnection:
        started.append((conn, asyncio.create_task(conn.run())))
        return conn

    yield start
    for conn, task in started:
        await asyncio.wait_for(conn.stop(), 3)
        await asyncio.wait_for(task, 3)


def settings(port: int, **overrides) -> AmiSettings:
    values = dict(host="127.0.0.1", port=port, username="screenpop", secret=SECRET, ping_interval=5.0,
                  ping_timeout=1.0, reconnect_min=0.05, reconnect_max=0.2, connect_timeout=1.0)
    return AmiSettings(**{**values, **overrides})


async def take(queue: asyncio.Queue, n: int = 1, timeout: float = 3.0) -> list:
    return [await asyncio.wait_for(queue.get(), timeout) for _ in range(n)]


async def take_until(queue: asyncio.Queue, kind: type, timeout: float = 3.0) -> list:
    """Items up to and including the first of ``kind``."""
    items = []
    while not items or not isinstance(items[-1], kind):
        items += await take(queue, timeout=timeout)
    return items


async def eventually(condition, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def chan(name: str, caller: str, linkedid: str) -> dict:
    return {"Channel": name, "ChannelState": "6", "ChannelStateDesc": "Up", "CallerIDNum": "+34912345678",
            "CallerIDName": caller, "Linkedid": linkedid, "Uniqueid": linkedid}


def without_id(items: list[dict]) -> list[dict]:
    return [{k: v for k, v in item.items() if k != "ActionID"} for item in items]


async def test_accented_names_split_across_reads_arrive_intact(ami, running, monkeypatch):
    reads: list[bytes] = []
    original = connection_module._AmiProtocol.data_received
    monkeypatch.setattr(connection_module._AmiProtocol, "data_received",
                        lambda self, data: (reads.append(data), original(self, data))[1])
    ami.chunks = lambda data: [data[i:i + 1] for i in range(len(data))]
    conn = running(AmiConnection(settings(ami.port), resync=False))
    up, booted = await take(conn.queue, 2)
    assert up == LinkUp(reconnect=False, banner=BANNER) and booted["Event"] == "FullyBooted"
    await ami.push({"Event": "Newchannel", "Channel": "PJSIP/trunk-00000001", "CallerIDName": "José Núñez"},
                   {"Event": "NewCallerid", "Channel": "PJSIP/trunk-00000002", "CallerIDName": "Zoë"})
    first, second = await take(conn.queue, 2)
    assert first == {"Event": "Newchannel", "Channel": "PJSIP/trunk-00000001", "CallerIDName": "José Núñez"}
    assert second["CallerIDName"] == "Zoë"
    assert any(read.endswith(b"\xc3") for read in reads), "no read ended inside a two-byte character"


@pytest.mark.parametrize("capture", ["burst_small.ami", "support_answered.ami"])
async def test_capture_in_random_chunks_arrives_in_order_and_complete(ami, running, capture):
    raw = (FIXTURES / capture).read_bytes()
    expected = [message for message in decode_all(raw)[0] if "Event" in message]
    rng = random.Random(capture)

    def random_chunks(data: bytes) -> list[bytes]:
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, max(1, len(data) // 1500))))
        return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]

    ami.chunks = random_chunks
    conn = running(AmiConnection(settings(ami.port), resync=False))
    await take(conn.queue, 2)  # LinkUp, FullyBooted
    await ami.push_raw(raw.split(b"\n", 1)[1])  # the capture after its banner, with its stray login reply
    got = await take(conn.queue, len(expected))
    assert got == expected  # same dicts, same order; the capture's "Response: Success" was not queued
    await asyncio.sleep(0.05)
    assert conn.queue.empty()


async def test_rejected_login_is_logged_per_attempt_and_retried_with_capped_backoff(ami, running, caplog):
    caplog.set_level(logging.INFO, logger="telephony.connection")
    ami.secret = "the-right-one"
    conn = running(AmiConnection(settings(ami.port, reconnect_min=0.05, reconnect_max=0.2)))
    await eventually(lambda: len(ami.login_times) >= 6)
    records = [r for r in caplog.records if r.name == "telephony.connection"]
    rejected = [r.getMessage() for r in records if "ami login rejected" in r.getMessage()]
    assert len(rejected) >= 5 and len(rejected) >= len(ami.login_times) - 1
    assert f"host=127.0.0.1 port={ami.port} user=screenpop message=Authentication failed" in rejected[0]
    assert all(r.exc_info is None for r in caplog.records) and "Traceback" not in caplog.text
    assert SECRET not in caplog.text
    delays = [float(re.search(r"delay=([\d.]+)", r.getMessage()).group(1)) for r in records if "ami retry" in r.getMessage()]
    assert delays[0] == pytest.approx(0.05) and delays[0] < delays[1] < delays[2]
    assert all(d <= 0.2 for d in delays) and max(delays) >= 0.16
    gaps = [b - a for a, b in zip(ami.login_times, ami.login_times[1:])]
    assert all(gap >= delay * 0.9 for gap, delay in zip(gaps, delays))  # it really waited
    assert conn.state != "connected" and conn.queue.empty()


async def test_unreachable_port_is_logged_and_retried(running, caplog):
    caplog.set_level(logging.INFO, logger="telephony.connection")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    conn = running(AmiConnection(settings(port)))
    failed = lambda: [r for r in caplog.records if "ami connect failed" in r.getMessage()]  # noqa: E731
    await eventually(lambda: len(failed()) >= 3)
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in failed())
    assert f"port={port} error=" in failed()[0].getMessage()
    assert conn.state in ("connecting", "disconnected") and conn.queue.empty()
    started = time.monotonic()
    await conn.stop()
    assert time.monotonic() - started < 0.5  # stop does not wait out the backoff


async def test_silent_server_login_times_out_and_retries(ami, running, caplog):
    caplog.set_level(logging.INFO, logger="telephony.connection")
    ami.ignored.add("login")
    running(AmiConnection(settings(ami.port, connect_timeout=0.1)))
    await eventually(lambda: ami.count("login") >= 2)
    failed = [r.getMessage() for r in caplog.records if "ami login failed" in r.getMessage()]
    assert failed and "no reply to Login within 0.1s" in failed[0]


async def test_server_restart_gives_linkdown_linkup_and_a_fresh_snapshot(ami, running):
    ami.channels = [chan("PJSIP/trunk-00000001", "Ana Garcia", "1795383105.1")]
    ami.queue_params = [{"Queue": "support", "Calls": "1"}]
    ami.queue_members = [{"Queue": "support", "Name": "1001", "Location": "Local/1001@agents/n"}]
    ami.queue_entries = [{"Queue": "support", "Position": "1", "Channel": "PJSIP/trunk-00000001"}]
    conn = running(AmiConnection(settings(ami.port)))
    items = await take_until(conn.queue, Snapshot)
    assert items[0] == LinkUp(reconnect=False, banner=BANNER)
    snapshot = items[-1]
    assert without_id(snapshot.channels) == [{"Event": "CoreShowChannel", **ami.channels[0]}]
    assert without_id(snapshot.queue_entries) == [{"Event": "QueueEntry", **ami.queue_entries[0]}]
    assert [m["Name"] for m in snapshot.queue_members] == ["1001"] and snapshot.queue_params[0]["Queue"] == "support"

    await ami.stop()
    ami.channels = [chan("PJSIP/trunk-00000007", "Zoë", "1795383999.7"), chan("Local/1002@agents-0001;1", "", "1795383999.7")]
    ami.queue_entries = []
    await ami.start()  # same port
    items = await take_until(conn.queue, Snapshot)
    assert isinstance(items[0], LinkDown) and "closed" in items[0].reason
    assert items[1] == LinkUp(reconnect=True, banner=BANNER)
    assert without_id(items[-1].channels) == [{"Event": "CoreShowChannel", **c} for c in ami.channels]
    assert items[-1].queue_entries == []
    assert not any(isinstance(item, dict) and item.get("Event", "").startswith(("CoreShow", "Queue")) for item in items)


async def test_snapshot_sits_exactly_where_the_lists_ended(ami, running):
    ami.channels = [chan("PJSIP/trunk-00000001", "Ana Garcia", "1")]
    ami.during_lists = [{"Event": "Newchannel", "Channel": "PJSIP/trunk-00000002"}]
    ami.after_lists = [{"Event": "Hangup", "Channel": "PJSIP/trunk-00000001"}]
    conn = running(AmiConnection(settings(ami.port)))
    items = await take(conn.queue, 5)
    assert [type(i).__name__ if not isinstance(i, dict) else i["Event"] for i in items] == [
        "LinkUp", "FullyBooted", "Newchannel", "Snapshot", "Hangup"]


async def test_shutdown_event_is_queued_then_link_is_dropped_and_reopened(ami, running):
    conn = running(AmiConnection(settings(ami.port), resync=False))
    await take(conn.queue, 2)
    await ami.push({"Event": "Shutdown", "Shutdown": "Cleanly", "Restart": "True"}, {"Event": "Newchannel"})
    items = await take_until(conn.queue, LinkUp)
    assert items[0]["Event"] == "Shutdown"
    assert isinstance(items[1], LinkDown) and "shutdown" in items[1].reason
    assert items[2:] == [LinkUp(reconnect=True, banner=BANNER)]  # what followed Shutdown was a dead session's


async def test_watchdog_drops_a_link_whose_pings_go_unanswered(ami, running, caplog):
    conn = running(AmiConnection(settings(ami.port, ping_interval=0.1, ping_timeout=0.1), resync=False))
    await take(conn.queue, 2)
    await asyncio.sleep(0.35)
    assert ami.count("ping") >= 2 and conn.queue.empty()  # answered pings keep the link
    ami.answer_pings = False
    started = time.monotonic()
    (down,) = await take(conn.queue, timeout=1.0)
    assert isinstance(down, LinkDown) and "ping" in down.reason
    assert time.monotonic() - started < 0.1 + 0.1 + 0.15
    assert any("ami ping unanswered" in r.getMessage() for r in caplog.records)
    assert (await take(conn.queue))[0] == LinkUp(reconnect=True, banner=BANNER)


async def test_a_link_still_delivering_events_is_not_dropped_for_a_late_pong(ami, running):
    """A busy Asterisk (or a busy node) answers the ping late, behind a stream
    of events: the stream itself proves the link, so no reconnect storm."""
    conn = running(AmiConnection(settings(ami.port, ping_interval=0.05, ping_timeout=0.1), resync=False))
    await take(conn.queue, 2)
    ami.answer_pings = False
    for n in range(40):  # 0.4 s of events, four ping timeouts long
        await ami.push({"Event": "VarSet", "Seq": str(n)})
        await asyncio.sleep(0.01)
    items = await take(conn.queue, 40)
    assert not any(isinstance(item, LinkDown) for item in items)
    assert [item["Seq"] for item in items] == [str(n) for n in range(40)]
    (down,) = await take(conn.queue, timeout=1.0)  # silence: now the watchdog acts
    assert isinstance(down, LinkDown) and "ping" in down.reason


async def test_slow_consumer_with_a_tiny_queue_loses_nothing(ami, running):
    conn = running(AmiConnection(settings(ami.port, ping_interval=0.05, ping_timeout=0.1), queue_maxsize=8, resync=False))
    await take(conn.queue, 2)
    total = 600

    async def produce():
        for start in range(0, total, 20):
            await ami.push(*({"Event": "VarSet", "Seq": str(n), "Value": "ñ" * 40} for n in range(start, start + 20)))
            await asyncio.sleep(0)

    producer = asyncio.create_task(produce())
    got, largest = [], 0
    while len(got) < total:
        largest = max(largest, conn.queue.qsize())
        got += await take(conn.queue)
        # stalls longer than ping_timeout: the unread Pong must not count as a dead link
        await asyncio.sleep(0.25 if len(got) % 200 == 0 else 0.001)
    await producer
    assert [item["Seq"] for item in got] == [str(n) for n in range(total)]  # no LinkDown, nothing lost
    assert conn.read_pauses > 0 and largest <= 8
    assert ami.count("ping") >= 3


async def test_send_action_replies_lists_errors_and_timeouts(ami, running):
    conn = AmiConnection(settings(ami.port))
    with pytest.raises(AmiNotConnected):
        await conn.send_action({"Action": "Ping"})
    ami.channels = [chan("PJSIP/trunk-00000001", "Ana Garcia", "1")]
    running(conn)
    await take_until(conn.queue, Snapshot)

    pong = await conn.send_action({"Action": "Ping"})
    assert pong.success and pong["Ping"] == "Pong"
    listed = await conn.send_action({"Action": "CoreShowChannels"})
    assert [m.event for m in listed] == ["", "CoreShowChannel", "CoreShowChannelsComplete"]
    assert listed[1]["CallerIDName"] == "Ana Garcia"
    error = await conn.send_action({"Action": "NoSuchThing"})
    assert not error.success and error.message == "Invalid/unknown command"

    ami.ignored.add("status")
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError, match="no reply to Status within 0.2s"):
        await conn.send_action({"Action": "Status"}, timeout=0.2)
    assert 0.2 <= time.monotonic() - started < 0.5
    assert conn._protocol.responses == {}  # the action was forgotten
    assert (await conn.send_action({"Action": "Ping"})).success  # and the link is fine
    with pytest.raises(ValueError):
        await conn.send_action({"Action": "Originate", "CallerID": "x\r\nAction: Hangup"})
    assert conn.queue.empty()  # replies and list items went to their actions, not the queue


async def test_send_action_fails_fast_when_the_link_drops_before_the_reply(ami, running):
    conn = running(AmiConnection(settings(ami.port), resync=False))
    await take(conn.queue, 2)
    ami.ignored.add("status")
    pending = asyncio.create_task(conn.send_action({"Action": "Status"}, timeout=3.0))
    await eventually(lambda: ami.count("status") == 1)
    await ami.stop()
    started = time.monotonic()
    with pytest.raises(AmiNotConnected):
        await pending
    assert time.monotonic() - started < 0.5


async def test_stop_logs_off_and_leaves_nothing_running(ami):
    conn = AmiConnection(settings(ami.port, ping_interval=0.05))
    task = asyncio.create_task(conn.run())
    await take_until(conn.queue, Snapshot)
    await asyncio.wait_for(conn.stop(), 2)
    await asyncio.wait_for(task, 1)
    assert task.exception() is None and conn.state == "disconnected"
    assert ami.actions[-1]["Action"] == "Logoff"
    assert (await take(conn.queue)) == [LinkDown("stopped")]
    leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and "ami" in t.get_name()]
    assert leftovers == []
    with pytest.raises(AmiNotConnected):
        await conn.send_action({"Action": "Ping"})


async def test_a_link_told_what_its_consumers_read_queues_only_that(ami, running):
    raw = (FIXTURES / "support_answered.ami").read_bytes()
    wanted = frozenset({"QueueCallerJoin", "Hangup"})
    kept = wanted | connection_module.LINK_EVENTS
    # an event answering an action (the capture's OriginateResponse) is kept whatever its name
    expected = [m for m in decode_all(raw)[0] if m.get("Event") in kept or ("Event" in m and "ActionID" in m)]
    conn = running(AmiConnection(settings(ami.port), resync=False, wanted_events=wanted))
    up, booted = await take(conn.queue, 2)  # FullyBooted is about the link: always kept
    assert isinstance(up, LinkUp) and booted["Event"] == "FullyBooted"
    await ami.push_raw(raw.split(b"\n", 1)[1])
    assert await take(conn.queue, len(expected)) == expected
    await asyncio.sleep(0.05)
    assert conn.queue.empty()
