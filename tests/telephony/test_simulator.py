"""The PBX simulator: pure call building checked against the real captures,
then the AMI server driven over real TCP sockets."""
from __future__ import annotations

import asyncio
import collections
import random
import re
import time
from pathlib import Path

import pytest

from telephony.protocol import AmiDecoder, decode_all, encode_message
from telephony.simulator import SCENARIOS, Agent, IdAllocator, PbxSimulator, Queue, build_call, is_noise, plan_call
from telephony.simulator.model import default_agents, default_queues
from telephony.simulator.pbx import PbxState
from telephony.simulator.simulator import fast_encode
from telephony.simulator.traffic import TrafficGenerator, staff

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
START = 1795383106.373752
KEY_EVENTS = {"QueueCallerJoin", "AgentCalled", "DialBegin", "DialEnd", "AgentConnect", "AgentComplete",
              "AgentRingNoAnswer", "QueueCallerAbandon", "QueueCallerLeave", "BlindTransfer", "AttendedTransfer",
              "Hangup"}
# capture -> (scenario, caller) of the same call in the same setup
CAPTURED = {
    "support_answered": ("queue_answered", "+34912345678", "Ana Garcia"),
    "sales_no_answer_then_next": ("queue_next_answers", "+14155550100", "Bob Smith"),
    "billing_abandoned": ("queue_abandoned", "0034912345679", "Carla Ruiz"),
    "direct_call": ("direct", "912345680", None),
    "blind_transfer": ("blind_transfer", "+34600111222", "Frank Moreno"),
}


def capture(name: str) -> list[dict]:
    messages, decoder = decode_all((FIXTURES / f"{name}.ami").read_bytes())
    assert decoder.stats.skipped == 0
    return [m for m in messages if "Event" in m]


def events_of(scenario: str, number: str | None = "+34912345678", name: str | None = "Ana Garcia", **kw) -> list[dict]:
    return [event for _, event in build_call(scenario, IdAllocator(7), number, name, start_ts=START, **kw)]


def agent_of(channel: object) -> str | None:
    match = re.match(r"Local/(\d+)@agents", str(channel or ""))
    return match.group(1) if match else None


def key_sequence(events: list[dict]) -> list[tuple]:
    """The call flow without the plumbing: what the tracker must follow."""
    out: list[tuple] = []
    for e in events:
        name = e.get("Event")
        if name not in KEY_EVENTS:
            continue
        channel = str(e.get("Channel", ""))
        if name == "Hangup":
            if "@caller-sim-" in channel:
                out.append((name, channel[-2:], e["Cause-txt"]))
        elif name in ("DialBegin", "DialEnd"):
            if "@caller-sim-" not in str(e["DestChannel"]):  # not the originate of the caller itself
                out.append((name, agent_of(e["DestChannel"]), e.get("DialStatus")))
        else:
            out.append((name, agent_of(e.get("Interface") or e.get("DestChannel"))))
    # Asterisk hangs the two halves of the caller's Local pair up in either
    # order (support_answered: ;2 then ;1, sales_no_answer_then_next: ;1 then ;2).
    for i in range(len(out) - 1):
        if out[i][0] == out[i + 1][0] == "Hangup" and out[i] > out[i + 1]:
            out[i], out[i + 1] = out[i + 1], out[i]
    return out


def position(events: list[dict], predicate, start: int = 0) -> int:
    for index in range(start, len(events)):
        if predicate(events[index]):
            return index
    raise AssertionError("event not found")


def ev(name: str, **headers: str):
    return lambda e: e.get("Event") == name and all(str(e.get(k)) == v for k, v in headers.items())


