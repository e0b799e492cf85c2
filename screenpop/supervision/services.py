"""The supervisors' view: queue and agent state as messages.

Combines the :class:`~telephony.queues.QueueMonitor` (AMI), the call events,
the customer cards the orchestrator found (who is waiting: name, VIP), the
day's figures from the interaction log and the alert thresholds.  Every input
is a plain method call that returns at once; whatever changed is handed to
``notify`` (the notifier coalesces and pushes).  No I/O here: the plugin runs
the clock, the stats reads and the sockets.
"""
from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from screenpop.config import SupervisionSettings
from telephony.events import CallAbandoned, CallAnswered, CallEnded, CallEvent, CallQueued, CallRinging
from telephony.link import LinkDown, LinkUp, Snapshot
from screenpop.supervision.notifier import message_fingerprint
from telephony.queues import Changes, QueueMonitor

log = logging.getLogger(__name__)

RECENT_CALLS = 5000  # at most this many ended calls remembered for agents still wrapping them up
RELEASE_CHECKS = 2  # remembered calls looked at per call ended (more than the one added: the rest drains)
STATS_EVENTS = (CallQueued, CallAnswered, CallAbandoned, CallEnded)


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(slots=True)
class CallInfo:
    call_id: str
    caller_number: str | None = None
    caller_name: str | None = None
    queue: str | None = None
    customer_name: str | None = None
    vip: bool = False
    card: dict[str, Any] | None = None
    card_rev: int = 0  # bumped with every new card: stands for the card in fingerprints
    ended: bool = False


class _NoStats:
    def queue(self, name: str) -> dict[str, Any]:
        return {"offered": 0, "answered": 0, "abandoned": 0, "avg_wait_seconds": None, "avg_talk_seconds": None,
                "service_level": None, "sl_threshold_seconds": 20.0}

    def agent(self, agent_id: str) -> dict[str, Any]:
        return {"answered": 0, "talk_seconds": 0.0}

    def queue_names(self) -> set[str]:
        return set()


