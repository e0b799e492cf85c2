"""The interaction record: one row of the interaction log per customer call.

Pure code, no I/O.  A record is built by folding call events into it
(:func:`apply`), completed by the customer lookup (:func:`with_lookup`) and by
the agent's outcome form (the store's ``set_outcome``).

Why a *merge* underneath the fold: each event is turned into a one-event
partial record (:func:`from_event`) and :func:`merge`\\ d in.  Every event field
merges by a rule that does not care about order or repetition (earliest
time wins, latest time wins, set union), so

* the same event applied twice changes nothing (reconnect replays, duplicated
  bus deliveries),
* events of one call arriving out of order give the same record,
* two partial views of one call (what a process had in memory, what an earlier
  process already wrote) combine into the full one — which is how the store
  upserts without ever losing what is already in the database.

Times are ISO 8601 UTC **strings** in one canonical form,
``2026-11-22T21:31:46.875399Z`` (microseconds, ``Z``), the form call events
carry; canonical strings sort in time order, so the merge compares them as
strings.  The store turns them into timestamp columns.  ``follow_up`` is a
:class:`datetime.date`.

Records are values: treat them as immutable; every function here returns a
new record and never mutates its inputs.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Iterable

from telephony.events import (
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallMissed,
    CallQueued,
    CallRinging,
    CallTransferred,
)

TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
TRANSFER_KEYS = ("ts", "from_agent", "to_agent", "to_queue", "to_number")

# Columns the call events own (the store's upsert writes only these) ...
EVENT_FIELDS = (
    "caller_number", "caller_name", "queue", "agents_rung", "ring_times", "answered_by", "answer_times",
    "transfers", "started_at", "queued_at", "first_ring_at", "answered_at", "ended_at", "last_event_at",
    "wait_seconds", "talk_seconds", "end_reason", "presentation", "unreached", "hidden_number", "hidden_name",
)
# ... the lookup owns these ...
LOOKUP_FIELDS = ("caller_e164", "customer_name", "customer_keys", "card_status", "lookup_at")
# ... and the agent's outcome form these (never touched by an upsert).
OUTCOME_FIELDS = ("disposition", "follow_up", "outcome_by", "outcome_at")
CARD_STATUSES = ("known", "multiple", "unknown", "withheld")
# Which presentation a merge keeps: the most private one any view of the call
# saw.  A caller found restricted on the agent legs (after call.queued carried
# the number) stays restricted, however the partial views arrive.
PRESENTATION_RANK = {"restricted": 3, "unverified": 2, "allowed": 1, "unavailable": 0}
# Set by the reconciliation with Asterisk's records only (never by an upsert).
RECONCILE_FIELDS = ("reconciled", "reconciled_at")


@dataclass(frozen=True, slots=True)
class Note:
    """A free-text note on a call (its own table: a call collects several, from
    several people, and none overwrites another)."""

    id: int | None
    call_id: str
    author: str
    text: str
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class InteractionRecord:
    call_id: str
    # the caller, as the PBX gave it
    caller_number: str | None = None
    caller_name: str | None = None
    # the lookup
    caller_e164: str | None = None
    customer_name: str | None = None
    customer_keys: dict[str, list[str]] = field(default_factory=dict)  # source -> record keys
    card_status: str | None = None  # known | multiple | unknown | withheld
    lookup_at: str | None = None  # when the card was made: the latest card wins, whatever the order
    # the call
    queue: str | None = None  # the first queue the caller entered
    agents_rung: list[str] = field(default_factory=list)  # ring order, no duplicates
    answered_by: str | None = None  # the last agent who answered (after transfers: who had the caller)
    transfers: list[dict[str, Any]] = field(default_factory=list)  # {ts, from_agent, to_agent, to_queue, to_number}
    started_at: str | None = None  # earliest event of the call
    queued_at: str | None = None
    first_ring_at: str | None = None
    answered_at: str | None = None  # first answer: when the caller stopped waiting
    ended_at: str | None = None
    last_event_at: str | None = None
    wait_seconds: float | None = None  # until the first answer, or until abandoning
    talk_seconds: float | None = None
    end_reason: str | None = None  # completed | abandoned | unanswered | transferred-out
    # allowed | restricted | unavailable | unverified (telephony.events.PRESENTATIONS):
    # restricted hides the number, the name and the customer everywhere
    presentation: str | None = None
    # a restricted caller's number and name, kept only with [privacy]
    # keep_restricted_numbers = true; the API shows them to admins only
    hidden_number: str | None = None
    hidden_name: str | None = None
    # agents whose phone never rang (busy, unreachable) -> when: not "rung"
    unreached: dict[str, str] = field(default_factory=dict)
    # the event fields taken from Asterisk's own records after an AMI outage
    # (screenpop.reconcile), and when: so a supervisor knows where they came from
    reconciled: list[str] = field(default_factory=list)
    reconciled_at: str | None = None
    # bookkeeping that keeps the fold order-free: agent -> first ring / latest answer
    ring_times: dict[str, str] = field(default_factory=dict)
    answer_times: dict[str, str] = field(default_factory=dict)
    # the outcome, from the agent's form
    disposition: str | None = None
    follow_up: date | None = None
    outcome_by: str | None = None
    outcome_at: str | None = None
    # notes, oldest first; filled by the store when read, never written by an upsert
    notes: tuple[Note, ...] = ()

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    @property
    def agents_answered(self) -> list[str]:
        """Every agent who answered, in answer order (the transfer chain)."""
        return [a for a, _ in sorted(self.answer_times.items(), key=lambda kv: (kv[1], kv[0]))]

    @property
    def agents_offered(self) -> list[str]:
        """Every agent the call was offered to: rung, answered, or named in a
        transfer (from or to), first rung first.  These agents may read and
        write the record (``screenpop.interactions.access``)."""
        seen: dict[str, None] = {}
        for agent in (*self.agents_rung, *sorted(self.answer_times), self.answered_by,
                      *(t.get(k) for t in self.transfers for k in ("from_agent", "to_agent"))):
            if agent:
                seen.setdefault(str(agent), None)
        return list(seen)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the API, the bus)."""
        out = dataclasses.asdict(self)
        out["follow_up"] = self.follow_up.isoformat() if self.follow_up else None
        out["notes"] = [n.to_dict() for n in self.notes]
        out["agents_answered"] = self.agents_answered
        return out