# --------------------------------------------------------------------------- pure building


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("hangup_by", ["agent", "caller"])
def test_every_scenario_is_well_formed(scenario, hangup_by):
    plan = plan_call(scenario, IdAllocator(3), "+34912345678", "Ana García", start_ts=START, hangup_by=hangup_by)
    events = [e for _, e in plan.events]
    offsets = [t for t, _ in plan.events]
    assert offsets == sorted(offsets) and offsets[0] >= 0
    stamps = [float(e["Timestamp"]) for e in events]
    assert stamps == sorted(stamps)
    assert all(abs(float(e["Timestamp"]) - (START + t)) < 2e-6 for t, e in plan.events)
    # Every event survives the wire: encoded, then decoded by the client's decoder.
    wire = b"".join(encode_message(e) for e in events)
    decoded, decoder = decode_all(wire)
    assert decoder.stats.skipped == 0
    assert decoded == [{k: str(v) for k, v in e.items()} for e in events]
    # Channels: every Newchannel is hung up exactly once, later, and belongs to the call.
    opened = [e["Channel"] for e in events if e["Event"] == "Newchannel"]
    closed = [e["Channel"] for e in events if e["Event"] == "Hangup"]
    assert len(opened) == len(set(opened)) >= 4
    assert sorted(opened) == sorted(closed)
    for channel in opened:
        assert position(events, ev("Newchannel", Channel=channel)) < position(events, ev("Hangup", Channel=channel))
    linked = {str(v) for e in events for k, v in e.items() if k.endswith("Linkedid")}
    assert linked == {plan.linkedid}
    assert all(re.fullmatch(r"\d{10}\.\d+", str(e["Uniqueid"])) for e in events if "Uniqueid" in e)
    assert all(re.fullmatch(r"Local/[\w-]+@(caller-sim|agents)-[0-9a-f]{8};[12]", c) for c in opened)


def test_event_headers_are_those_of_the_captures():
    """Same header names in the same order as Asterisk sent them, for every event the captures contain."""
    shapes: dict[str, set[tuple]] = collections.defaultdict(set)
    for path in FIXTURES.glob("*.ami"):
        for message in capture(path.stem):
            shapes[message["Event"]].add(tuple(message))
    seen = set()
    for scenario in SCENARIOS:
        for options in ({}, {"hangup_by": "caller"}, {"queue": "support"}):
            if options.get("queue") and "transfer" not in scenario:
                continue
            for event in events_of(scenario, **options):
                name = event["Event"]
                seen.add(name)
                if name in shapes:
                    assert tuple(event) in shapes[name], f"{scenario}: {name} headers differ from the captures"
    assert {"VarSet", "Newexten", "DeviceStateChange", "QueueMemberStatus", "Newstate", "NewCallerid",
            "NewConnectedLine", "HangupRequest", "SoftHangupRequest", "BridgeCreate", "BridgeEnter",
            "BridgeLeave", "BridgeDestroy", "LocalBridge", "DialState", "AgentRingNoAnswer"} <= seen


@pytest.mark.parametrize("name", sorted(CAPTURED))
def test_key_events_follow_the_real_capture(name):
    scenario, number, caller = CAPTURED[name]
    real = key_sequence(capture(name))
    simulated = key_sequence(events_of(scenario, number, caller))
    assert len(real) >= 4
    assert simulated == real


@pytest.mark.parametrize("name", sorted(CAPTURED))
def test_noise_is_in_the_captures_proportions(name):
    scenario, number, caller = CAPTURED[name]
    real = [e for e in capture(name) if e["Event"] not in ("SuccessfulAuth", "FullyBooted")]
    simulated = events_of(scenario, number, caller)
    assert abs(len(simulated) - len(real)) <= 0.1 * len(real)
    share = lambda events: sum(map(is_noise, events)) / len(events)  # noqa: E731
    assert abs(share(simulated) - share(real)) < 0.05
    counts_real = collections.Counter(e["Event"] for e in real)
    counts_sim = collections.Counter(e["Event"] for e in simulated)
    for event_name in ("VarSet", "Newexten", "Newchannel", "Hangup", "DialEnd", "NewCallerid"):
        assert abs(counts_sim[event_name] - counts_real[event_name]) <= max(1, 0.15 * counts_real[event_name])


