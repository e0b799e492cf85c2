"""What any node can say about calls in progress and the supervisors' view,
whether or not it is the ingester.

The ingester answers from its orchestrator and its queue monitor; another
node answers from the live call state in Redis and from its mirror of the
supervisors' messages.  Changes asked of a live call (a note, a pushed
balance, a saved outcome) go over the bus as commands: whichever node
ingests, it is the one that applies them (on an embedded node, itself).
"""
from __future__ import annotations

import time
from typing import Any

from customer_lookup.card import card_from_dict
from customer_lookup.display import CardDisplay
from screenpop.cluster.bus import COMMANDS
from screenpop.ingest import supervisor_key
from screenpop.orchestrator import ActiveCall, call_summary, pop_message


class SupervisorMirror:
    """The last queue and agent message of each key, as the bus carried them."""

    def __init__(self) -> None:
        self._messages: dict[str, dict[str, Any]] = {}

    def update(self, message: dict[str, Any]) -> None:
        key = supervisor_key(message)
        if key is not None:
            self._messages[key] = message

    def seed(self, latest: dict[str, dict[str, Any]]) -> None:
        """Messages read from Redis at start; those the bus brought since are newer."""
        for key, message in latest.items():
            self._messages.setdefault(key, message)

    def _of(self, kind: str) -> list[dict[str, Any]]:
        return [m for k, m in sorted(self._messages.items()) if k.startswith(kind + ":")]

    def queue_messages(self) -> list[dict[str, Any]]:
        return self._of("queue")

    def agent_messages(self) -> list[dict[str, Any]]:
        return self._of("agent")

    def queue_message(self, name: str) -> dict[str, Any] | None:
        return self._messages.get(f"queue:{name}")

    def agent_message(self, agent_id: str) -> dict[str, Any] | None:
        return self._messages.get(f"agent:{agent_id}")

    def snapshot(self) -> list[dict[str, Any]]:
        return self.queue_messages() + self.agent_messages()

    def now(self) -> float:
        return time.time()


class LiveView:
    """``node`` is the :class:`~screenpop.service.ScreenpopService`: its
    ``ingest`` (None unless this node ingests), ``livecalls`` (None when
    embedded), ``bus`` and ``mirror``."""

    def __init__(self, node):
        self.node = node

    @property
    def _orchestrator(self):
        ingest = self.node.ingest
        return ingest.orchestrator if ingest is not None else None

    # -------------------------------------------------------------- calls

    async def pops_for(self, agent_id: str) -> list[dict[str, Any]]:
        if self._orchestrator is not None:
            return self._orchestrator.pops_for(agent_id)
        if self.node.livecalls is None:
            return []
        states = await self.node.livecalls.for_agent(agent_id)
        settings = getattr(self.node, "settings", None)  # a test's bare node has none: default display
        display = CardDisplay.from_settings(settings) if settings is not None else None
        return [pop_message(ActiveCall.from_state(state), agent_id, display) for state in states]

    async def calls_snapshot(self) -> list[dict[str, Any]]:
        if self._orchestrator is not None:
            return self._orchestrator.calls_snapshot()
        if self.node.livecalls is None:
            return []
        states = sorted(await self.node.livecalls.all(), key=lambda s: s["call_id"])
        return [call_summary(ActiveCall.from_state(state)) for state in states if not state.get("ended")]

    def add_note(self, call_id: str, note: dict[str, Any]) -> None:
        self.node.bus.publish(COMMANDS, {"op": "note", "call_id": call_id, "note": note})

    async def card_changed(self, card) -> None:
        self.node.bus.publish(COMMANDS, {"op": "card", "card": card.to_dict()})

    def outcome_saved(self, call_id: str) -> None:
        self.node.bus.publish(COMMANDS, {"op": "outcome", "call_id": call_id})

    async def apply_command(self, command: dict[str, Any]) -> None:
        """On the ingester: a command from any node (this one included)."""
        ingest = self.node.ingest
        if ingest is None or ingest.orchestrator is None:
            return
        op = command.get("op")
        if op == "note":
            ingest.orchestrator.add_note(str(command["call_id"]), command["note"])
        elif op == "card":
            await ingest.orchestrator.card_changed(card_from_dict(command["card"]))
        elif op == "outcome":
            ingest.supervision.service.outcome_saved(str(command["call_id"]))

    # -------------------------------------------------- supervisors' view

    @property
    def _supervision(self):
        ingest = self.node.ingest
        return ingest.supervision.service if ingest is not None and ingest.supervision is not None else self.node.mirror

    def supervisor_replay(self) -> list[dict[str, Any]]:
        return self._supervision.snapshot()

    def queue_messages(self) -> list[dict[str, Any]]:
        return self._supervision.queue_messages()

    def agent_messages(self) -> list[dict[str, Any]]:
        return self._supervision.agent_messages()

    def queue_message(self, name: str) -> dict[str, Any] | None:
        return self._supervision.queue_message(name)

    def agent_message(self, agent_id: str) -> dict[str, Any] | None:
        return self._supervision.agent_message(agent_id)

    def now(self) -> float:
        return self._supervision.now()