# --------------------------------------------------------------------- times


def canonical_ts(value: str | datetime | None) -> str | None:
    """Any ISO 8601 time (``Z``, offset, naive = UTC) or datetime -> the canonical
    UTC string, so that string order is time order; ValueError when unreadable."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not an ISO 8601 time: {value[:64]!r}") from None
    if not isinstance(value, datetime):
        raise ValueError(f"not a time: {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime(TS_FORMAT)


def parse_ts(value: str | None) -> datetime | None:
    """Canonical string -> aware UTC datetime."""
    if value is None:
        return None
    return datetime.fromisoformat(value).astimezone(timezone.utc)


# ---------------------------------------------------------------- the fold


def from_event(event: CallEvent) -> InteractionRecord:
    """What one event alone says about its call."""
    ts = canonical_ts(event.ts)
    base: dict[str, Any] = {"call_id": event.call_id, "started_at": ts, "last_event_at": ts}
    if isinstance(event, CallQueued):
        base.update(queue=event.queue, queued_at=ts, caller_number=event.caller_number, caller_name=event.caller_name,
                    presentation=event.presentation, hidden_number=event.hidden_number, hidden_name=event.hidden_name)
    elif isinstance(event, CallRinging):
        base.update(
            queue=event.queue, caller_number=event.caller_number, caller_name=event.caller_name,
            first_ring_at=ts, ring_times={event.agent: ts}, agents_rung=[event.agent], presentation=event.presentation,
            hidden_number=event.hidden_number, hidden_name=event.hidden_name,
        )
    elif isinstance(event, CallMissed) and event.never_rang:
        base["unreached"] = {event.agent: ts}
    elif isinstance(event, CallAnswered):
        base.update(
            queue=event.queue, answered_at=ts, wait_seconds=event.wait_seconds,
            answer_times={event.agent: ts}, answered_by=event.agent,
        )
    elif isinstance(event, CallTransferred):
        base["transfers"] = [_transfer(ts, event.from_agent, event.to_agent, event.to_queue, event.to_number)]
    elif isinstance(event, CallAbandoned):
        base.update(queue=event.queue, wait_seconds=event.wait_seconds)
    elif isinstance(event, CallEnded):
        base.update(ended_at=ts, end_reason=event.reason, talk_seconds=event.talk_seconds)
    elif not isinstance(event, CallMissed):  # missed: the ring already named the agent
        raise ValueError(f"unknown call event {type(event).__name__}")
    return InteractionRecord(**base)


def apply(record: InteractionRecord | None, event: CallEvent) -> InteractionRecord:
    """Fold one call event into the record of its call (None: a new call)."""
    partial = from_event(event)
    return partial if record is None else merge(record, partial)


def fold(events: Iterable[CallEvent], record: InteractionRecord | None = None) -> InteractionRecord | None:
    for event in events:
        record = apply(record, event)
    return record


def merge(a: InteractionRecord, b: InteractionRecord) -> InteractionRecord:
    """Two views of one call combined.  The event part is commutative,
    associative and idempotent; for the lookup and outcome parts ``b`` wins
    when it has one (it is the newer view: memory over database)."""
    if a.call_id != b.call_id:
        raise ValueError(f"cannot merge records of different calls {a.call_id!r} and {b.call_id!r}")
    ring_times = _union(a.ring_times, b.ring_times, min)
    answer_times = _union(a.answer_times, b.answer_times, max)
    unreached = _union(a.unreached, b.unreached, max)
    answered_at, wait = _first_answer(a, b)
    ended_at, end_reason, talk = _last_end(a, b)
    out: dict[str, Any] = dict(
        call_id=a.call_id,
        caller_number=_first(a.caller_number, b.caller_number),
        caller_name=_first(a.caller_name, b.caller_name),
        hidden_number=_first(a.hidden_number, b.hidden_number),
        hidden_name=_first(a.hidden_name, b.hidden_name),
        queue=_queue(a, b),
        ring_times=ring_times,
        agents_rung=[x for x in _ordered(ring_times, a.agents_rung, b.agents_rung) if x not in unreached],
        unreached=unreached,
        presentation=max((a.presentation, b.presentation), key=lambda p: PRESENTATION_RANK.get(p or "", -1)),
        answer_times=answer_times,
        answered_by=_last_answerer(answer_times, a.answered_by, b.answered_by),
        transfers=_transfers(a.transfers + b.transfers),
        started_at=_min(a.started_at, b.started_at),
        queued_at=_min(a.queued_at, b.queued_at),
        first_ring_at=_min(a.first_ring_at, b.first_ring_at),
        answered_at=answered_at,
        wait_seconds=wait,
        ended_at=ended_at,
        end_reason=end_reason,
        talk_seconds=talk,
        last_event_at=_max(a.last_event_at, b.last_event_at),
    )
    out.update({name: getattr(_newer_lookup(a, b), name) for name in LOOKUP_FIELDS})
    outcome = a if (a.outcome_at or "") > (b.outcome_at or "") else b
    if outcome.outcome_at is None and outcome.disposition is None:
        outcome = a
    out.update({name: getattr(outcome, name) for name in OUTCOME_FIELDS})
    out["notes"] = b.notes or a.notes
    out["reconciled"] = sorted(set(a.reconciled) | set(b.reconciled))
    out["reconciled_at"] = _max(a.reconciled_at, b.reconciled_at)
    return hidden_if_restricted(InteractionRecord(**out))


def hidden_if_restricted(record: InteractionRecord) -> InteractionRecord:
    """A restricted caller leaves no number, name or customer in the log
    (the lookup begun with the number at ``call.queued`` included)."""
    if record.presentation != "restricted" or (record.caller_number is None and record.caller_name is None
                                                 and record.caller_e164 is None and not record.customer_keys):
        return record
    return dataclasses.replace(record, caller_number=None, caller_name=None, caller_e164=None, customer_name=None,
                               customer_keys={}, card_status="withheld")


def _newer_lookup(a: InteractionRecord, b: InteractionRecord) -> InteractionRecord:
    """The later card wins (by ``lookup_at``), so a stale lookup replayed from
    the spill file never overwrites a newer one already stored; on a tie the
    newer view ``b`` wins when it has a lookup at all."""
    if b.card_status is None:
        return a
    if a.card_status is None:
        return b
    return a if (a.lookup_at or "") > (b.lookup_at or "") else b


def with_lookup(
    record: InteractionRecord,
    caller_e164: str | None,
    customer_name: str | None,
    customer_keys: dict[str, Iterable[str]] | None,
    card_status: str | None,
    lookup_at: str | None = None,
) -> InteractionRecord:
    """The lookup part; the latest lookup replaces an earlier one (a late source
    completes the card)."""
    keys = {str(source): _dedupe(str(k) for k in values) for source, values in (customer_keys or {}).items()}
    return dataclasses.replace(
        record, caller_e164=caller_e164, customer_name=customer_name, customer_keys=keys,
        card_status=card_status or "unknown", lookup_at=canonical_ts(lookup_at),
    )


def lookup_from_card(card: Any) -> dict[str, Any]:
    """A customer card (``customer_lookup.card.CustomerCard`` or its dict) -> the
    keyword arguments of :func:`with_lookup`.  A name only when the card is sure
    of the person; the record keys of every candidate, so a later search by
    record key finds an ambiguous call too."""
    get = (lambda k: card.get(k)) if isinstance(card, dict) else (lambda k: getattr(card, k, None))
    persons = get("persons") or []
    status = get("status")
    if status not in CARD_STATUSES or not isinstance(persons, (list, tuple)):
        raise ValueError(f"not a customer card: status={status!r} persons={type(persons).__name__}")
    pget = (lambda p, k: p.get(k)) if persons and isinstance(persons[0], dict) else (lambda p, k: getattr(p, k, None))
    keys: dict[str, list[str]] = {}
    for person in persons:
        for source, values in (pget(person, "keys") or {}).items():
            keys[source] = _dedupe([*keys.get(source, []), *map(str, values)])
    name = pget(persons[0], "name") if status == "known" and persons else None
    try:
        made = canonical_ts(get("generated_at") or None)
    except ValueError:
        made = None
    return {"caller_e164": get("e164"), "customer_name": name, "customer_keys": keys, "card_status": status, "lookup_at": made}


# ------------------------------------------------------------------ helpers


def _transfer(ts, from_agent, to_agent, to_queue, to_number) -> dict[str, Any]:
    return {"ts": ts, "from_agent": from_agent, "to_agent": to_agent, "to_queue": to_queue, "to_number": to_number}


def _transfer_key(t: dict[str, Any]) -> tuple:
    return tuple(t.get(k) or "" for k in TRANSFER_KEYS)


def _transfers(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    unique = {_transfer_key(t): _transfer(*(t.get(k) for k in TRANSFER_KEYS)) for t in items}
    return [unique[k] for k in sorted(unique)]


def _first(x, y):
    return x if x is not None else y


def _min(x: str | None, y: str | None) -> str | None:
    return y if x is None else x if y is None else min(x, y)


def _max(x: str | None, y: str | None) -> str | None:
    return y if x is None else x if y is None else max(x, y)


def _union(x: dict[str, str], y: dict[str, str], pick) -> dict[str, str]:
    out = dict(x)
    for key, value in y.items():
        out[key] = pick(out[key], value) if key in out else value
    return out


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _ordered(times: dict[str, str], *lists: list[str]) -> list[str]:
    """Agents by time; agents known only from a list (no time) keep their place after."""
    timed = [a for a, _ in sorted(times.items(), key=lambda kv: (kv[1], kv[0]))]
    return _dedupe([*timed, *(a for lst in lists for a in lst)])


def _last_answerer(answer_times: dict[str, str], *fallback: str | None) -> str | None:
    if answer_times:
        return max(answer_times.items(), key=lambda kv: (kv[1], kv[0]))[0]
    return _first(*fallback)


def _first_answer(a: InteractionRecord, b: InteractionRecord) -> tuple[str | None, float | None]:
    """The first answer and its wait; without an answer, an abandoned caller's wait."""
    answers = [(r.answered_at, r.wait_seconds) for r in (a, b) if r.answered_at is not None]
    if answers:
        return min(answers, key=lambda c: (c[0], c[1] is None, c[1] or 0.0))
    return None, _first(a.wait_seconds, b.wait_seconds)


def _last_end(a: InteractionRecord, b: InteractionRecord) -> tuple[str | None, str | None, float | None]:
    ends = [(r.ended_at, r.end_reason, r.talk_seconds) for r in (a, b) if r.ended_at is not None]
    if ends:
        return max(ends, key=lambda c: (c[0], c[1] or "", c[2] or 0.0))
    return None, _first(a.end_reason, b.end_reason), _first(a.talk_seconds, b.talk_seconds)


def _queue(a: InteractionRecord, b: InteractionRecord) -> str | None:
    """The queue of the earliest ``call.queued``; without one, any queue a ring or answer named."""
    queued = [(r.queued_at, r.queue or "") for r in (a, b) if r.queued_at is not None and r.queue is not None]
    if queued:
        return min(queued)[1]
    return _first(a.queue, b.queue)
