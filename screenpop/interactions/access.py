"""Who may touch a call record: the one place that says so.  Pure.

* An **agent** reads and writes (outcome, notes) only the calls offered to
  them: rung, answered, or named in a transfer
  (:attr:`~screenpop.interactions.record.InteractionRecord.agents_offered`),
  and their searches see only those.  A call an agent was never offered
  holds someone else's customer and notes: the screen pop exists to show a
  customer to the agent who takes the call, not to everyone on the floor.
* **Supervisors**, **admins** and **support** staff (who log outcomes for
  calls they did not take) read and write every call.
* Anyone else (an unknown role, an agent account without an agent id):
  nothing.

The REST API, the interaction pages and the supervisors' drill-downs ask
here; the WebSocket never carries a call to an agent it was not offered to
(``agent_ui.hub``: an agent's socket gets that agent's messages only).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from screenpop.auth.accounts import AGENT, ALL_CALLS_ROLES


@dataclass(frozen=True, slots=True)
class CallScope:
    """The calls a user may see: every call, only those offered to ``agent_id``, or none."""

    every_call: bool = False
    agent_id: str | None = None

    @property
    def nothing(self) -> bool:
        return not self.every_call and self.agent_id is None

    def admits(self, record: Any) -> bool:
        """May this user read and write ``record`` (an InteractionRecord)?"""
        if self.every_call:
            return True
        return self.agent_id is not None and self.agent_id in record.agents_offered


NO_CALLS = CallScope()
EVERY_CALL = CallScope(every_call=True)


def scope_of(user: Any) -> CallScope:
    """The :class:`CallScope` of a logged-in user (``.role``, ``.agent_id``)."""
    role = getattr(user, "role", None)
    if role in ALL_CALLS_ROLES:
        return EVERY_CALL
    agent_id = getattr(user, "agent_id", None)
    if role == AGENT and agent_id:
        return CallScope(agent_id=str(agent_id))
    return NO_CALLS


__all__ = ["CallScope", "EVERY_CALL", "NO_CALLS", "scope_of"]
