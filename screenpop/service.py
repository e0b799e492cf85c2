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
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from screenpop.config import Settings
from screenpop.gc_tuning import GcTuning
from screenpop.metrics import ServiceMetrics
from telephony.events import iso_utc

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Health:
    """What /healthz reports: each dependency and whether the node can pop."""

    parts: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(part.get("ok", False) for part in self.parts.values())


class ScreenpopService:
    """One node.  Embedded (no ``[bus] redis_url``): it ingests from start to
    stop.  In a cluster: it serves sockets and HTTP always, and ingests while
    it holds the ingester lease (see :mod:`screenpop.cluster`).

    Healthy means ready (``/healthz``): the node says OK only once it can
    serve logins and pops, not when its port opens.  ``start(ready=False)``
    lets the caller finish its own setup first (the demo creates its users)
    and call :meth:`mark_ready`; a stopping node is not ready any more."""

    def __init__(self, settings: Settings, *, ami: bool = True):
        self.settings = settings
        self.with_ami = ami
        self.metrics = ServiceMetrics()
        self.interactions = None  # InteractionLog: store + writer on one engine
        self.accounts = None
        self.lookup = None
        self.hub = None
        self.bus = None
        self.mirror = None  # the supervisors' messages as the bus carried them
        self.live = None  # LiveView: calls in progress and supervisors' view, from this node or Redis
        self.livecalls = None  # the live call state in Redis (cluster only)
        self.ingest = None  # the AMI link, tracker, orchestrator, supervision: while this node ingests
        self.election = None
        self.app: web.Application | None = None
        self.url: str | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task] = []
        self.gc_tuning = GcTuning()
        self._redis = self._lease_redis = None
        self._ingest_lock = asyncio.Lock()
        self.ready = False  # start() done (and the caller's setup: mark_ready), not stopping
        self._stopping = False

    # the ingesting parts, for callers that know they run on the ingester
    @property
    def orchestrator(self):
        return self.ingest.orchestrator if self.ingest is not None else None

    @property
    def supervision(self):
        return self.ingest.supervision if self.ingest is not None else None

    @property
    def connection(self):
        return self.ingest.connection if self.ingest is not None else None

    @property
    def feed(self):
        return self.ingest.feed if self.ingest is not None else None

    # ------------------------------------------------------------------ parts

    async def start(self, *, ready: bool = True) -> str:
        """Bring every part up; returns the URL the web app listens on.

        ``ready=False``: the node is up but ``/healthz`` says "starting" until
        :meth:`mark_ready` (for a caller that still has to create what logins
        need, as the demo its users)."""
        from agent_ui.app import build_app
        from agent_ui.auth import policies
        from agent_ui.hub import Hub
        from customer_lookup.plugin import build_lookup
        from screenpop.auth.store import AccountStore
        from screenpop.cluster.views import LiveView, SupervisorMirror
        from screenpop.interactions.service import InteractionLog
        from screenpop.security.plugin import SECURITY

        s = self.settings
        self.interactions = await InteractionLog.from_settings(s)
        writer = self.interactions.writer
        self.metrics.bind_gauge(self.metrics.writes_queued, lambda: writer.stats.pending)
        lockout, sessions = policies(s.auth)
        self.accounts = AccountStore(self.interactions.engine, lockout=lockout, sessions=sessions)
        if s.bus.redis_url:
            from screenpop.cluster.clients import shared_client

            self._redis = shared_client(s.bus.redis_url)
        self.lookup = await build_lookup(s, redis=self._redis, history=self.interactions.store.history)
        await self.lookup.start()
        self.live = LiveView(self)
        self.mirror = SupervisorMirror()
        self.hub = Hub(replay=self._replay_pops, supervisor_replay=self.live.supervisor_replay)
        self.metrics.bind_gauge(self.metrics.ws_connections, lambda: len(self.hub))
        await self._start_bus()
        self.app = build_app(self)
        audit = self.app[SECURITY].audit
        if audit is not None:
            self.metrics.bind_gauge(self.metrics.audit_pending, lambda: audit.pending)
            self.metrics.bind_gauge(self.metrics.audit_dropped, lambda: audit.stats.dropped)
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, s.web.host, s.web.port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # port 0 picks a free one
        self.url = f"http://{s.web.host}:{port}"
        if self._redis is None:
            await self._promote()
        elif self.with_ami:
            self._start_election()
        # Everything built so far (modules, the phone index, pools) lives as long
        # as the node: out of the cyclic GC's way, and so is what lives on
        # (sockets, calls in progress), or each full collection walks it all
        # and stalls every pop (measured: 265 ms to 1.4 s per pass).
        self.gc_tuning.start()
        self.gc_tuning.bind(self.metrics)
        self._tasks.append(asyncio.create_task(self.gc_tuning.run(), name="gc-tuning"))
        log.info("screenpop up node=%s url=%s ami=%s:%s storage=%s bus=%s", self.bus.node_id, self.url, s.ami.host,
                 s.ami.port, _safe_dsn(s.storage.dsn), "redis" if self._redis is not None else "in-process")
        if ready:
            self.mark_ready()
        return self.url

    def mark_ready(self) -> None:
        """Everything logins and pops need exists: ``/healthz`` may say OK
        (once its dependencies do)."""
        if not self._stopping:
            self.ready = True
            log.info("screenpop ready url=%s", self.url)

    async def _start_bus(self) -> None:
        from screenpop.cluster.bus import AGENTS, COMMANDS, SUPERVISORS, LocalBus, RedisBus
        from screenpop.cluster.livecalls import LiveCalls

        b = self.settings.bus
        if self._redis is None:
            self.bus = LocalBus()
        else:
            self.bus = RedisBus(b.redis_url, node_id=b.node_id or None, prefix=self.settings.lookup.redis_prefix,
                                maxlen=b.stream_maxlen)
            self.livecalls = LiveCalls(self._redis, self.settings.lookup.redis_prefix)
        self.bus.subscribe(AGENTS, self._to_agent)
        self.bus.subscribe(SUPERVISORS, self._to_supervisors)
        self.bus.subscribe(COMMANDS, self._command)
        self.metrics.bind_gauge(self.metrics.bus_connected, lambda: 1.0 if self.bus.connected else 0.0)
        self.metrics.bind_gauge(self.metrics.bus_backlog, lambda: self.bus.stats.backlog)
        await self.bus.start()
        if self._redis is not None:
            try:
                self.mirror.seed(await self.bus.latest(SUPERVISORS))
            except Exception as exc:  # Redis away at start: the mirror fills as messages come
                log.warning("supervisors' state not read at start error=%s", f"{type(exc).__name__}: {exc}")

    async def _replay_pops(self, agent_id: str) -> list[dict[str, Any]]:
        """A reconnecting browser's pops, masked like the live ones ([privacy])."""
        from screenpop.security.plugin import SECURITY

        return self.app[SECURITY].privacy.view_all(await self.live.pops_for(agent_id), "agent")

    def _to_agent(self, envelope: dict[str, Any]) -> int:
        """An agent's message from the bus to its sockets on this node; a pop
        one of them took is audited here (screenpop.security.delivery)."""
        from screenpop.security.delivery import record_delivered
        from screenpop.security.plugin import SECURITY

        agent_id, message = str(envelope["agent"]), envelope["message"]
        sent = self.hub.send_to_agent(agent_id, message)
        if sent and self.app is not None and isinstance(message, dict) and message.get("type") == "pop":
            record_delivered(self.app[SECURITY].audit, agent_id, message, len(self.hub.connections_of(agent_id)))
        return sent

    def _to_supervisors(self, message: dict[str, Any]) -> None:
        if isinstance(message, dict) and message.get("type") == "pbx":
            self.hub.broadcast(message)  # the PBX link's state: every screen, agents' too
            return
        self.mirror.update(message)
        self.hub.send_to_supervisors(message)

    def _command(self, command: dict[str, Any]) -> None:
        task = asyncio.create_task(self.live.apply_command(command))
        self._tasks.append(task)
        task.add_done_callback(self._command_done)

    def _command_done(self, task: asyncio.Task) -> None:
        if task in self._tasks:
            self._tasks.remove(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("bus command failed error=%s", task.exception())

    def _start_election(self) -> None:
        from screenpop.cluster.clients import lease_client
        from screenpop.cluster.election import Election
        from screenpop.cluster.lease import Lease

        b = self.settings.bus
        self._lease_redis = lease_client(b.redis_url)  # never queues behind the lookups (screenpop.cluster.clients)
        lease = Lease(self._lease_redis, f"{self.settings.lookup.redis_prefix}ingester", self.bus.node_id, b.lease_seconds)
        self.election = Election(lease, promote=self._promote, demote=self._demote,
                                 healthy=lambda: self.ingest is None or self.ingest.ami_state in ("connected", "off"),
                                 grace=b.ami_grace_seconds,
                                 retaken=lambda: self.livecalls.rewrite_all())
        self.metrics.bind_gauge(self.metrics.ingesting, lambda: 1.0 if self.ingest is not None else 0.0)
        self._tasks.append(asyncio.create_task(self.election.run(), name="ingester-election"))

    async def _promote(self) -> None:
        """Become the ingester: take up the calls the last one left, then connect to Asterisk."""
        from screenpop.ingest import BusDelivery, Ingest
        from screenpop.security.delivery import GuardedDelivery
        from screenpop.security.plugin import SECURITY

        async with self._ingest_lock:
            if self.ingest is not None:
                return
            restored: list[dict[str, Any]] = []
            on_change = None
            if self.livecalls is not None:
                restored = await self.livecalls.all()
                self.livecalls.adopt(restored)
                self.livecalls.start()
                on_change = lambda call: self.livecalls.changed(call.to_state())  # noqa: E731
            # Every pop is audited (who was shown which customer) and masked by the
            # [privacy] rules once, here, before the bus carries it to any node.
            security = self.app[SECURITY]
            delivery = GuardedDelivery(BusDelivery(self.bus), security.audit, security.privacy)
            ingest = Ingest(self.settings, lookup=self.lookup, delivery=delivery,
                            interactions=self.interactions, metrics=self.metrics, with_ami=self.with_ami,
                            on_change=on_change)
            await ingest.start(restored)
            self.ingest = ingest
            if self.livecalls is not None:
                calls = ingest.orchestrator.calls
                self.livecalls.current = lambda: [c.to_state() for c in list(calls.values()) if not c.ended]
            if ingest.connection is not None:
                self.metrics.bind_gauge(self.metrics.ami_connected,
                                        lambda: 1.0 if self.ingest is not None and self.ingest.ami_state == "connected" else 0.0)
                self.metrics.bind_gauge(self.metrics.ami_outage, lambda: self.ingest.connection.outage_seconds
                                        if self.ingest is not None and self.ingest.connection is not None else 0.0)
            log.info("ingesting node=%s calls_taken_up=%d", self.bus.node_id, len(restored))

    async def _demote(self, reason: str) -> None:
        async with self._ingest_lock:
            ingest, self.ingest = self.ingest, None
            if ingest is None:
                return
            log.log(logging.INFO if reason == "stopping" else logging.WARNING, "ingesting stopped node=%s reason=%s",
                    self.bus.node_id, reason)
            await ingest.stop()
            if self.livecalls is not None:
                await self.livecalls.stop()

    async def stop(self) -> None:
        self._stopping, self.ready = True, False  # a load balancer takes the node out first
        # The election loop stops first: resigning while it runs lets it win the
        # lease straight back (and promote a stopping node).
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.election is not None:
            await self.election.resign()
        await self._demote("stopping")
        if self._runner is not None:
            await self._runner.cleanup()
        if self.bus is not None:
            await self.bus.stop()
        if self.lookup is not None:
            await self.lookup.close()
        if self.interactions is not None:
            await self.interactions.close()  # the writer flushes (or spills) before the engine goes
        for client in (self._redis, self._lease_redis):
            if client is not None:
                await client.aclose()
        log.info("screenpop stopped")

    # ------------------------------------------------------------------ state

    async def health(self) -> Health:
        """Every dependency, and ``node``: started (the store migrated, the
        caller's setup done) and not stopping.  A node that ingests can pop
        only with its AMI link up; an embedded node that should ingest and
        does not yet cannot pop at all."""
        health = Health()
        health.parts["node"] = {"ok": self.ready, "state": "ready" if self.ready else ("stopping" if self._stopping else "starting")}
        if self.ingest is not None and self.ingest.connection is not None:
            state = self.ingest.ami_state
            health.parts["ami"] = {"ok": state == "connected", "state": state}
            connection = self.ingest.connection
            if connection.down_since is not None:
                health.parts["ami"].update(down_since=iso_utc(connection.down_since),
                                           outage_seconds=round(connection.outage_seconds, 1))
            if self.ingest.reconciliation is not None:
                r = self.ingest.reconciliation
                health.parts["reconcile"] = {"ok": True, "passes": r.passes, "pending_calls": len(r.pending), **r.totals}
        elif self.with_ami and self._redis is None:
            health.parts["ami"] = {"ok": False, "state": "not started"}
        if self.interactions is not None:
            stats = self.interactions.writer.stats
            health.parts["storage"] = {"ok": not stats.outage, "queued_writes": stats.pending, "spilled": stats.spilled}
        if self._redis is not None:
            try:
                await asyncio.wait_for(self._redis.ping(), 1.0)
                health.parts["redis"] = {"ok": True}
            except Exception as exc:
                health.parts["redis"] = {"ok": False, "error": type(exc).__name__}
            health.parts["bus"] = self.bus.status()
            health.parts["cluster"] = self._cluster_status()
        if self.hub is not None:
            health.parts["websockets"] = {"ok": True, "connections": len(self.hub)}
        return health

    def _cluster_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": True, "node": self.bus.node_id, "ingesting": self.ingest is not None}
        if self.election is not None:
            out.update(lease_reachable=self.election.redis_ok, terms=self.election.terms)
            if self.election.error:
                out["error"] = self.election.error
        if self.livecalls is not None and not self.livecalls.ok:
            out["live_state"] = "behind (Redis away)"
        return out


def _safe_dsn(dsn: str) -> str:
    """The DSN without its password, for logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(dsn).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable dsn>"
