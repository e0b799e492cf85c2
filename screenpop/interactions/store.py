"""The interaction log in SQL: the writer's upsert, and the queries behind the
API and pages (one call, search, outcome, notes, a caller's earlier calls).

Why the upsert reads before it writes: the row in the database may hold parts
of the call this process never saw (an earlier process, a replayed spill
file).  Reading the row, :func:`~screenpop.interactions.record.merge`-ing and
writing the result back makes every write idempotent per call id, so a batch
retried after an outage — committed or not the first time — changes nothing
the second time.  Rows whose merge changes nothing are not written at all.

The outcome columns and notes belong to people: the upsert never writes them,
and the people's writes never touch what the call events own.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Iterable, Sequence

import phonenumbers
from sqlalchemy import and_, bindparam, func, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from customer_lookup.phones import normalize
from screenpop.db import writing
from screenpop.db_trips import Trips
from screenpop.interactions import validate
from screenpop.interactions.models import interaction_notes, interactions
from screenpop.interactions.record import (
    EVENT_FIELDS,
    RECONCILE_FIELDS,
    InteractionRecord,
    Note,
    canonical_ts,
    hidden_if_restricted,
    merge,
)
from screenpop.interactions.rows import UPSERT_COLUMNS, digits, from_row, history_entry, note_from_row, to_row
from screenpop.interactions.validate import InteractionNotFound, InvalidInput

log = logging.getLogger(__name__)

DEFAULT_DISPOSITIONS = ("resolved", "callback", "escalated", "sale", "complaint", "wrong_number", "no_action")


@dataclass(frozen=True, slots=True)
class SearchResult:
    items: list[InteractionRecord]
    total: int  # matches in all, whatever limit/offset showed

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "items": [r.to_dict() for r in self.items]}


def _insert(conn: AsyncConnection):
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


# Built once: an ordering built per query (every cold card's history) left
# reference cycles behind (expression <-> its comparator) for the full GC.
NEWEST_FIRST = (interactions.c.started_at.desc().nulls_last(), interactions.c.call_id.desc())


@dataclass(frozen=True, slots=True)
class _UpsertStatements:
    skeletons: Any  # insert the empty rows that are missing
    stored: Any  # read (and on PostgreSQL lock) the rows of a batch: {"ids": [...]}
    upsert: Any  # write the merged rows
    reconcile: Any  # write rows whose events Asterisk's records corrected (and say which)


@functools.cache
def _upsert_statements(dialect: str) -> _UpsertStatements:
    """Built once per dialect and reused by every batch.  Why: building them
    per batch (``insert.excluded`` makes an alias of the table, column by
    column) cost CPU on the writer's path and left reference cycles behind
    that only a full garbage collection frees (see screenpop.gc_tuning)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    c = interactions.c
    stored = select(interactions).where(c.call_id.in_(bindparam("ids", expanding=True))).order_by(c.call_id)
    if dialect == "postgresql":
        stored = stored.with_for_update()
    upsert = insert(interactions)
    upsert = upsert.on_conflict_do_update(index_elements=[c.call_id],
                                          set_={name: upsert.excluded[name] for name in UPSERT_COLUMNS})
    reconcile = insert(interactions)
    reconcile = reconcile.on_conflict_do_update(index_elements=[c.call_id], set_={
        name: reconcile.excluded[name] for name in (*UPSERT_COLUMNS, *RECONCILE_FIELDS)})
    return _UpsertStatements(insert(interactions).on_conflict_do_nothing(index_elements=["call_id"]), stored, upsert,
                             reconcile)


