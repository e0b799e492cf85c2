"""The orchestrator's delivery, audited and masked: a wrapper, not a change
to the pop path's owners.

The orchestrator sends pops through a ``Delivery`` (the WebSocket hub, or
the bus between nodes).  :class:`GuardedDelivery` sits in front of it:

* ``pop`` and ``card`` messages are masked by the ``[privacy]`` rules for the
  role of the people who receive agent messages (agents; a supervisor
  following an agent sees what the agent sees, masked further for the
  supervisor's own role at the socket edge, ``agent_ui.hub``);
* the supervisors' feed (queue and agent states) passes whole: supervisors
  and admins share it, so each node's hub masks it for each reader's role
  (live and in the replay on connect), and the REST routes per request.

Wiring (``ScreenpopService._promote``, on the ingester)::

    GuardedDelivery(BusDelivery(self.bus), security.audit, security.privacy)

A reconnecting browser's replay is masked where it is built, on whichever
node serves the socket (``ScreenpopService._replay_pops``): that node may not
be the ingester, so it has no GuardedDelivery.

The audit entry ``pop.delivered`` (which agent was shown which customer's
card, on which call) is written where the pop meets the agent's sockets,
not here: the ingester publishes a pop for every ringing agent, logged in or
not, and only the node serving the agent's socket knows whether one took it.
:func:`record_delivered` is called there (``ScreenpopService._to_agent``)
with the number of the agent's own open sockets that took the pop (a
supervisor watching the agent is not the agent being shown the card).
"""
from __future__ import annotations

import logging
from typing import Any

from screenpop.security.audit import POP_DELIVERED, AuditTrail, customer_of_card
from screenpop.security.privacy import PrivacyRules

log = logging.getLogger(__name__)

MASKED_TYPES = frozenset({"pop", "card"})


class GuardedDelivery:
    """Masks what the orchestrator sends agents.  ``audit`` is kept for the
    wiring's sake: pops are audited where a socket takes them
    (:func:`record_delivered`)."""

    def __init__(self, delivery: Any, audit: AuditTrail | None, privacy: PrivacyRules, *, role: str = "agent"):
        self.delivery = delivery
        self.audit = audit
        self.privacy = privacy
        self.role = role

    def send_to_agent(self, agent_id: str, message: dict[str, Any]) -> int:
        if message.get("type") in MASKED_TYPES:
            message = self.privacy.view(message, self.role)
        return self.delivery.send_to_agent(agent_id, message)

    def send_to_supervisors(self, message: dict[str, Any]) -> int:
        # Not masked here: readers of several roles share it (see the module doc).
        return self.delivery.send_to_supervisors(message)

    def __getattr__(self, name: str) -> Any:  # anything else the wrapped delivery offers
        return getattr(self.delivery, name)


def record_delivered(audit: AuditTrail | None, agent_id: str, message: dict[str, Any], sockets: int, *,
                     role: str = "agent") -> bool:
    """Audit a ``pop`` that ``sockets`` open sockets of the agent took (none:
    nothing was shown, nothing is recorded); True when recorded.

    One entry per agent and pop and node ("which agent saw which customer's
    card").  customer_of_card walks the card each time, uncached: about 2 us
    (one person) to 6 us (three), under 0.1 % of a core at the soak's 165 pops/s."""
    if audit is None or sockets <= 0 or message.get("type") != "pop":
        return False
    card = message.get("card")
    audit.record(f"agent:{agent_id}", POP_DELIVERED, "call", str(message.get("call_id")), actor_role=role,
                 customer=customer_of_card(card),
                 detail={"agent_id": agent_id, "card_status": (card or {}).get("status"), "sockets": sockets})
    return True