def test_noise_can_be_left_out_without_touching_the_call_flow():
    full = events_of("queue_answered")
    quiet = [e for _, e in build_call("queue_answered", IdAllocator(7), "+34912345678", "Ana Garcia",
                                      start_ts=START, noise=False)]
    assert not any(is_noise(e) for e in quiet)
    assert {e["Event"] for e in quiet} >= {"Newchannel", "QueueCallerJoin", "AgentCalled", "DialBegin", "DialEnd",
                                           "AgentConnect", "AgentComplete", "Hangup"}
    assert key_sequence(quiet) == key_sequence(full)
    assert len(quiet) < len(full) / 2


def test_ring_all_answer_cancels_the_other_agent():
    events = events_of("queue_answered")
    answer = position(events, lambda e: ev("DialEnd", DialStatus="ANSWER")(e) and agent_of(e["DestChannel"]))
    assert agent_of(events[answer]["DestChannel"]) == "1001"
    cancel = position(events, ev("DialEnd", DialStatus="CANCEL"))
    assert agent_of(events[cancel]["DestChannel"]) == "1002" and answer < cancel
    elsewhere = [e for e in events if e["Event"] == "Hangup" and e["Cause-txt"] == "Answered elsewhere"]
    assert {e["Channel"][-2:] for e in elsewhere} == {";1", ";2"}
    assert {agent_of(e["Channel"]) for e in elsewhere} == {"1002"}
    connect = position(events, ev("AgentConnect"))
    assert events[connect]["Interface"] == "Local/1001@agents/n" and events[connect]["MemberName"] == "Alice Agent"
    assert position(events, ev("QueueCallerLeave")) < connect < position(events, ev("AgentComplete", Reason="agent"))


def test_linear_queue_moves_on_after_no_answer():
    events = events_of("queue_next_answers")
    join = position(events, ev("QueueCallerJoin", Queue="sales"))
    first = position(events, ev("AgentCalled", Interface="Local/1003@agents/n"))
    rna = position(events, ev("AgentRingNoAnswer", Interface="Local/1003@agents/n"))
    noanswer = position(events, ev("DialEnd", DialStatus="NOANSWER"))
    second = position(events, ev("AgentCalled", Interface="Local/1004@agents/n"))
    connect = position(events, ev("AgentConnect", Interface="Local/1004@agents/n"))
    assert join < first < rna < noanswer < second < connect
    assert float(events[rna]["Timestamp"]) - float(events[first]["Timestamp"]) == pytest.approx(4.0, abs=0.01)
    assert events[rna]["RingTime"] == 4000


def test_abandon_order_and_hold_time():
    events = events_of("queue_abandoned", patience=4.5)
    order = [
        position(events, ev("QueueCallerJoin", Queue="billing")),
        position(events, ev("AgentCalled", Interface="Local/1003@agents/n")),
        position(events, ev("DialBegin", DialString="Local/1003@agents/n")),
        position(events, ev("DialEnd", DialStatus="CANCEL")),
        position(events, ev("QueueCallerAbandon", Queue="billing")),
        position(events, ev("QueueCallerLeave", Queue="billing")),
    ]
    assert order == sorted(order)
    abandon = events[order[4]]
    assert abandon["HoldTime"] == 4 and abandon["OriginalPosition"] == 1
    assert not any(e["Event"] in ("AgentConnect", "BridgeEnter") for e in events)


def test_abandon_after_members_time_out_rings_them_again():
    events = events_of("queue_abandoned", agents=["1001"], queue="support", patience=9.0)
    assert [e["Event"] for e in events if e["Event"] in ("AgentCalled", "AgentRingNoAnswer")] == [
        "AgentCalled", "AgentRingNoAnswer", "AgentCalled"]
    assert events[position(events, ev("QueueCallerAbandon"))]["HoldTime"] == 9


