"""``screenpop demo``: the product on one machine, driven by the PBX simulator.

The simulator is a real AMI server on a loopback port; the same connection,
tracker and feed that talk to Asterisk in production talk to it here, over
TCP, so the demo exercises every byte of the real path.
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sys
from dataclasses import replace

from screenpop.config import Settings
from telephony.agents import AgentResolver
from telephony.connection import AmiConnection
from telephony.events import CallEvent
from telephony.feed import CallFeed
from telephony.replay import describe
from telephony.simulator import PbxSimulator
from telephony.tracker import CallTracker

log = logging.getLogger(__name__)

# The people of the real captures, so the demo pops familiar names, plus a
# withheld caller and numbers nobody knows.
DEMO_CALLERS: list[tuple[str | None, str | None]] = [
    ("+34912345678", "Ana Garcia"),
    ("+14155550100", "Bob Smith"),
    ("0034912345679", "Carla Ruiz"),
    ("912345680", None),
    ("+34600111222", "Frank Moreno"),
    ("+6591234567", "Hector Lim"),
    (None, None),
    ("+34918812311", None),
    ("+34914186027", None),
]


async def run_demo(settings: Settings, *, rate: float, duration: float | None, speed: float, as_json: bool, out=None) -> int:
    out = out or sys.stdout
    secret = settings.ami.secret or secrets.token_urlsafe(16)
    simulator = PbxSimulator(username=settings.ami.username, secret=secret)
    port = await simulator.start()
    ami = replace(settings.ami, host="127.0.0.1", port=port, secret=secret)
    connection = AmiConnection(ami)
    tracker = CallTracker(AgentResolver(settings.agents.patterns))

    def show(event: CallEvent) -> None:
        out.write((json.dumps(event.to_dict(), ensure_ascii=False) if as_json else describe(event)) + "\n")
        out.flush()

    feed = CallFeed(connection.queue, tracker, show)
    print(f"screenpop demo: PBX simulator on 127.0.0.1:{port}, {rate} call(s)/s; Ctrl-C to stop", file=sys.stderr)
    tasks = [asyncio.create_task(connection.run()), asyncio.create_task(feed.run())]
    try:
        await simulator.run_traffic(rate, DEMO_CALLERS, duration=duration, speed=speed)
        await asyncio.sleep(min(2.0, 10 / max(speed, 1)))  # let the last hang-ups through
    finally:
        await connection.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await simulator.stop()
    print(f"screenpop demo: {feed.calls_out} call events from {feed.events_in} AMI events", file=sys.stderr)
    return 0
