"""Call events: what the telephony layer tells the rest of screenpop.

One dataclass per event type of ``design.md``.  ``to_dict`` gives the public
JSON shape (``screenpop replay --json``, the bus); ``event_from_dict`` reads it
back.  No AMI names leak past this module: agents are agent ids, times are
ISO 8601 UTC strings.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar


def iso_utc(epoch: float) -> str:
    """Epoch seconds -> ``2026-11-22T21:31:46.875399Z``."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class CallEvent:
    type: ClassVar[str] = ""
    call_id: str
    ts: str

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in ADMIN_ONLY:
                continue  # only present when [privacy] keep_restricted_numbers kept one
            out[f.name] = value
        return out


# How the caller's identity may be shown: ``allowed``; ``restricted`` (the
# caller asked to hide it: the number and name are null, whatever Asterisk
# still carries in its other headers); ``unavailable`` (none was sent).
PRESENTATIONS = ("allowed", "restricted", "unavailable")
# A restricted caller's real number and name, kept only with [privacy]
# keep_restricted_numbers = true and then shown to admins only.
ADMIN_ONLY = frozenset({"hidden_number", "hidden_name"})


@dataclass(frozen=True, slots=True)
class CallQueued(CallEvent):
    type: ClassVar[str] = "call.queued"
    queue: str
    caller_number: str | None
    caller_name: str | None
    position: int | None
    presentation: str = "allowed"
    hidden_number: str | None = None
    hidden_name: str | None = None


@dataclass(frozen=True, slots=True)
class CallRinging(CallEvent):
    type: ClassVar[str] = "call.ringing"
    agent: str
    queue: str | None
    caller_number: str | None
    caller_name: str | None
    presentation: str = "allowed"
    hidden_number: str | None = None
    hidden_name: str | None = None


# Why a ring ended without this agent answering.  ``busy`` and
# ``unavailable`` mean the phone never rang (DialEnd BUSY, CHANUNAVAIL,
# CONGESTION at once): that agent was not "rung".
MISSED_REASONS = ("no-answer", "busy", "unavailable", "answered-elsewhere", "abandoned", "cancelled")
NEVER_RANG = frozenset({"busy", "unavailable"})


@dataclass(frozen=True, slots=True)
class CallMissed(CallEvent):
    type: ClassVar[str] = "call.missed"
    agent: str
    reason: str = "no-answer"

    @property
    def never_rang(self) -> bool:
        return self.reason in NEVER_RANG


@dataclass(frozen=True, slots=True)
class CallAnswered(CallEvent):
    type: ClassVar[str] = "call.answered"
    agent: str
    queue: str | None
    wait_seconds: float | None


@dataclass(frozen=True, slots=True)
class CallTransferred(CallEvent):
    """``to_agent`` when another agent takes the call, ``to_queue`` when it is
    sent back into a queue, ``to_number`` when it leaves the agents."""

    type: ClassVar[str] = "call.transferred"
    from_agent: str | None
    to_agent: str | None = None
    to_number: str | None = None
    to_queue: str | None = None


@dataclass(frozen=True, slots=True)
class CallAbandoned(CallEvent):
    type: ClassVar[str] = "call.abandoned"
    queue: str | None
    wait_seconds: float | None


ENDED_REASONS = ("completed", "abandoned", "unanswered", "transferred-out")


@dataclass(frozen=True, slots=True)
class CallEnded(CallEvent):
    type: ClassVar[str] = "call.ended"
    agent: str | None
    reason: str
    talk_seconds: float


EVENT_TYPES: dict[str, type[CallEvent]] = {
    cls.type: cls
    for cls in (CallQueued, CallRinging, CallMissed, CallAnswered, CallTransferred, CallAbandoned, CallEnded)
}


def event_from_dict(data: dict[str, Any]) -> CallEvent:
    """The inverse of ``to_dict``; raises ValueError on an unknown type or missing key."""
    cls = EVENT_TYPES.get(data.get("type", ""))
    if cls is None:
        raise ValueError(f"unknown call event type {data.get('type')!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in data.items() if k in names})
    except TypeError as exc:
        raise ValueError(f"bad {cls.type} event: {exc}") from None
