"""Interaction-log rows for benches that need a log before their traffic."""
from __future__ import annotations

from typing import Any

from screenpop.interactions.record import InteractionRecord
from telephony.events import iso_utc


def answered_call(call_id: str, caller: str, start: float, agent: str, queue: str, *,
                  wait: float, talk: float, **extra: Any) -> InteractionRecord:
    """A call that queued at ``start`` (epoch seconds), rang ``agent`` 2 s
    later, was answered after ``wait`` seconds and talked ``talk``: the row
    the interaction writer leaves for it (``extra``: more fields, e.g. an
    outcome)."""
    rung, answered, ended = iso_utc(start + 2.0), iso_utc(start + wait), iso_utc(start + wait + talk)
    return InteractionRecord(
        call_id=call_id, caller_number=caller, queue=queue, agents_rung=[agent], ring_times={agent: rung},
        answered_by=agent, answer_times={agent: answered}, started_at=iso_utc(start), queued_at=iso_utc(start),
        first_ring_at=rung, answered_at=answered, ended_at=ended, last_event_at=ended,
        wait_seconds=wait, talk_seconds=talk, end_reason="completed", **extra)
