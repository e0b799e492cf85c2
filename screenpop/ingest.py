"""What the ingesting node runs: the AMI link, the call tracker, the
orchestrator and the supervisors' view of queues and agents.

An embedded node ingests from start to stop.  In a cluster the node that
holds the ingester lease starts one of these when it wins the lease (taking
up the calls the last ingester left in the live state) and stops it when
it loses the lease; every other node only serves sockets and HTTP.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from screenpop.cluster.bus import AGENTS, EVENTS, SUPERVISORS
from screenpop.config import Settings
from screenpop.metrics import ServiceMetrics
from telephony.events import iso_utc

log = logging.getLogger(__name__)


class BusDelivery:
    """The orchestrator's and the supervisors' ``Delivery``: everything goes
    over the bus, whose handlers (on this node and the others) hand it to
    their hub."""

    def __init__(self, bus):
        self.bus = bus

    def send_to_agent(self, agent_id: str, message: dict[str, Any]) -> int:
        self.bus.publish(AGENTS, {"agent": agent_id, "message": message})
        return 1

    def send_to_supervisors(self, message: dict[str, Any]) -> int:
        self.bus.publish(SUPERVISORS, message, key=supervisor_key(message))
        return 1


def supervisor_key(message: dict[str, Any]) -> str | None:
    """Queue and agent messages replace the last one of their queue or agent."""
    if message.get("type") == "queue":
        return f"queue:{message.get('queue')}"
    if message.get("type") == "agent":
        return f"agent:{message.get('agent_id')}"
    return None


class Ingest:
    """``delivery``: a :class:`BusDelivery`, possibly wrapped (audit, masking); its ``bus`` carries call events too."""

    def __init__(self, settings: Settings, *, lookup, delivery, interactions, metrics: ServiceMetrics,
                 with_ami: bool = True, on_change: Callable | None = None):
        self.settings = settings
        self.lookup = lookup
        self.delivery = delivery
        self.interactions = interactions
        self.metrics = metrics
        self.with_ami = with_ami
        self.on_change = on_change
        self.orchestrator = None
        self.supervision = None
        self.connection = None
        self.feed = None
        self._tasks: list[asyncio.Task] = []
        self._reconciled = False
        self.reconciliation = None  # screenpop.reconcile: with [reconcile] dsn
        self._down_at: float | None = None  # when the link was lost (LinkDown), until the resync after it
        self._first_resync = True

    async def start(self, restored: list[dict[str, Any]] = ()) -> None:
        from customer_lookup.display import CardDisplay
        from screenpop.orchestrator import Orchestrator
        from screenpop.supervision.plugin import Supervision
        from telephony.agents import AgentResolver

        s = self.settings
        writer = self.interactions.writer
        display = CardDisplay.from_settings(s)
        self.supervision = Supervision(s.supervision, self.delivery, engine=self.interactions.engine, writer=writer,
                                       agents=AgentResolver(s.agents.patterns), phone=display.phone)
        await self.supervision.start()
        self.orchestrator = Orchestrator(self.lookup, self.delivery, writer, metrics=self.metrics,
                                         default_timing=s.pop.timing,
                                         pop_timing={queue: "answer" for queue in s.pop.on_answer_queues},
                                         on_card=self.supervision.on_card, on_change=self.on_change,
                                         display=display)
        if restored:
            count = self.orchestrator.restore(list(restored))
            log.info("ingest took up calls in progress count=%d", count)
        self._reconciled = not restored
        if self.with_ami:
            self._start_telephony()

    def _start_telephony(self) -> None:
        from telephony.agents import AgentResolver
        from telephony.connection import AmiConnection
        from telephony.feed import CallFeed
        from telephony.tracker import CallTracker

        from telephony.link import LinkDown

        s = self.settings
        agents = AgentResolver(s.agents.patterns)
        tracker = CallTracker(agents, honor_presentation=s.privacy.honor_presentation,
                              keep_restricted=s.privacy.keep_restricted_numbers)
        self.connection = AmiConnection(s.ami, wanted_events=tracker.events_read | self.supervision.events_read)
        bus = self.delivery.bus
        if s.reconcile.dsn:
            from screenpop.reconcile.plugin import Reconciliation

            self.reconciliation = Reconciliation(s.reconcile, self.interactions.store, self.interactions.writer,
                                                 agents=agents, on_pass=self._count_reconciled)
            self.reconciliation.start()

        def observe(item) -> None:
            if isinstance(item, LinkDown):
                self._down_at = time.time()
            self.supervision.on_ami(item)

        def deliver(event) -> None:
            self.metrics.call_events.labels(event.type).inc()
            self.orchestrator.handle(event)
            self.supervision.on_call_event(event)
            if bus.read(EVENTS):  # embedded: nobody reads call events off the bus, so none is built
                bus.publish(EVENTS, event.to_dict())

        def resynced(live_call_ids: set[str]) -> None:
            if not self._reconciled:  # only the first resync after a takeover
                self._reconciled = True
                self.orchestrator.reconcile(live_call_ids)
            if self.reconciliation is not None:
                if self._down_at is not None:  # what went by during the outage, from Asterisk's records
                    self.reconciliation.outage(self._down_at, time.time())
                elif self._first_resync:  # what went by while no node ingested
                    self._spawn(self.reconciliation.started(), "reconcile-start")
            self._down_at, self._first_resync = None, False

        self.feed = CallFeed(self.connection.queue, tracker, deliver, observe=observe, on_resync=resynced)
        self._tasks += [asyncio.create_task(self.connection.run(), name="ami-connection"),
                        asyncio.create_task(self.feed.run(), name="call-feed"),
                        asyncio.create_task(self._tell_link_state(), name="pbx-link-state")]

    def _spawn(self, coro, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    def _count_reconciled(self, result) -> None:
        self.metrics.calls_reconciled.labels("created").inc(len(result.created))
        self.metrics.calls_reconciled.labels("corrected").inc(len(result.corrected))
        if result.written and self.supervision is not None:
            self.supervision.figures_changed()  # the day's figures include them

    async def _tell_link_state(self, every: float = 1.0, repeat: float = 5.0) -> None:
        """Agents and supervisors see when the PBX link is down ("PBX link
        down since 14:51:13"): a ``pbx`` message to every screen when it goes
        down or comes back, repeated while down so screens opened meanwhile
        learn it too."""
        told: tuple[str, float | None] | None = None
        last = 0.0
        while True:
            connection = self.connection
            down_since = connection.down_since if connection is not None else None
            state = "down" if down_since is not None else "up"
            now = time.monotonic()
            if told is None and state == "up":
                told = (state, None)  # up from the start: nothing to tell
            elif (state, down_since) != told or (state == "down" and now - last >= repeat):
                message: dict[str, Any] = {"type": "pbx", "state": state}
                if down_since is not None:
                    message["since"] = iso_utc(down_since)
                    message["outage_seconds"] = round(time.time() - down_since, 1)
                try:
                    self.delivery.send_to_supervisors(message)
                except Exception:
                    log.exception("pbx link state not delivered")
                told, last = (state, down_since), now
            await asyncio.sleep(every)

    @property
    def ami_state(self) -> str:
        return self.connection.state if self.connection is not None else "off"

    async def stop(self) -> None:
        if self.connection is not None:
            await self.connection.stop()
        if self.reconciliation is not None:
            await self.reconciliation.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.orchestrator is not None:
            await self.orchestrator.drain()
        if self.supervision is not None:
            await self.supervision.stop()