def test_direct_call_dials_the_agent_without_a_queue():
    events = events_of("direct", "912345680", None)
    assert not any(e["Event"].startswith(("Queue", "Agent")) and e["Event"] != "QueueMemberStatus" for e in events)
    dial = events[position(events, ev("DialBegin", DialString="1004@agents/n"))]
    assert dial["Channel"].startswith("Local/direct@caller-sim-") and dial["CallerIDName"] == "<unknown>"
    answer = position(events, ev("DialEnd", DialStatus="ANSWER", DestChannel=dial["DestChannel"]))
    bridged = [e["Channel"] for e in events[answer:] if e["Event"] == "BridgeEnter"]
    assert bridged == [dial["DestChannel"], dial["Channel"]]


def test_blind_transfer_then_the_caller_dials_the_target():
    events = events_of("blind_transfer", "+34600111222", "Frank Moreno")
    transfer = position(events, ev("BlindTransfer", Result="Success", Extension="1002", Context="transfer"))
    blind = events[transfer]
    assert agent_of(blind["TransfererChannel"]) == "1005"
    assert blind["TransfereeChannel"].startswith("Local/direct-long@caller-sim-")
    dial = events[position(events, ev("DialBegin", DialString="1002@agents/n"), transfer)]
    assert dial["Channel"] == blind["TransfereeChannel"] and dial["Context"] == "transfer"
    answer = position(events, ev("DialEnd", DialStatus="ANSWER", DestChannel=dial["DestChannel"]), transfer)
    enter = [e for e in events[answer:] if e["Event"] == "BridgeEnter"]
    assert [e["Channel"] for e in enter] == [dial["DestChannel"], blind["TransfereeChannel"]]
    (bridge,) = {e["BridgeUniqueid"] for e in enter}
    assert bridge != blind["BridgeUniqueid"]


@pytest.mark.parametrize("queue", [None, "support"])
def test_attended_transfer_bridges_the_caller_with_the_second_agent(queue):
    events = events_of("attended_transfer", queue=queue, target="1004")
    first = "1005" if queue is None else "1001"
    consult = position(events, ev("DialBegin", DialString="1004@agents/n"))
    assert agent_of(events[consult]["Channel"]) == first  # the agent's channel dials the second agent
    answered = position(events, ev("DialEnd", DialStatus="ANSWER", DestChannel=events[consult]["DestChannel"]))
    done = position(events, ev("AttendedTransfer", Result="Success"))
    assert consult < answered < done
    xfer = events[done]
    for group in ("OrigTransferer", "SecondTransferer", "Transferee", "TransferTarget"):
        assert {f"{group}{field}" for field in ("Channel", "Uniqueid", "Linkedid", "CallerIDNum")} <= set(xfer)
    assert agent_of(xfer["OrigTransfererChannel"]) == agent_of(xfer["SecondTransfererChannel"]) == first
    assert xfer["TransferTargetChannel"] == events[consult]["DestChannel"]
    assert "@caller-sim-" in xfer["TransfereeChannel"]
    assert xfer["DestType"] == "Bridge" and xfer["DestBridgeUniqueid"] == xfer["OrigBridgeUniqueid"]
    assert xfer["SecondBridgeUniqueid"] != xfer["OrigBridgeUniqueid"] and xfer["IsExternal"] == "No"
    # Afterwards the caller shares the original bridge with the second agent, and the first agent is gone.
    rejoin = events[position(events, ev("BridgeEnter", Channel=xfer["TransferTargetChannel"]), done)]
    assert rejoin["BridgeUniqueid"] == xfer["DestBridgeUniqueid"]
    gone = {e["Channel"] for e in events[done:] if e["Event"] == "Hangup" and agent_of(e["Channel"]) == first}
    assert len(gone) == 2
    if queue:
        assert events[position(events, ev("AgentComplete"), done)]["Reason"] == "transfer"


