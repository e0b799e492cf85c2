"""PbxSimulator: a local Asterisk look-alike speaking real AMI over TCP.

It ties the pieces together: the AMI server (:mod:`.server`), the PBX state
(:mod:`.pbx`), the pure call builder (:mod:`.scenarios`), the traffic
generator (:mod:`.traffic`), a real center's people for the demo
(:mod:`.center`) and the shared clock and send loop (:mod:`.playback`).
``screenpop demo``, the end-to-end tests and the benchmarks drive the real
telephony code with it.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from dataclasses import replace
from typing import Awaitable, Callable, Iterable, Mapping, Sequence

from telephony.protocol import encode_message
from telephony.simulator.cel import CelRecorder
from telephony.simulator.center import CenterProfile, staff_patiently
from telephony.simulator.model import Agent, IdAllocator, Queue, default_agents, default_queues
from telephony.simulator.pbx import PbxState, agents_by_id, queues_by_name
from telephony.simulator.playback import Event, Playback, SimClock
from telephony.simulator.scenarios import CallPlan, is_noise, membership, plan_call
from telephony.simulator.server import AmiServer, Session
from telephony.simulator.traffic import TrafficGenerator, staff

log = logging.getLogger(__name__)

EventHook = Callable[[Event, float], None]


def fast_encode(event: Event) -> bytes:
    """:func:`~telephony.protocol.encode_message`, eight times faster for the
    common case, byte for byte the same: the line count proves no value
    carried a line break, else the checked encoder decides (and refuses)."""
    text = "".join([f"{key}: {value}\r\n" for key, value in event.items()]) + "\r\n"
    lines = len(event) + 1
    if text.count("\n") == lines and text.count("\r") == lines:  # keys are ours, never user input
        return text.encode("utf-8")
    return encode_message(event)


class PbxSimulator:
    """A simulated PBX.  ``speed`` makes simulated time run faster than the
    wall clock (speed=50 plays a 10 s call in 0.2 s); ``noise=False`` leaves
    out the plumbing events (see :func:`~telephony.simulator.scenarios.is_noise`);
    ``ring_limit`` caps how many free members a ring-all queue rings at once."""

    def __init__(self, *, username: str = "screenpop", secret: str = "screenpop", host: str = "127.0.0.1",
                 port: int = 0, agents: Mapping[str, Agent] | Iterable[Agent] | None = None,
                 queues: Mapping[str, Queue] | Iterable[Queue] | None = None, seed: int | None = None,
                 speed: float = 1.0, noise: bool = True, ring_limit: int = 4):
        self.agents = agents_by_id(agents if agents is not None else default_agents())
        self.queues = queues_by_name(queues if queues is not None else default_queues())
        for queue in self.queues.values():
            missing = [m for m in queue.members if m not in self.agents]
            if missing:
                raise ValueError(f"queue {queue.name}: unknown member(s) {', '.join(missing)}")
        self._members_of = membership(self.queues)
        self.clock = SimClock(speed)
        self.noise, self.ring_limit = noise, ring_limit
        self.rng = random.Random(seed)
        self.pbx = PbxState(self.agents, self.queues, ids=IdAllocator(seed), login_time=self.clock.now() - 3600)
        self.server = AmiServer(host=host, port=port, username=username, secret=secret, on_login=self._logged_in)
        self.server.add_list("CoreShowChannels", "Channels will follow", "CoreShowChannelsComplete",
                             lambda action_id, headers: self.pbx.core_show_channels(action_id, self.clock.now()))
        self.server.add_list("QueueStatus", "Queue status will follow", "QueueStatusComplete",
                             lambda action_id, headers: self.pbx.queue_status(
                                 action_id, self.clock.now(), headers.get("queue"), headers.get("member")))
        self.playback = Playback(self.clock, self._send)
        self.events_sent = 0
        self.calls_placed = 0
        self.plans: OrderedDict[str, CallPlan] = OrderedDict()  # recent calls by linkedid, events dropped
        self._hooks: list[EventHook] = []
        self._cel: CelRecorder | None = None
        self._cel_sink: Callable[[list[dict]], None] | None = None

    @property
    def port(self) -> int:
        return self.server.port

    async def start(self) -> int:
        """Listen (port 0 picks a free one); returns the bound port."""
        port = await self.server.start()
        self.playback.start()
        return port

    async def stop(self) -> None:
        await self.playback.stop()
        await self.server.stop()

    def on_event_sent(self, hook: EventHook) -> Callable[[], None]:
        """Call ``hook(event, sent_at)`` for every event sent; ``sent_at`` is
        ``time.time()`` just before the bytes are handed to the clients'
        sockets (a latency measured from it can only be overstated, by the
        microseconds of the write).  Returns a function that removes the hook."""
        self._hooks.append(hook)
        return lambda: self._hooks.remove(hook)

    def record_cel(self, sink: Callable[[list[dict]], None]) -> None:
        """From now on, the CEL rows Asterisk would write for every event go
        to ``sink`` (see :mod:`.cel`), also while no AMI client is connected."""
        self._cel, self._cel_sink = CelRecorder(), sink

    # --- calls ------------------------------------------------------------------
    def prepare_call(self, scenario: str, caller_number: str | None, caller_name: str | None, *,
                     start: float | None = None, **options: object) -> tuple[CallPlan, float]:
        """Build a call starting at simulated time ``start`` (default now) and
        reserve its agents.  Without ``agents``, free ones are chosen and the
        scenario may be downgraded (see :func:`~telephony.simulator.traffic.staff`).
        ``wrapup`` (seconds) overrides the answering agents' after-call work,
        during which they are not booked again."""
        start = max(start or 0.0, self.clock.now())
        queue = options.pop("queue", None)
        wrapup = options.pop("wrapup", None)
        if "agents" not in options:
            request = staff(scenario, self.pbx, start, self.rng, queue=queue,  # type: ignore[arg-type]
                            ring_limit=self.ring_limit, like_captures=bool(options.pop("like_captures", True)))
            scenario, queue = request.scenario, request.queue
            options.setdefault("agents", list(request.agents))
            if request.target is not None:
                options.setdefault("target", request.target)
            for key, value in request.options.items():
                options.setdefault(key, value)
        else:
            options.pop("like_captures", None)
        plan = plan_call(scenario, self.pbx.ids, caller_number, caller_name, start_ts=start, queue=queue,
                         directory=self.agents, queues=self.queues, members_of=self._members_of,
                         rng=random.Random(self.rng.random()),
                         **options)  # type: ignore[arg-type]
        after = {agent: float(wrapup) if wrapup is not None else  # type: ignore[arg-type]
                 getattr(self.agents.get(agent), "wrapup_seconds", 0.0) for agent in plan.talked}
        self.pbx.reserve(plan.busy, start, after)
        self.plans[plan.linkedid] = replace(plan, events=[])  # what was played, without the bulk
        while len(self.plans) > 10_000:
            self.plans.popitem(last=False)
        self.calls_placed += 1
        return plan, start

    async def place_call(self, scenario: str, caller_number: str | None, caller_name: str | None,
                         **options: object) -> str:
        """Play one call in (simulated) real time to every logged-in client;
        returns its Linkedid once its last event has been sent.

        Options: ``speed`` (sets the simulator's clock speed), ``queue``,
        ``agents``, ``target`` and the scenario options of
        :func:`~telephony.simulator.scenarios.plan_call`."""
        speed = options.pop("speed", None)
        if speed is not None:
            self.set_speed(float(speed))  # type: ignore[arg-type]
        plan, start = self.prepare_call(scenario, caller_number, caller_name, **options)
        await self.playback.schedule(start, plan.events)
        return plan.linkedid

    def set_speed(self, speed: float) -> None:
        self.clock.set_speed(speed)
        self.playback.nudge()

    async def run_traffic(self, calls_per_second: float, callers: Sequence[tuple[str | None, str | None]],
                          duration: float | None = None, scenarios: Mapping[str, float] | None = None,
                          speed: float = 1.0, *, arrivals: str = "uniform", wait: bool = True,
                          profile: CenterProfile | None = None) -> int:
        """Place calls at ``calls_per_second`` of simulated time for ``duration``
        wall seconds (None: until cancelled), callers drawn from ``callers``,
        scenarios by weight.  With ``wait``, returns once every call placed has
        ended.  Returns the number of calls placed.

        ``profile`` plays a real center's people instead of the captures'
        timings (see :mod:`.center`): its mix, bursts and per-call draws."""
        self.set_speed(speed)
        traffic = self.traffic(calls_per_second, callers, scenarios, arrivals=arrivals, profile=profile)
        deadline = None if duration is None else time.monotonic() + duration
        arrival = self.clock.now()
        in_flight: set[asyncio.Future] = set()
        placed = 0
        while True:
            delay = self.clock.wall_delay(arrival)
            if deadline is not None:
                if time.monotonic() + max(delay, 0.0) >= deadline:
                    break
            if delay > 0:
                await asyncio.sleep(delay)
            plan, start = self.plan_next(traffic, arrival, profile)
            done = self.playback.schedule(start, plan.events)
            in_flight.add(done)
            done.add_done_callback(in_flight.discard)
            placed += 1
            arrival += traffic.gap()
        if wait and in_flight:
            await asyncio.gather(*list(in_flight), return_exceptions=True)
        return placed

    def traffic(self, calls_per_second: float, callers: Sequence[tuple[str | None, str | None]],
                scenarios: Mapping[str, float] | None = None, *, arrivals: str = "uniform",
                profile: CenterProfile | None = None) -> TrafficGenerator:
        """The arrivals :meth:`run_traffic` plays (a profile brings its mix and bursts)."""
        return TrafficGenerator(calls_per_second, callers, scenarios or (profile.mix if profile else None),
                                rng=random.Random(self.rng.random()), arrivals=arrivals,
                                bursts=profile.bursts if profile else None)

    def plan_next(self, traffic: TrafficGenerator, arrival: float,
                  profile: CenterProfile | None = None) -> tuple[CallPlan, float]:
        """Plan and book the call of ``traffic`` arriving at simulated time
        ``arrival``; nothing is sent (so a test can plan thousands at once)."""
        scenario, number, name = traffic.next_call()
        if profile is None:
            return self.prepare_call(scenario, number, name, start=arrival, like_captures=False)
        draw = profile.draw(self.rng)
        request = staff_patiently(scenario, self.pbx, max(arrival, self.clock.now()), self.rng, draw)
        options = dict(request.options)
        if request.target is not None:
            options["target"] = request.target
        return self.prepare_call(request.scenario, number, name, start=arrival, queue=request.queue,
                                 agents=list(request.agents), wrapup=draw.wrapup, **options)

    # --- sending ----------------------------------------------------------------
    def _send(self, batch: list[Event]) -> Awaitable[None] | None:
        now = self.clock.now()
        out: list[tuple[str, bytes]] = []
        sent: list[Event] = []
        cel: list[dict] = []
        for event in batch:
            self.pbx.apply(event, now)
            if self._cel is not None:
                cel += self._cel.feed(event)
            if not self.noise and is_noise(event):
                continue
            try:
                out.append((str(event.get("Privilege", "")), fast_encode(event)))
            except ValueError:  # a configured name with a line break: refuse it, keep the PBX going
                log.error("simulator: cannot encode %s event, dropped", event.get("Event"))
                continue
            sent.append(event)
        if cel and self._cel_sink is not None:
            try:
                self._cel_sink(cel)
            except Exception:  # the CEL database's trouble must not stop the PBX
                log.exception("simulator: CEL sink failed")
        if not out:
            return None
        # Read before the write, not after: on a busy machine this process
        # can lose the CPU between the two, and a pop then arrived (measured
        # by the same clock) 2 ms "before" its event was sent.
        sent_at = time.time()
        behind = []
        try:
            behind = self.server.broadcast(out)
        except Exception:  # one broken client must not stop the PBX
            log.exception("simulator: broadcast failed")
        self.events_sent += len(sent)
        if self._hooks:
            for event in sent:
                for hook in list(self._hooks):
                    hook(event, sent_at)
        if behind:
            return asyncio.gather(*(session.catch_up() for session in behind))
        return None

    def _logged_in(self, session: Session) -> None:
        """Asterisk tells every security listener about a login."""
        if not self.noise:
            return
        now = self.clock.now()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}+0000"
        local = session.writer.get_extra_info("sockname") or ("127.0.0.1", self.port)
        peer = session.peer or ("127.0.0.1", 0)
        event = {"Event": "SuccessfulAuth", "Privilege": "security,all", "Timestamp": f"{now:.6f}",
                 "EventTV": stamp, "Severity": "Informational", "Service": "AMI", "EventVersion": 1,
                 "AccountID": self.server.username, "SessionID": f"0x{id(session):x}",
                 "LocalAddress": f"IPV4/TCP/{local[0]}/{local[1]}", "RemoteAddress": f"IPV4/TCP/{peer[0]}/{peer[1]}",
                 "UsingPassword": 0, "SessionTV": stamp}
        self.server.broadcast([("security,all", encode_message(event))])
