"""Prometheus metrics of one screenpop process (served at ``/metrics``).

Counters and the pop-latency histogram are updated where things happen;
gauges that describe live state (AMI link, sockets, queued writes) are read
from their owners at scrape time, so no component keeps a second copy."""
from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST  # noqa: F401  (re-exported for the HTTP edge)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.pops_sent = Counter("screenpop_pops_sent_total", "Pops delivered to agents", registry=r)
        self.retracts_sent = Counter("screenpop_retracts_sent_total", "Pops retracted", ["reason"], registry=r)
        self.card_updates = Counter("screenpop_card_updates_total", "Late card updates pushed to open pops", registry=r)
        self.pop_latency = Histogram(
            "screenpop_pop_latency_seconds", "From the call event's AMI timestamp to the pop handed to delivery", buckets=LATENCY_BUCKETS, registry=r
        )
        self.lookups = Counter("screenpop_lookups_total", "Source fetches by result", ["source", "result"], registry=r)
        self.call_events = Counter("screenpop_call_events_total", "Call events from the tracker", ["type"], registry=r)
        self.ami_connected = Gauge("screenpop_ami_connected", "1 when the AMI link is logged in", registry=r)
        self.ami_outage = Gauge("screenpop_ami_outage_seconds", "How long the AMI link has been down (0 while up)", registry=r)
        self.calls_reconciled = Counter("screenpop_calls_reconciled_total",
                                        "Calls the log gained (created) or had corrected from Asterisk's own records", ["action"], registry=r)
        self.ws_connections = Gauge("screenpop_websocket_connections", "Open agent and supervisor sockets", registry=r)
        self.ingesting = Gauge("screenpop_ingesting", "1 while this node holds the AMI link (the ingester)", registry=r)
        self.bus_connected = Gauge("screenpop_bus_connected", "1 when the bus to the other nodes works (always, embedded)", registry=r)
        self.bus_backlog = Gauge("screenpop_bus_backlog", "Messages waiting to be published to the other nodes", registry=r)
        self.writes_queued = Gauge("screenpop_interaction_writes_queued", "Interaction records waiting for the database", registry=r)
        self.audit_pending = Gauge("screenpop_audit_pending", "Audit entries waiting for the database", registry=r)
        self.audit_dropped = Gauge("screenpop_audit_dropped", "Audit entries dropped since start (the queue was full)", registry=r)
        self.gc_frozen = Gauge("screenpop_gc_frozen_objects", "Objects kept out of the garbage collector's full passes, counted at the last thaw (screenpop.gc_tuning)", registry=r)
        self.gc_thaws = Gauge("screenpop_gc_thaws", "Full collections of the frozen objects since start (each one long pause)", registry=r)
        self.gc_last_thaw = Gauge("screenpop_gc_last_thaw_pause_seconds", "How long the last full collection of the frozen objects stopped the process", registry=r)

    def bind_gauge(self, gauge: Gauge, read: Callable[[], float]) -> None:
        gauge.set_function(read)

    def render(self) -> bytes:
        return generate_latest(self.registry)