@pytest.mark.parametrize("number,expected", [("+34912345678", "+34912345678"), (None, "anonymous")])
def test_withheld_caller(number, expected):
    events = events_of("withheld", number, None)
    # as on a live Asterisk 22 (tests/fixtures/cdr/e_withheld.ami): the caller's own channels say allowed,
    # the agents' ;2 legs say prohibited
    callers = {e["CID-CallingPres"] for e in events if e["Event"] == "NewCallerid" and "@caller-sim-" in e["Channel"]}
    assert callers == {"0 (Presentation Allowed, Not Screened)"}
    legs = {e["CID-CallingPres"] for e in events if e["Event"] == "NewCallerid" and e["Channel"].endswith(";2") and "@agents-" in e["Channel"]}
    assert legs == {"35 (Presentation Prohibited, Network Number)"}
    join = events[position(events, ev("QueueCallerJoin"))]
    assert join["CallerIDNum"] == expected
    quiet = [e for _, e in build_call("withheld", IdAllocator(1), number, None, start_ts=START, noise=False)]
    assert any(e["Event"] == "NewCallerid" for e in quiet)  # the one event that says "do not show"


def test_identifiers_continue_like_asterisk_across_calls():
    ids = IdAllocator(1)
    first = plan_call("direct", ids, "1", None, start_ts=START)
    second = plan_call("queue_answered", ids, "2", None, start_ts=1795383206.8)
    assert first.linkedid == f"{int(START)}.0"
    assert second.linkedid == "1795383206.4"  # a direct call uses four channels
    created = [e for _, e in second.events if e["Event"] == "Newchannel"]
    assert [e["Channel"] for e in created[:3]] == [
        "Local/support@caller-sim-00000002;1", "Local/support@caller-sim-00000002;2", "Local/1002@agents-00000003;1"]
    # The agents' channels are created half a second later, in the next second: their uniqueids say so.
    assert [e["Uniqueid"] for e in created] == ["1795383206.4", "1795383206.5", "1795383207.6", "1795383207.7",
                                                "1795383207.8", "1795383207.9"]


def test_caller_id_with_a_line_break_is_refused():
    with pytest.raises(ValueError):
        build_call("direct", IdAllocator(), "1\r\nEvent: Hangup", None, start_ts=START)
    with pytest.raises(TypeError):
        build_call("direct", IdAllocator(), "1", None, start_ts=START, bogus=1)


def test_fast_encoder_is_byte_for_byte_the_protocol_encoder():
    for scenario in SCENARIOS:
        for event in events_of(scenario):
            assert fast_encode(event) == encode_message(event)
    with pytest.raises(ValueError):
        fast_encode({"Event": "Newchannel", "CallerIDName": "x\r\nEvent: Hangup"})


# --------------------------------------------------------------------------- traffic, pure


def test_staffing_never_double_books_and_downgrades():
    pbx = PbxState(default_agents(), default_queues(), ids=IdAllocator(), login_time=START)
    rng = random.Random(1)
    request = staff("queue_answered", pbx, START, rng, like_captures=True)
    assert (request.scenario, request.queue, request.agents) == ("queue_answered", "support", ("1001", "1002"))
    pbx.reserve({"1001": (0.0, 10.0)}, START)
    assert staff("queue_answered", pbx, START + 1, rng, like_captures=True).agents == ("1002",)
    assert staff("queue_next_answers", pbx, START + 1, rng, queue="support").scenario == "queue_answered"
    pbx.reserve({"1002": (0.0, 10.0)}, START)
    busy = staff("queue_answered", pbx, START + 1, rng, like_captures=True)
    assert (busy.scenario, busy.agents) == ("queue_abandoned", ())
    assert staff("queue_answered", pbx, START + 11, rng, like_captures=True).agents == ("1001", "1002")
    for agent in ("1003", "1004", "1005"):
        pbx.reserve({agent: (0.0, 10.0)}, START)
    assert staff("blind_transfer", pbx, START + 1, rng).scenario == "queue_abandoned"


def test_traffic_generator_rate_and_mix():
    gen = TrafficGenerator(4.0, [("+1", "A"), (None, None)], {"direct": 3, "queue_answered": 1},
                           rng=random.Random(5))
    assert gen.gap() == 0.25
    drawn = collections.Counter(gen.next_call()[0] for _ in range(2000))
    assert set(drawn) == {"direct", "queue_answered"} and 0.7 < drawn["direct"] / 2000 < 0.8
    poisson = TrafficGenerator(4.0, [("+1", "A")], rng=random.Random(5), arrivals="poisson")
    assert sum(poisson.gap() for _ in range(4000)) / 4000 == pytest.approx(0.25, rel=0.1)
    with pytest.raises(ValueError):
        TrafficGenerator(1.0, [("+1", None)], {"nope": 1.0}, rng=random.Random())