class SupervisionService:
    """``stats`` is a :class:`~screenpop.supervision.stats.StatsCache` (or
    anything with ``queue``/``agent``/``queue_names``); ``want_stats`` is
    called when a call moved and the day's figures should be read again."""

    def __init__(
        self,
        settings: SupervisionSettings,
        monitor: QueueMonitor,
        *,
        stats=None,
        notify: Callable[[Changes], None] = lambda changes: None,
        want_stats: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
        phone: Callable[[str | None], str | None] | None = None,
    ):
        self.settings = settings
        self.monitor = monitor
        self.stats = stats or _NoStats()
        self.notify = notify
        self.want_stats = want_stats
        self.clock = clock
        self.phone = phone or (lambda number: number)  # the number as a person reads it (national / international)
        self.link_up = False
        self._calls: dict[str, CallInfo] = {}
        self._recent: OrderedDict[str, CallInfo] = OrderedDict()
        self._alerts: dict[str, tuple[str, ...]] = {}  # queue -> alert kinds last published

    def now(self) -> float:
        """The wall clock, or the PBX's when it runs ahead (a simulator at speed)."""
        return max(self.clock(), self.monitor.last_ts)

    # ------------------------------------------------------------ inputs

    def on_ami(self, item: Any) -> None:
        """One item of the AMI link's queue: an event or a link marker."""
        if isinstance(item, dict):
            changes = self.monitor.feed(item)
        elif isinstance(item, Snapshot):
            changes = self.monitor.resync(item, self.now())
            self.link_up = True
        elif isinstance(item, (LinkUp, LinkDown)):
            self.link_up = isinstance(item, LinkUp)
            changes = Changes(set(self.monitor.queue_names()), set())
        else:
            return
        self._notify(changes)

    def on_call_event(self, event: CallEvent) -> None:
        info = self._calls.get(event.call_id)
        if info is None and not isinstance(event, CallEnded):
            info = self._calls[event.call_id] = self._recent.pop(event.call_id, None) or CallInfo(event.call_id)
        if isinstance(event, (CallQueued, CallRinging)) and info is not None:
            info.caller_number, info.caller_name = event.caller_number, event.caller_name
            info.queue = event.queue or info.queue
        if isinstance(event, CallEnded):
            if info is not None:
                info.ended = True
                self._recent[event.call_id] = self._calls.pop(event.call_id)
            self._release_recent()
        self._notify(self.monitor.call_event(event))
        if isinstance(event, STATS_EVENTS):
            self.want_stats()

    def on_card(self, call_id: str, card: Any) -> None:
        """A card for a call (lookup done, late data): names the caller."""
        info = self._calls.get(call_id) or self._recent.get(call_id)
        if info is None:  # a card before the call's first event: kept among the bounded recent ones
            info = self._recent[call_id] = CallInfo(call_id)
            self._release_recent()
        person = getattr(card, "person", None)
        info.customer_name = (person.name or person.company) if person is not None else None
        info.vip = bool(person is not None and person.vip)
        info.card = card.to_dict() if hasattr(card, "to_dict") else card
        info.card_rev += 1
        queues, agents = self.monitor.involved_in(call_id)
        self._notify(Changes(queues, agents))

    def _release_recent(self) -> None:
        """Forget the ended calls no agent shows any more, a few per call ended.

        Why: an ended call is remembered for the agents still wrapping it up,
        whose supervisor views show its card, 11 to 18 KB of objects each.
        Kept by count alone, the last 5,000 calls' cards stayed (55 to 90 MB
        at 50 calls/s, growing as the callers' histories filled the cards),
        though the agents showed fewer than 2,000 of them.  The oldest are
        looked at, those still shown go to the back: what is kept follows
        what the agents show, at a constant cost per call.  A card that came
        before its call's first event is kept (not ended) until that event."""
        for _ in range(min(RELEASE_CHECKS, len(self._recent))):
            call_id, info = next(iter(self._recent.items()))
            if info.ended and not self.monitor.shown_to_agents(call_id):
                del self._recent[call_id]
            else:
                self._recent.move_to_end(call_id)
        while len(self._recent) > RECENT_CALLS:
            self._recent.popitem(last=False)

    def outcome_saved(self, call_id: str) -> None:
        """The call's outcome was recorded: its agents' wrap-up is over."""
        self._notify(self.monitor.end_wrap_up(call_id, self.now()))

    def stats_changed(self, queues: set[str], agents: set[str] | None = None) -> None:
        """The day's figures were read again: queues changed, and the agents
        whose own figures did (None: every agent).  Only those: at 50 calls/s
        the figures are read twice a second, and rebuilding all 2,000 agents'
        messages each time was the notifier's biggest cost."""
        agent_ids = set(self.monitor.agent_ids()) if agents is None else set(agents)
        self._notify(Changes(set(queues) | set(self.monitor.queue_names()), agent_ids))

    def tick(self) -> None:
        """Time passing: wrap-ups that reached their maximum, alerts raised or cleared."""
        now = self.now()
        changes = self.monitor.tick(now)
        for name in self.queue_names():
            if tuple(a["kind"] for a in self._alerts_of(name, now)) != self._alerts.get(name, ()):
                changes.queues.add(name)
        self._notify(changes)

    def _notify(self, changes: Changes) -> None:
        if changes:
            self.notify(changes)

    # ------------------------------------------------------------ views

    def queue_names(self) -> list[str]:
        return sorted(set(self.monitor.queue_names()) | self.stats.queue_names())

    def queue_message(self, name: str) -> dict[str, Any] | None:
        view = self.monitor.queue(name)
        if view is None and name not in self.stats.queue_names():
            return None
        now = self.now()
        waiting = []
        for position, caller in enumerate(view.waiting if view else [], 1):
            info = self._calls.get(caller.call_id) or CallInfo(caller.call_id)
            waiting.append({
                "call_id": caller.call_id, "caller_number": caller.caller_number,
                "caller_display": self.phone(caller.caller_number), "caller_name": caller.caller_name,
                "customer_name": info.customer_name, "vip": info.vip, "since": iso(caller.since), "position": position,
                "wait_seconds": round(max(0.0, now - caller.since), 1),
            })
        agents = view.agents if view else {"logged_in": 0, "available": 0, "ringing": 0, "on_call": 0, "wrap_up": 0,
                                          "paused": 0, "unavailable": 0}
        alerts = self._alerts_of(name, now)
        self._alerts[name] = tuple(a["kind"] for a in alerts)
        longest = self._longest_wait(name, now)
        return {
            "type": "queue", "queue": name, "waiting": waiting,
            "longest_wait_seconds": None if longest is None else round(longest, 1),
            "agents": dict(agents), "today": self.stats.queue(name), "alerts": alerts, "updated_at": iso(now),
            "thresholds": {"longest_wait_seconds": self.settings.longest_wait_alert_seconds,
                           "service_level": self.settings.service_level_alert},
            "link_up": self.link_up,  # False: the PBX link is down, this is the last known state
        }

    def _longest_wait(self, name: str, now: float) -> float | None:
        view = self.monitor.queue(name)
        if view is None or not view.waiting:
            return None
        return max(0.0, now - min(w.since for w in view.waiting))

    def _alerts_of(self, name: str, now: float) -> list[dict[str, Any]]:
        s = self.settings
        alerts = []
        longest = self._longest_wait(name, now)
        if longest is not None and longest >= s.longest_wait_alert_seconds:
            alerts.append({"kind": "longest_wait", "value": round(longest, 1), "threshold": s.longest_wait_alert_seconds,
                           "message": f"a caller has waited {longest:.0f} s in {name} (limit {s.longest_wait_alert_seconds:g} s)"})
        level = self.stats.queue(name).get("service_level")
        if level is not None and level < s.service_level_alert:
            alerts.append({"kind": "service_level", "value": level, "threshold": s.service_level_alert,
                           "message": f"service level in {name} is {level:.0%} (target {s.service_level_alert:.0%})"})
        old = self._alerts.get(name, ())
        for alert in alerts:
            if alert["kind"] not in old:
                log.info("supervision alert raised queue=%s kind=%s value=%s threshold=%s", name, alert["kind"], alert["value"], alert["threshold"])
        return alerts

    def agent_ids(self) -> list[str]:
        return self.monitor.agent_ids()

    def agent_message(self, agent_id: str) -> dict[str, Any] | None:
        view = self.monitor.agent(agent_id)
        if view is None:
            return None
        call = None
        if view.call_id is not None:
            info = self._calls.get(view.call_id) or self._recent.get(view.call_id) or CallInfo(view.call_id)
            call = {"call_id": view.call_id, "queue": view.call_queue or info.queue, "caller_number": info.caller_number,
                    "caller_display": self.phone(info.caller_number), "caller_name": info.caller_name, "customer_name": info.customer_name, "vip": info.vip, "card": info.card}
        return {
            "type": "agent", "agent_id": agent_id, "name": view.name, "state": view.state,
            "pause_reason": view.pause_reason, "since": iso(view.since), "queues": view.queues, "call": call,
            "today": self.stats.agent(agent_id), "updated_at": iso(self.now()),
        }

    def fingerprint(self, message: dict[str, Any]) -> str:
        """The notifier's "did it change" key: an agent's call card stands as
        its call id and revision, not its JSON (a card is several KB, and every
        agent message showing a call was serialized sorted just to compare)."""
        call = message.get("call")
        if isinstance(call, dict) and call.get("card") is not None:
            info = self._calls.get(call["call_id"]) or self._recent.get(call["call_id"])
            rev = info.card_rev if info is not None and info.card is call["card"] else id(call["card"])
            message = {**message, "call": {**call, "card": f"rev {rev}"}}
        return message_fingerprint(message)

    def queue_messages(self) -> list[dict[str, Any]]:
        return [m for m in (self.queue_message(n) for n in self.queue_names()) if m is not None]

    def agent_messages(self) -> list[dict[str, Any]]:
        return [m for m in (self.agent_message(a) for a in self.agent_ids()) if m is not None]

    def snapshot(self) -> list[dict[str, Any]]:
        """Everything a supervisor's screen shows, for a socket that just opened."""
        return self.queue_messages() + self.agent_messages()
