"""Interaction record <-> table row.  Pure.

Kept apart from the store so the mapping (times as timestamps, derived search
columns, what a column can hold) is one small thing to read and test.  Text
from the PBX is made storable rather than refused: a caller name with a NUL
or longer than its column must not stop the call from being logged.
"""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy import String

from screenpop.interactions.models import interactions
from screenpop.interactions.record import (
    EVENT_FIELDS,
    LOOKUP_FIELDS,
    OUTCOME_FIELDS,
    RECONCILE_FIELDS,
    InteractionRecord,
    Note,
    canonical_ts,
    parse_ts,
)

TIME_FIELDS = frozenset(
    {"started_at", "queued_at", "first_ring_at", "answered_at", "ended_at", "last_event_at", "outcome_at", "lookup_at",
     "reconciled_at"}
)
DERIVED = ("caller_digits", "customer_name_folded", "customer_key_list", "answered_agents", "offered_agents")
# What an upsert writes: everything but the outcome (events_written_at: the
# store's transaction sets it, see screenpop.interactions.store._upsert_batch).
UPSERT_COLUMNS = (*EVENT_FIELDS, *LOOKUP_FIELDS, *DERIVED, "events_written_at")
EMPTY_JSON = {"customer_keys": {}, "agents_rung": [], "ring_times": {}, "answer_times": {}, "transfers": [], "unreached": {},
              "reconciled": []}

_LENGTHS = {c.name: c.type.length for c in interactions.columns if isinstance(c.type, String) and c.type.length}
_NON_DIGITS = re.compile(r"\D")


def digits(value: str | None) -> str:
    return _NON_DIGITS.sub("", value or "")


def clean(value: Any) -> Any:
    """Strings, also inside JSON, without what PostgreSQL refuses (NUL, lone surrogates)."""
    if isinstance(value, str):
        value = value.replace("\x00", "")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "replace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def to_row(record: InteractionRecord) -> dict[str, Any]:
    """The columns an upsert writes (never the outcome)."""
    if not record.call_id or len(record.call_id) > _LENGTHS["call_id"]:
        raise ValueError(f"call_id must be 1 to {_LENGTHS['call_id']} characters: {record.call_id[:64]!r}…")
    row: dict[str, Any] = {"call_id": record.call_id}
    for name in (*EVENT_FIELDS, *LOOKUP_FIELDS):
        value = getattr(record, name)
        row[name] = parse_ts(value) if name in TIME_FIELDS else value
    row["caller_digits"] = digits(record.caller_number) or None
    row["customer_name_folded"] = record.customer_name.casefold() if record.customer_name else None
    # casefolded: keys are matched in any case, the same on every backend
    row["customer_key_list"] = bar_list(f"{source}:{key}".casefold() for source, keys in sorted(record.customer_keys.items()) for key in keys)
    row["answered_agents"] = bar_list(record.agents_answered)
    row["offered_agents"] = bar_list(record.agents_offered)
    for name, value in row.items():
        value = clean(value)
        if isinstance(value, str) and name in _LENGTHS and name != "call_id":
            value = value[: _LENGTHS[name]]
        row[name] = value
    return row


def bar_list(items) -> str | None:
    """``|a|b|``: a list one portable ``LIKE '%|a|%'`` can search (``|`` cannot
    occur in an item: it is replaced)."""
    items = [str(i).replace("|", "/") for i in items]
    return f"|{'|'.join(items)}|" if items else None


def from_row(row: Any) -> InteractionRecord:
    m = row._mapping if hasattr(row, "_mapping") else row
    values: dict[str, Any] = {"call_id": m["call_id"]}
    for name in (*EVENT_FIELDS, *LOOKUP_FIELDS, *OUTCOME_FIELDS, *RECONCILE_FIELDS):
        value = m[name] if name in m else None  # a row read before a migration added the column
        if name in TIME_FIELDS:
            value = canonical_ts(value)
        elif name in EMPTY_JSON and value is None:
            value = type(EMPTY_JSON[name])()
        values[name] = value
    return InteractionRecord(**values)


def note_from_row(row: Any) -> Note:
    m = row._mapping if hasattr(row, "_mapping") else row
    return Note(id=m["id"], call_id=m["call_id"], author=m["author"], text=m["text"], created_at=canonical_ts(m["created_at"]))


def history_entry(record: InteractionRecord) -> dict[str, Any]:
    """One earlier call as the customer card shows it (JSON-ready)."""
    return {
        "call_id": record.call_id,
        "started_at": record.started_at,
        "queue": record.queue,
        "answered_by": record.answered_by,
        "end_reason": record.end_reason,
        "wait_seconds": record.wait_seconds,
        "talk_seconds": record.talk_seconds,
        "disposition": record.disposition,
        "notes": [{"author": n.author, "text": n.text, "created_at": n.created_at} for n in record.notes],
        "follow_up": record.follow_up.isoformat() if record.follow_up else None,
        "outcome_by": record.outcome_by,
        "offered_to": record.agents_offered,  # who may open it (an agent: only the calls offered to them)
    }
