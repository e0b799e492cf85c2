"""What the AMI link tells its consumer besides events.

The connection puts these markers in the same ordered queue as the AMI
events, so the consumer sees exactly where in the stream the link went down,
came back, and where the post-reconnect snapshot of Asterisk's state belongs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from telephony.protocol import AmiMessage


@dataclass(frozen=True, slots=True)
class LinkUp:
    """Logged in.  ``reconnect`` is False for the first connection of the process."""

    reconnect: bool
    banner: str | None = None


@dataclass(frozen=True, slots=True)
class LinkDown:
    """The link was lost (or given up by the watchdog); the reason is for logs."""

    reason: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Asterisk's own view of live state, fetched right after login.

    ``channels`` are the ``CoreShowChannel`` events, ``queue_entries`` the
    ``QueueEntry`` events (callers waiting), ``queue_members`` the
    ``QueueMember`` events and ``queue_params`` the ``QueueParams`` events of
    ``QueueStatus``.  Every event that arrived before this marker in the
    queue is older than the snapshot."""

    channels: list[AmiMessage] = field(default_factory=list)
    queue_entries: list[AmiMessage] = field(default_factory=list)
    queue_members: list[AmiMessage] = field(default_factory=list)
    queue_params: list[AmiMessage] = field(default_factory=list)