class InteractionStore:
    """``default_region``: how a searched number written without a country
    code is read (the ``[lookup] default_region``, as the lookup reads a caller)."""

    def __init__(self, engine: AsyncEngine, dispositions: Sequence[str] = DEFAULT_DISPOSITIONS, *, default_region: str = "ES"):
        if not dispositions:
            raise ValueError("at least one disposition code is needed")
        self.engine = engine
        self.dispositions = tuple(dispositions)
        self.default_region = default_region
        self.trips = Trips(engine)  # the queries and the writer's transaction: one trip each (screenpop.db_trips)

    async def close(self) -> None:
        await self.trips.close()

    # ----------------------------------------------------------- the writer

    async def upsert(self, records: Iterable[InteractionRecord]) -> int:
        """Merge each record with its stored row and write the result, one
        transaction; returns how many rows changed.  Records of one call
        within ``records`` are merged first."""
        batch: dict[str, InteractionRecord] = {}
        for record in records:
            batch[record.call_id] = merge(batch[record.call_id], record) if record.call_id in batch else record
        if not batch:
            return 0
        return await self.trips.write(_upsert_batch, batch)

    async def write_reconciled(self, items: Sequence[tuple[InteractionRecord, Sequence[str]]]) -> int:
        """Write what the reconciliation with Asterisk's records decided
        (screenpop.reconcile): for each call, the event ``fields`` named are
        set to the record's values as they are (no merge: a time taken from
        the reconnect is replaced, not kept as the later one), and marked
        reconciled; the lookup, outcome and notes stay."""
        batch = {record.call_id: (record, tuple(fields)) for record, fields in items if fields}
        if not batch:
            return 0
        return await self.trips.write(_reconcile_batch, batch)

    async def latest_event_at(self) -> str | None:
        """The newest call event the log holds (where a restarted node's
        reconciliation with Asterisk's records starts)."""
        async with self.engine.connect() as conn:
            value = (await conn.execute(select(func.max(interactions.c.last_event_at)))).scalar()
        return canonical_ts(value)

    # ------------------------------------------------------------- reading

    async def get(self, call_id: str) -> InteractionRecord | None:
        call_id = validate.call_id(call_id)

        def read(conn: Connection) -> InteractionRecord | None:
            row = conn.execute(select(interactions).where(interactions.c.call_id == call_id)).first()
            return None if row is None else _with_notes(from_row(row), _notes(conn, [call_id]))

        return await self.trips.read(read)

    async def notes(self, call_id: str) -> list[Note]:
        call_id = validate.call_id(call_id)
        return (await self.trips.read(_notes, [call_id])).get(call_id, [])

    async def search(
        self,
        *,
        number: str | None = None,
        customer: str | None = None,
        agent: str | None = None,
        queue: str | None = None,
        since: datetime | date | str | None = None,
        until: datetime | date | str | None = None,
        disposition: str | None = None,
        end_reason: str | None = None,
        offered_to: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> SearchResult:
        """Newest first.  ``number``: any digits of the number as received or
        its E.164 (``912 34 56 78`` finds ``+34912345678``), and a whole number
        in any format the lookup reads (:func:`number_match`: ``0034…``,
        national, ``+34…`` find the same calls); ``customer``: part
        of the customer's name or one of its record keys (``C-17`` or
        ``sales:C-17``), in any case; ``agent``: an agent who answered it (also
        after a transfer); ``since`` inclusive, ``until`` exclusive, on the
        call's start; naive times are UTC; ``end_reason``: completed,
        abandoned, unanswered, transferred-out; ``offered_to``: only the calls
        offered to this agent (rung, answered or in a transfer: what an
        agent may see, ``screenpop.interactions.access``)."""
        limit, offset = validate.page(limit, offset)
        c = interactions.c
        where = []
        if (term := validate.search_term("number", number)) is not None:
            where.append(number_match(term, self.default_region))
        if (term := validate.search_term("offered_to", offered_to)) is not None:
            where.append(c.offered_agents.contains(f"|{term.replace('|', '/')}|", autoescape=True))
        if (term := validate.search_term("customer", customer)) is not None:
            key = term.replace("|", "/").casefold()
            where.append(
                or_(
                    c.customer_name_folded.contains(term.casefold(), autoescape=True),
                    c.customer_key_list.contains(f":{key}|", autoescape=True),
                    c.customer_key_list.contains(f"|{key}|", autoescape=True),
                )
            )
        if (term := validate.search_term("agent", agent)) is not None:
            where.append(c.answered_agents.contains(f"|{term.replace('|', '/')}|", autoescape=True))
        if (term := validate.search_term("queue", queue)) is not None:
            where.append(c.queue == term)
        if (term := validate.search_term("disposition", disposition)) is not None:
            where.append(c.disposition == term)
        if (term := validate.search_term("end_reason", end_reason)) is not None:
            where.append(c.end_reason == term)
        if (bound := validate.time_bound("since", since)) is not None:
            where.append(c.started_at >= bound)
        if (bound := validate.time_bound("until", until)) is not None:
            where.append(c.started_at < bound)
        cond = and_(true(), *where)

        def read(conn: Connection) -> SearchResult:
            total = conn.execute(select(func.count()).select_from(interactions).where(cond)).scalar_one()
            rows = conn.execute(
                select(interactions).where(cond).order_by(*NEWEST_FIRST)
                .limit(limit).offset(offset)
            ).all()
            notes = _notes(conn, [r.call_id for r in rows])
            return SearchResult([_with_notes(from_row(r), notes) for r in rows], total)

        return await self.trips.read(read)

    async def history(
        self, e164: str, limit: int = 5, *, exclude_call_id: str | None = None, before: datetime | str | None = None
    ) -> list[dict[str, Any]]:
        """A caller's earlier calls, newest first, with their outcomes and notes,
        as the customer card's ``history`` shows them (``exclude_call_id``: the
        call ringing now)."""
        if not e164:
            return []
        limit, _ = validate.page(limit, 0)
        c = interactions.c
        # a call whose lookup was never logged still counts when the PBX sent E.164
        where = [or_(c.caller_e164 == e164, and_(c.caller_e164.is_(None), c.caller_number == e164))]
        if exclude_call_id:
            where.append(c.call_id != exclude_call_id)
        if (bound := validate.time_bound("before", before)) is not None:
            where.append(c.started_at < bound)
        query = select(interactions).where(*where).order_by(*NEWEST_FIRST).limit(limit)

        def read(conn: Connection) -> list[dict[str, Any]]:
            rows = conn.execute(query).all()
            notes = _notes(conn, [r.call_id for r in rows])
            return [history_entry(_with_notes(from_row(r), notes)) for r in rows]

        return await self.trips.read(read)

    # -------------------------------------------------------------- people

    async def set_outcome(
        self,
        call_id: str,
        disposition: str,
        notes: str | None = None,
        follow_up: date | str | None = None,
        by_user: str | None = None,
        *,
        create_missing: bool = False,
    ) -> InteractionRecord:
        """Record the agent's outcome (a later one replaces an earlier one);
        ``notes`` become a note by ``by_user``.  Raises InvalidInput /
        UnknownDisposition with the reason, InteractionNotFound for an unknown
        call — unless ``create_missing``: the caller knows the call is real
        (the orchestrator has it) and the writer has not stored it yet; the
        events merge into that row when they arrive."""
        call_id = validate.call_id(call_id)
        outcome = validate.outcome(disposition, notes, follow_up, by_user, self.dispositions)
        now = datetime.now(timezone.utc)
        values = {"disposition": outcome.disposition, "follow_up": outcome.follow_up, "outcome_by": outcome.by, "outcome_at": now}
        async with writing(self.engine) as conn:
            if create_missing:
                insert = _insert(conn)(interactions)
                row = {**to_row(InteractionRecord(call_id=call_id)), **values}
                await conn.execute(insert.on_conflict_do_update(index_elements=[interactions.c.call_id], set_=values), [row])
            else:
                result = await conn.execute(update(interactions).where(interactions.c.call_id == call_id).values(**values))
                if result.rowcount == 0:
                    raise InteractionNotFound(call_id)
            if outcome.notes:
                await self._add_note(conn, call_id, outcome.by, outcome.notes, now)
        log.info("interaction outcome set call_id=%s disposition=%s by=%s", call_id, outcome.disposition, outcome.by)
        record = await self.get(call_id)
        assert record is not None
        return record

    async def add_note(self, call_id: str, author: str, text: str) -> Note:
        call_id = validate.call_id(call_id)
        author, text = validate.note(author, text)
        async with writing(self.engine) as conn:
            exists = (await conn.execute(select(interactions.c.call_id).where(interactions.c.call_id == call_id))).first()
            if exists is None:
                raise InteractionNotFound(call_id)
            note = await self._add_note(conn, call_id, author, text, datetime.now(timezone.utc))
        log.info("interaction note added call_id=%s author=%s chars=%d", call_id, author, len(text))
        return note

    # ------------------------------------------------------------- helpers

    async def _add_note(self, conn: AsyncConnection, call_id: str, author: str, text: str, now: datetime) -> Note:
        result = await conn.execute(
            interaction_notes.insert().values(call_id=call_id, author=author, text=text, created_at=now)
        )
        return Note(id=result.inserted_primary_key[0], call_id=call_id, author=author, text=text, created_at=canonical_ts(now))





def number_match(term: str, default_region: str):
    """The search condition of a number as someone typed it.

    Any run of its digits in the number as received or in its E.164 (a
    partial number, ``5678``); and, when the lookup's normalization
    (:func:`customer_lookup.phones.normalize`, same region) reads a whole
    valid number, also that E.164 exactly and its national significant
    digits in the number as received: ``0034912345678``, ``912345678`` and
    ``+34 912 34 56 78`` then find the same calls, however the PBX sent them."""
    c = interactions.c
    d = digits(term)
    if not d:
        raise InvalidInput("number", "has no digits")
    either = [c.caller_digits.contains(d, autoescape=True), c.caller_e164.contains(d, autoescape=True)]
    phone = normalize(term, default_region)
    if phone.valid and phone.e164:
        national = phonenumbers.national_significant_number(phonenumbers.parse(phone.e164))
        either += [c.caller_e164 == phone.e164, c.caller_digits.contains(national, autoescape=True)]
    return or_(*either)


def _upsert_batch(conn: Connection, batch: dict[str, InteractionRecord]) -> int:
    """:meth:`InteractionStore.upsert`'s transaction (one trip: see screenpop.db_trips)."""
    call_ids = sorted(batch)
    statements = _upsert_statements(conn.dialect.name)
    # Every row exists and is locked before it is read, so two writers
    # (a restarted process replaying its spill file next to the old
    # one) never both merge into the same empty view: on PostgreSQL
    # the row locks; on SQLite this first write takes the database's
    # write lock (its driver opens the transaction only at a write).
    conn.execute(statements.skeletons, [to_row(InteractionRecord(call_id=c)) for c in call_ids])
    stored = {row.call_id: row for row in conn.execute(statements.stored, {"ids": call_ids})}
    now = datetime.now(timezone.utc)
    rows = []
    for call_id, record in batch.items():
        old = stored[call_id]  # its skeleton at least
        old_record = from_row(old)
        old_row, row = to_row(old_record), to_row(merge(old_record, record))
        if row == old_row:
            continue
        # Only the events move it: a lookup written late must not bring back
        # a call the supervisors' figures have settled (and count it again).
        events_moved = any(row[name] != old_row[name] for name in EVENT_FIELDS)
        row["events_written_at"] = now if events_moved else old.events_written_at
        rows.append(row)
    if rows:
        conn.execute(statements.upsert, rows)
    return len(rows)

def _reconcile_batch(conn: Connection, batch: dict[str, tuple[InteractionRecord, tuple[str, ...]]]) -> int:
    """:meth:`InteractionStore.write_reconciled`'s transaction."""
    call_ids = sorted(batch)
    statements = _upsert_statements(conn.dialect.name)
    conn.execute(statements.skeletons, [to_row(InteractionRecord(call_id=c)) for c in call_ids])
    stored = {row.call_id: from_row(row) for row in conn.execute(statements.stored, {"ids": call_ids})}
    now = datetime.now(timezone.utc)
    rows = []
    for call_id, (record, fields) in batch.items():
        old = stored[call_id]
        new = hidden_if_restricted(dataclasses.replace(old, **{name: getattr(record, name) for name in fields}))
        row = to_row(new)
        row["reconciled"] = sorted(set(old.reconciled) | set(fields))
        row["reconciled_at"] = now
        row["events_written_at"] = now  # the supervisors' figures count it at their next read
        rows.append(row)
    conn.execute(statements.reconcile, rows)
    return len(rows)


_NOTES_OF = (  # built once (see _upsert_statements): {"ids": [...]}
    select(interaction_notes).where(interaction_notes.c.call_id.in_(bindparam("ids", expanding=True)))
    .order_by(interaction_notes.c.created_at, interaction_notes.c.id)
)


def _notes(conn: Connection, call_ids: list[str]) -> dict[str, list[Note]]:
    out: dict[str, list[Note]] = {}
    if not call_ids:
        return out
    for row in conn.execute(_NOTES_OF, {"ids": call_ids}):
        out.setdefault(row.call_id, []).append(note_from_row(row))
    return out

def _with_notes(record: InteractionRecord, notes: dict[str, list[Note]]) -> InteractionRecord:
    found = notes.get(record.call_id)
    if not found:
        return record
    return dataclasses.replace(record, notes=tuple(found))
