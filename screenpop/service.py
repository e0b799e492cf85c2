"""One screenpop node, built from :class:`~screenpop.config.Settings`.

This is the wiring and nothing else: every part is made by its own package
and only connected here, in the order the data flows (AMI link → tracker →
orchestrator → hub and interaction log; lookup on the side; the web app in
front).  ``start()`` brings the node up, ``stop()`` takes it down in the
reverse order so nothing in flight is lost (the interaction writer flushes
last).
"""
from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from screenpop.config import Settings
from screenpop.metrics import ServiceMetrics

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Health:
    """What /healthz reports: each dependency and whether the node can pop."""

    parts: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(part.get("ok", False) for part in self.parts.values())


class ScreenpopService:
    def __init__(self, settings: Settings, *, ami: bool = True):
        self.settings = settings
        self.with_ami = ami
        self.metrics = ServiceMetrics()
        self.interactions = None  # InteractionLog: store + writer on one engine
        self.accounts = None
        self.lookup = None
        self.hub = None
        self.orchestrator = None
        self.supervision = None  # queue and agent state for supervisors
        self.connection = None
        self.feed = None
        self.app: web.Application | None = None
        self.url: str | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task] = []
        self._redis = None

    # ------------------------------------------------------------------ parts

    async def start(self) -> str:
        """Bring every part up; returns the URL the web app listens on."""
        from agent_ui.app import build_app
        from agent_ui.auth import policies
        from agent_ui.hub import Hub
        from customer_lookup.plugin import build_lookup
        from screenpop.auth.store import AccountStore
        from screenpop.interactions.service import InteractionLog
        from screenpop.orchestrator import Orchestrator
        from screenpop.supervision.plugin import Supervision
        from telephony.agents import AgentResolver

        s = self.settings
        self.interactions = await InteractionLog.from_settings(s)
        writer = self.interactions.writer
        self.metrics.bind_gauge(self.metrics.writes_queued, lambda: writer.stats.pending)
        lockout, sessions = policies(s.auth)
        self.accounts = AccountStore(self.interactions.engine, lockout=lockout, sessions=sessions)
        if s.bus.redis_url:
            import redis.asyncio as aioredis

            self._redis = aioredis.from_url(s.bus.redis_url)
        self.lookup = await build_lookup(s, redis=self._redis, history=self.interactions.store.history)
        await self.lookup.start()
        self.hub = Hub(replay=lambda agent_id: self.orchestrator.pops_for(agent_id),
                       supervisor_replay=lambda: self.supervision.replay())
        self.metrics.bind_gauge(self.metrics.ws_connections, lambda: len(self.hub))
        self.supervision = Supervision(s.supervision, self.hub, engine=self.interactions.engine, writer=writer,
                                       agents=AgentResolver(s.agents.patterns))
        await self.supervision.start()
        self.orchestrator = Orchestrator(self.lookup, self.hub, writer, metrics=self.metrics,
                                         default_timing=s.pop.timing,
                                         pop_timing={queue: "answer" for queue in s.pop.on_answer_queues},
                                         on_card=self.supervision.on_card)
        self.app = build_app(self)
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, s.web.host, s.web.port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # port 0 picks a free one
        self.url = f"http://{s.web.host}:{port}"
        if self.with_ami:
            self._start_telephony()
        # Everything built so far (modules, the phone index, pools) lives as long
        # as the node: out of the cyclic GC's way, or each full collection
        # walks it all and stalls every pop (measured: 1-1.4 s per pass).
        gc.collect()
        gc.freeze()
        log.info("screenpop up url=%s ami=%s:%s storage=%s bus=%s", self.url, s.ami.host, s.ami.port,
                 _safe_dsn(s.storage.dsn), "redis" if s.bus.redis_url else "in-process")
        return self.url

    def _start_telephony(self) -> None:
        from telephony.agents import AgentResolver
        from telephony.connection import AmiConnection
        from telephony.feed import CallFeed
        from telephony.tracker import CallTracker

        self.connection = AmiConnection(self.settings.ami)
        self.metrics.bind_gauge(self.metrics.ami_connected, lambda: 1.0 if self.connection.state == "connected" else 0.0)
        tracker = CallTracker(AgentResolver(self.settings.agents.patterns))

        def deliver(event) -> None:
            self.metrics.call_events.labels(event.type).inc()
            self.orchestrator.handle(event)
            self.supervision.on_call_event(event)

        self.feed = CallFeed(self.connection.queue, tracker, deliver, observe=self.supervision.on_ami)
        self._tasks += [asyncio.create_task(self.connection.run(), name="ami-connection"),
                        asyncio.create_task(self.feed.run(), name="call-feed")]

    async def stop(self) -> None:
        if self.connection is not None:
            await self.connection.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.orchestrator is not None:
            await self.orchestrator.drain()
        if self.supervision is not None:
            await self.supervision.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.lookup is not None:
            await self.lookup.close()
        if self.interactions is not None:
            await self.interactions.close()  # the writer flushes (or spills) before the engine goes
        if self._redis is not None:
            await self._redis.aclose()
        log.info("screenpop stopped")

    # ------------------------------------------------------------------ state

    async def health(self) -> Health:
        health = Health()
        if self.connection is not None:
            health.parts["ami"] = {"ok": self.connection.state == "connected", "state": self.connection.state}
        if self.interactions is not None:
            stats = self.interactions.writer.stats
            health.parts["storage"] = {"ok": not stats.outage, "queued_writes": stats.pending, "spilled": stats.spilled}
        if self._redis is not None:
            try:
                await asyncio.wait_for(self._redis.ping(), 1.0)
                health.parts["redis"] = {"ok": True}
            except Exception as exc:
                health.parts["redis"] = {"ok": False, "error": type(exc).__name__}
        if self.hub is not None:
            health.parts["websockets"] = {"ok": True, "connections": len(self.hub)}
        return health


def _safe_dsn(dsn: str) -> str:
    """The DSN without its password, for logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(dsn).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable dsn>"