# --------------------------------------------------------------------------- the AMI server


class Client:
    """A plain AMI client: asyncio streams and the project's decoder."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.decoder = AmiDecoder()
        self.messages: list[dict] = []
        self.arrived: list[float] = []
        self._changed = asyncio.Event()
        self.closed = False
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, port: int) -> "Client":
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def _read(self):
        while data := await self.reader.read(65536):
            for message in self.decoder.feed(data):
                self.messages.append(message)
                self.arrived.append(time.time())
            self._changed.set()
        self.closed = True
        self._changed.set()

    def send(self, **headers):
        self.writer.write(encode_message(headers))

    async def wait_for(self, predicate, timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages:
                if predicate(message):
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.closed:
                raise AssertionError(f"no matching message; last: {self.messages[-3:]}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def login(self, secret: str = "screenpop", **extra) -> dict:
        self.send(Action="Login", ActionID="login-1", Username="screenpop", Secret=secret, **extra)
        return await self.wait_for(lambda m: m.get("ActionID") == "login-1")

    async def listing(self, action: str, action_id: str, complete: str, **headers) -> list[dict]:
        self.send(Action=action, ActionID=action_id, **headers)
        await self.wait_for(lambda m: m.get("Event") == complete and m.get("ActionID") == action_id)
        return [m for m in self.messages if m.get("ActionID") == action_id]

    def events(self) -> list[dict]:
        return [m for m in self.messages if "Event" in m and "ActionID" not in m]

    async def close(self):
        self.writer.close()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


@pytest.fixture
async def simulator():
    sim = PbxSimulator(seed=11)
    await sim.start()
    yield sim
    await sim.stop()


async def test_login_ping_and_unknown_actions(simulator):
    client = await Client.connect(simulator.port)
    reply = await client.login()
    assert client.decoder.banner == "Asterisk Call Manager/11.0.0"
    assert reply == {"Response": "Success", "ActionID": "login-1", "Message": "Authentication accepted"}
    await client.wait_for(lambda m: m.get("Event") == "FullyBooted")
    client.send(Action="Ping", ActionID="p-9")
    pong = await client.wait_for(lambda m: m.get("ActionID") == "p-9")
    assert pong["Response"] == "Success" and pong["Ping"] == "Pong"
    assert abs(float(pong["Timestamp"]) - time.time()) < 5
    client.send(Action="Frobnicate", ActionID="u-1")
    unknown = await client.wait_for(lambda m: m.get("ActionID") == "u-1")
    assert (unknown["Response"], unknown["Message"]) == ("Error", "Invalid/unknown command")
    client.send(Action="Logoff", ActionID="bye")
    assert (await client.wait_for(lambda m: m.get("ActionID") == "bye"))["Response"] == "Goodbye"
    await asyncio.wait_for(client._task, 2)
    assert client.closed
    await client.close()


async def test_wrong_secret_is_rejected_and_disconnected(simulator):
    client = await Client.connect(simulator.port)
    client.send(Action="Ping", ActionID="early")
    early = await client.wait_for(lambda m: m.get("ActionID") == "early")
    assert (early["Response"], early["Message"]) == ("Error", "Permission denied")
    reply = await client.login(secret="wrong")
    assert (reply["Response"], reply["Message"]) == ("Error", "Authentication failed")
    await asyncio.wait_for(client._task, 2)
    assert client.closed and not client.events()
    await client.close()


async def test_placed_call_reaches_every_logged_in_client(simulator):
    a, b, muted, stranger = [await Client.connect(simulator.port) for _ in range(4)]
    await a.login()
    await b.login()
    await muted.login(Events="off")
    sent = []
    simulator.on_event_sent(lambda event, at: sent.append((event, at)))
    linkedid = await simulator.place_call("queue_answered", "+34912345678", "Ana García", speed=50)
    await b.wait_for(lambda m: m.get("Event") == "Hangup" and m.get("Channel", "").endswith(";1")
                     and "@caller-sim-" in m["Channel"] and m["Linkedid"] == linkedid)
    await asyncio.sleep(0.05)
    call = [m for m in a.events() if m.get("Linkedid") == linkedid]
    assert call and call == [m for m in b.events() if m.get("Linkedid") == linkedid]
    assert key_sequence(call) == key_sequence(capture("support_answered"))
    assert call[0]["CallerIDNum"] == "<unknown>" and any(m.get("CallerIDName") == "Ana García" for m in call)
    received = [(m, at) for m, at in zip(a.messages, a.arrived)
                if m.get("Event") not in (None, "FullyBooted", "SuccessfulAuth")]
    assert len(sent) == simulator.events_sent == len(received) > len(call)
    for (event, sent_at), (message, arrived) in zip(sent, received):
        assert message["Event"] == event["Event"] and message["Timestamp"] == event["Timestamp"]
        assert sent_at <= arrived
    assert not muted.events() and not stranger.messages
    for client in (a, b, muted, stranger):
        await client.close()


async def test_speed_scales_playback_and_timestamps_stay_simulated(simulator):
    client = await Client.connect(simulator.port)
    await client.login()
    began = time.monotonic()
    linkedid = await simulator.place_call("direct", "912345680", None, speed=25)
    wall = time.monotonic() - began
    plan = simulator.plans[linkedid]
    assert plan.scenario == "direct" and plan.duration == pytest.approx(5.0, abs=0.05)
    assert plan.duration / 25 * 0.8 <= wall <= plan.duration / 25 + 0.5
    await asyncio.sleep(0.05)
    stamps = [float(m["Timestamp"]) for m in client.events() if m.get("Linkedid") == linkedid]
    assert stamps == sorted(stamps) and stamps[-1] - stamps[0] == pytest.approx(plan.duration, abs=0.01)
    await client.close()


def live_channels(events: list[dict]) -> set[str]:
    live: set[str] = set()
    for m in events:
        if m["Event"] == "Newchannel":
            live.add(m["Channel"])
        elif m["Event"] == "Hangup":
            live.discard(m["Channel"])
    return live


async def test_core_show_channels_and_queue_status_tell_the_truth(simulator):
    client = await Client.connect(simulator.port)
    await client.login()
    call = asyncio.create_task(simulator.place_call("queue_abandoned", "0034912345679", "Carla Ruiz",
                                                    speed=10, patience=4.5))
    await client.wait_for(lambda m: m.get("Event") == "DialState")  # 1003 is ringing, the caller waits
    channels = await client.listing("CoreShowChannels", "c1", "CoreShowChannelsComplete")
    assert channels[0] == {"Response": "Success", "ActionID": "c1", "EventList": "start",
                           "Message": "Channels will follow"}
    listed = {m["Channel"] for m in channels if m.get("Event") == "CoreShowChannel"}
    seen_before = client.events()[: client.messages.index(channels[0])]
    assert listed == live_channels(seen_before) and len(listed) == 4
    assert channels[-1]["EventList"] == "Complete" and channels[-1]["ListItems"] == "4"
    row = next(m for m in channels if m.get("Channel", "").endswith(";2") and "caller-sim" in m["Channel"])
    assert (row["Application"], row["CallerIDNum"], row["Context"]) == ("Queue", "0034912345679", "caller-sim")

    status = await client.listing("QueueStatus", "q1", "QueueStatusComplete", Queue="billing")
    params = [m for m in status if m.get("Event") == "QueueParams"]
    entries = [m for m in status if m.get("Event") == "QueueEntry"]
    members = [m for m in status if m.get("Event") == "QueueMember"]
    assert [p["Queue"] for p in params] == ["billing"] and params[0]["Calls"] == "1"
    assert len(entries) == 1 and entries[0]["CallerIDNum"] == "0034912345679" and entries[0]["Position"] == "1"
    assert entries[0]["Channel"] == row["Channel"]
    assert [(m["Location"], m["Status"]) for m in members] == [("Local/1003@agents/n", "2")]
    assert status[-1]["ListItems"] == str(len(status) - 2)

    await call
    channels = await client.listing("CoreShowChannels", "c2", "CoreShowChannelsComplete")
    assert channels[-1]["ListItems"] == "0" and len(channels) == 2
    status = await client.listing("QueueStatus", "q2", "QueueStatusComplete")
    assert not [m for m in status if m.get("Event") == "QueueEntry"]
    billing = next(m for m in status if m.get("Event") == "QueueParams" and m["Queue"] == "billing")
    assert (billing["Calls"], billing["Abandoned"]) == ("0", "1")
    assert {m["Status"] for m in status if m.get("Event") == "QueueMember"} == {"1"}
    await client.close()


async def test_positions_count_the_other_callers(simulator):
    client = await Client.connect(simulator.port)
    await client.login()
    calls = [asyncio.create_task(simulator.place_call("queue_abandoned", f"+3491000000{i}", None,
                                                      queue="billing", agents=[], patience=3.0 + i, speed=20))
             for i in range(3)]
    await asyncio.gather(*calls)
    await asyncio.sleep(0.05)
    joins = [m for m in client.events() if m["Event"] == "QueueCallerJoin"]
    assert [(m["Position"], m["Count"]) for m in joins] == [("1", "1"), ("2", "2"), ("3", "3")]
    leaves = [m for m in client.events() if m["Event"] == "QueueCallerLeave"]
    assert [(m["Position"], m["Count"]) for m in leaves] == [("1", "2"), ("1", "1"), ("1", "0")]
    abandons = [m for m in client.events() if m["Event"] == "QueueCallerAbandon"]
    assert [m["OriginalPosition"] for m in abandons] == ["1", "2", "3"]
    await client.close()


async def test_traffic_places_calls_at_the_rate_without_double_booking():
    agents, queues = {}, {}
    for n in range(40):
        agents[str(3000 + n)] = Agent(str(3000 + n), f"Agent {n}", answer_after=1.0, talk_seconds=3.0)
    queues["support"] = Queue("support", "ringall", tuple(list(agents)[:20]), timeout=5)
    queues["sales"] = Queue("sales", "linear", tuple(list(agents)[20:]), timeout=5)
    sim = PbxSimulator(agents=agents, queues=queues, seed=3, noise=False)
    await sim.start()
    client = await Client.connect(sim.port)
    await client.login()
    callers = [(f"+3460000{i:04d}", f"Caller {i}") for i in range(30)] + [(None, None)]
    placed = await sim.run_traffic(4.0, callers, duration=1.0, speed=10)
    await asyncio.sleep(0.05)
    assert 30 <= placed <= 41  # 4 calls/s x 10 s of simulated time
    events = client.events()
    assert not any(is_noise(m) for m in events)
    starts = {m["Linkedid"] for m in events if m["Event"] == "Newchannel"}
    assert len(starts) == placed == sim.calls_placed
    assert not live_channels(events)  # every call has ended
    scenarios = collections.Counter(sim.plans[linkedid].scenario for linkedid in starts)
    assert len(scenarios) >= 3
    # An agent's phone is in one call at a time.
    owner: dict[str, str] = {}
    for m in events:
        agent = agent_of(m.get("Channel")) if m["Event"] in ("Newchannel", "Hangup") else None
        if agent is None:
            continue
        if m["Event"] == "Newchannel":
            assert owner.setdefault(agent, m["Linkedid"]) == m["Linkedid"], f"agent {agent} double-booked"
        elif not any(agent_of(c) == agent for c in live_channels(events[: events.index(m) + 1])):
            owner.pop(agent, None)
    await client.close()
    await sim.stop()
