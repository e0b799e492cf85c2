"""The whole live path, as the demo and production run it: the PBX simulator
serving AMI over TCP, AmiConnection reading it, CallFeed handing it to the
tracker.  Nothing here is mocked."""
from __future__ import annotations

import asyncio
import collections
import re

import pytest

from screenpop.config import AmiSettings
from telephony.agents import AgentResolver
from telephony.connection import AmiConnection
from telephony.feed import CallFeed
from telephony.simulator import SCENARIOS, PbxSimulator
from telephony.tracker import CallTracker

# Which agents ring depends on who is free, so ring-all counts are patterns:
# one letter per call event (Queued Ringing Missed Answered Transferred aBandoned Ended).
EXPECTED = {
    "queue_answered": r"QR{2,}AM+E",
    "queue_next_answers": r"Q(RM)+RAE",
    "queue_abandoned": r"QR+M+BE",
    "direct": r"RAE",
    "blind_transfer": r"RATRAE",
    "attended_transfer": r"RATE",
    "withheld": r"QR{2,}AM+E",
}
LETTER = {"call.queued": "Q", "call.ringing": "R", "call.missed": "M", "call.answered": "A",
          "call.transferred": "T", "call.abandoned": "B", "call.ended": "E"}


class Live:
    def __init__(self):
        self.simulator = PbxSimulator(seed=5, secret="demo-secret")
        self.events: dict[str, list] = collections.defaultdict(list)
        self.connection: AmiConnection | None = None
        self.tasks: list[asyncio.Task] = []

    async def start(self):
        port = await self.simulator.start()
        settings = AmiSettings(port=port, secret="demo-secret", reconnect_min=0.05, reconnect_max=0.2,
                               ping_interval=5, ping_timeout=2, connect_timeout=2)
        self.connection = AmiConnection(settings)
        feed = CallFeed(self.connection.queue, CallTracker(AgentResolver()), self._deliver)
        self.tasks = [asyncio.create_task(self.connection.run()), asyncio.create_task(feed.run())]
        await asyncio.wait_for(self.connection.connected_event.wait(), 5)
        await asyncio.sleep(0.1)  # the resync lists of the first login

    def _deliver(self, event):
        self.events[event.call_id].append(event)

    async def stop(self):
        await self.connection.stop()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.simulator.stop()

    async def ended(self, linkedid: str, timeout: float = 5.0) -> list:
        async def wait():
            while not any(e.type == "call.ended" for e in self.events[linkedid]):
                await asyncio.sleep(0.01)
        await asyncio.wait_for(wait(), timeout)
        return self.events[linkedid]


@pytest.fixture
async def live():
    live = Live()
    await live.start()
    yield live
    await live.stop()


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_every_simulated_scenario_becomes_the_call_events_of_the_design(live, scenario):
    linkedid = await live.simulator.place_call(scenario, "+34912345678", "José Núñez", speed=40)
    events = await live.ended(linkedid)
    assert re.fullmatch(EXPECTED[scenario], "".join(LETTER[e.type] for e in events)), [e.type for e in events]
    rang = [e.agent for e in events if e.type == "call.ringing"]
    missed = [e.agent for e in events if e.type == "call.missed"]
    assert set(missed) <= set(rang)
    holder = None  # who has the customer when the call ends
    for event in events:
        if event.type == "call.answered":
            holder = event.agent
        elif event.type == "call.transferred" and event.to_agent:
            holder = event.to_agent
    assert events[-1].agent == holder
    assert len(rang) == len(set(rang)) or scenario == "blind_transfer"
    first = events[0]
    if scenario == "withheld":  # restricted on the agent legs: every ring withholds it
        rings = [e for e in events if e.type == "call.ringing"]
        assert rings and all(e.caller_number is None and e.presentation == "restricted" for e in rings)
    else:
        assert (first.caller_number, first.caller_name) == ("+34912345678", "José Núñez")
    assert len({e.call_id for e in events}) == 1


async def test_link_dropped_mid_call_resyncs_without_losing_or_repeating_it(live):
    simulator = live.simulator
    placed = asyncio.create_task(simulator.place_call("queue_answered", "+14155550100", "Bob Smith",
                                                      talk_seconds=30, speed=20))

    async def answered():
        while True:
            calls = [events for events in live.events.values() if any(e.type == "call.answered" for e in events)]
            if calls:
                return calls[0][0].call_id
            await asyncio.sleep(0.01)

    linkedid = await asyncio.wait_for(answered(), 5)
    logins = live.connection.logins
    for session in list(simulator.server.sessions):
        session.writer.close()  # Asterisk's side of the TCP link goes away mid-call

    async def relogged():
        while live.connection.logins == logins:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(relogged(), 5)
    await placed
    events = await live.ended(linkedid)
    types = [e.type for e in events]
    assert types.count("call.answered") == 1 and types.count("call.queued") == 1
    assert types[-1] == "call.ended" and types.count("call.ended") == 1
    assert events[-1].agent == events[types.index("call.answered")].agent
