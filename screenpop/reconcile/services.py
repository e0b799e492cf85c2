"""What the interaction log must gain or correct, from Asterisk's CEL rows.

Pure decisions (:func:`reconciled`) beside the loop that reads and writes
(:class:`Reconciler`).  The rules:

* a call the log does not have gets a record built from the rows, every
  field it has marked reconciled;
* a call the log has gets the event fields the rows tell otherwise (times
  more than a second apart, another queue, agents, end) replaced, and only
  those marked, so a supervisor sees what came from Asterisk's records;
  the caller stays as AMI saw it (AMI alone knows the presentation), the
  lookup, outcome and notes stay;
* a call not over yet (no ``LINKEDID_END``) waits for a later pass;
* doing it twice changes nothing (the second pass finds no difference).
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Protocol

from screenpop.interactions.record import EVENT_FIELDS, InteractionRecord, fold
from telephony.agents import AgentResolver
from telephony.cel import CelRow, call_events

log = logging.getLogger(__name__)

TIME_FIELDS = frozenset({"started_at", "queued_at", "first_ring_at", "answered_at", "ended_at", "last_event_at"})
SECONDS_FIELDS = frozenset({"wait_seconds", "talk_seconds"})
CALLER_FIELDS = frozenset({"caller_number", "caller_name", "presentation"})
TOLERANCE = 1.0  # CDR times are whole seconds; AMI and CEL agree to milliseconds


def _epoch(value: str | None) -> float | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _same(name: str, a: Any, b: Any) -> bool:
    if name in TIME_FIELDS:
        x, y = _epoch(a), _epoch(b)
        return (x is None) == (y is None) and (x is None or abs(x - y) <= TOLERANCE)
    if name in SECONDS_FIELDS:
        return (a is None) == (b is None) and (a is None or abs(a - b) <= TOLERANCE)
    if name in ("ring_times", "answer_times", "unreached"):
        return set(a) == set(b) and all(_same("started_at", a[k], b[k]) for k in a)
    if name == "transfers":
        return [(t.get("from_agent"), t.get("to_agent"), t.get("to_queue"), t.get("to_number")) for t in a] == \
               [(t.get("from_agent"), t.get("to_agent"), t.get("to_queue"), t.get("to_number")) for t in b]
    return a == b


def reconciled(stored: InteractionRecord | None, from_rows: InteractionRecord) -> tuple[InteractionRecord, list[str]]:
    """The record to keep and the event fields that came from Asterisk's rows
    (empty: the log already says what the rows say)."""
    fields = [f for f in EVENT_FIELDS if f in {x.name for x in dataclasses.fields(InteractionRecord)}]
    if stored is None:
        changed = [f for f in fields if getattr(from_rows, f) not in (None, [], {}, ())]
        return from_rows, changed
    changed = [f for f in fields if f not in CALLER_FIELDS and not _same(f, getattr(stored, f), getattr(from_rows, f))]
    if not changed:
        return stored, []
    return dataclasses.replace(stored, **{f: getattr(from_rows, f) for f in changed}), changed


class Store(Protocol):
    async def get(self, call_id: str) -> InteractionRecord | None: ...

    async def write_reconciled(self, items: list[tuple[InteractionRecord, list[str]]]) -> int: ...


class Rows(Protocol):
    async def calls_between(self, start: float, end: float) -> list[str]: ...

    async def rows_of(self, linkedids: Iterable[str]) -> dict[str, list[CelRow]]: ...


@dataclass(slots=True)
class PassResult:
    created: list[str] = field(default_factory=list)
    corrected: dict[str, list[str]] = field(default_factory=dict)  # call id -> fields
    pending: list[str] = field(default_factory=list)  # not over yet
    unchanged: int = 0

    @property
    def written(self) -> int:
        return len(self.created) + len(self.corrected)


class Reconciler:
    """One pass: the calls with CEL rows in a window, against the log."""

    def __init__(self, rows: Rows, store: Store, agents: AgentResolver | None = None, *,
                 trust_unseen_numbers: bool = False):
        self.rows = rows
        self.store = store
        self.agents = agents or AgentResolver()
        self.trust_unseen_numbers = trust_unseen_numbers

    async def run_window(self, start: float, end: float, extra: Iterable[str] = ()) -> PassResult:
        linkedids = set(await self.rows.calls_between(start, end)) | set(extra)
        return await self.run_calls(linkedids)

    async def run_calls(self, linkedids: Iterable[str]) -> PassResult:
        result = PassResult()
        rows = await self.rows.rows_of(linkedids)
        writes: list[tuple[InteractionRecord, list[str]]] = []
        for call_id, call_rows in sorted(rows.items()):
            if not any(r.eventtype == "LINKEDID_END" for r in call_rows):
                result.pending.append(call_id)
                continue
            stored = await self.store.get(call_id)
            presentation = stored.presentation if stored is not None else None  # what AMI saw, if it did
            events = call_events(call_rows, self.agents, presentation=presentation,
                                 trust_unseen_numbers=self.trust_unseen_numbers)
            if not events:
                continue  # internal or outbound: not a customer call
            record, changed = reconciled(stored, fold(events))
            if not changed:
                result.unchanged += 1
                continue
            writes.append((record, changed))
            if stored is None:
                result.created.append(call_id)
            else:
                result.corrected[call_id] = changed
        if writes:
            await self.store.write_reconciled(writes)
        for call_id in result.created:
            log.info("call reconciled from cdr action=created call_id=%s", call_id)
        for call_id, changed in result.corrected.items():
            log.info("call reconciled from cdr action=corrected call_id=%s fields=%s", call_id, ",".join(changed))
        return result
