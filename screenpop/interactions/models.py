"""The interaction log's tables, declared on the service's shared MetaData.

SQLAlchemy Core, one schema for SQLite (demo) and PostgreSQL (production).
The migration ``0001_interactions`` creates exactly these; change both
together (a new revision, never an edit of an applied one).

Why a few columns that are not in the record:

* ``caller_digits`` — the digits of ``caller_number`` as received, so "search
  by the digits I can read on the screen" matches ``(415) 555-0100``;
* ``customer_name_folded`` — ``customer_name.casefold()``, so case-insensitive
  search works for ``Ángel`` on SQLite too (its ``lower()`` is ASCII-only);
* ``customer_key_list``, ``answered_agents`` and ``offered_agents`` —
  ``|billing:a-9|sales:c-17|`` (casefolded), ``|1005|1002|``: the JSON columns
  flattened to text, so "calls of this customer record", "calls this agent
  took" and "calls offered to this agent" (what an agent may read) are one
  portable ``LIKE`` instead of a different JSON operator per backend.

Notes live in ``interaction_notes``: a call collects several, from several
people, and none may overwrite another.

Times are ``TIMESTAMP WITH TIME ZONE`` on PostgreSQL; SQLite has no such
type, so :class:`UtcDateTime` stores naive UTC there and hands back aware UTC
on both.  JSON is JSONB on PostgreSQL (it has equality and key operators),
plain JSON text on SQLite.
"""
from __future__ import annotations

from sqlalchemy import JSON, Column, Date, Float, ForeignKey, Index, Integer, String, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

from screenpop.db import UtcDateTime, metadata


JsonDoc = JSON().with_variant(JSONB(), "postgresql")

interactions = Table(
    "interactions",
    metadata,
    Column("call_id", String(128), primary_key=True),
    Column("caller_number", String(64)),
    Column("caller_digits", String(64)),
    Column("caller_name", String(255)),
    Column("caller_e164", String(32)),
    Column("customer_name", String(255)),
    Column("customer_name_folded", String(255)),
    Column("customer_keys", JsonDoc, nullable=False),
    Column("customer_key_list", Text),
    Column("card_status", String(16)),
    Column("lookup_at", UtcDateTime),
    Column("queue", String(128)),
    Column("agents_rung", JsonDoc, nullable=False),
    Column("ring_times", JsonDoc, nullable=False),
    Column("answered_by", String(64)),
    Column("answer_times", JsonDoc, nullable=False),
    Column("answered_agents", Text),
    Column("offered_agents", Text),
    Column("transfers", JsonDoc, nullable=False),
    Column("started_at", UtcDateTime),
    Column("queued_at", UtcDateTime),
    Column("first_ring_at", UtcDateTime),
    Column("answered_at", UtcDateTime),
    Column("ended_at", UtcDateTime),
    Column("last_event_at", UtcDateTime),
    Column("wait_seconds", Float),
    Column("talk_seconds", Float),
    Column("end_reason", String(32)),
    Column("disposition", String(64)),
    Column("follow_up", Date),
    Column("outcome_by", String(128)),
    Column("outcome_at", UtcDateTime),
    # when the writer last changed what the call events own (its clock, not
    # the PBX's): a row written late, as after a database outage, is still
    # new to the supervisors' figures (screenpop.supervision.stats)
    Column("events_written_at", UtcDateTime),
    # migration 0007: the caller's presentation, agents whose phone never
    # rang, and what the reconciliation with Asterisk's records set
    Column("presentation", String(16)),
    Column("hidden_number", String(64)),
    Column("hidden_name", String(255)),
    Column("unreached", JsonDoc),
    Column("reconciled", JsonDoc),
    Column("reconciled_at", UtcDateTime),
    Index(None, "caller_e164"),
    Index(None, "caller_number"),
    Index(None, "answered_by"),
    Index(None, "started_at"),
    Index(None, "queued_at"),
    Index(None, "ended_at"),
    Index(None, "disposition"),
    Index(None, "customer_name"),
    Index(None, "customer_name_folded"),
    # the supervisors' figures read the calls whose events were written
    # lately, a page at a time in this order (screenpop.supervision.stats)
    Index(None, "events_written_at", "call_id"),
)

interaction_notes = Table(
    "interaction_notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(128), ForeignKey("interactions.call_id", ondelete="CASCADE"), nullable=False),
    Column("author", String(128), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("text", Text, nullable=False),
    Index(None, "call_id"),
)
