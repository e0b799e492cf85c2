"""Integration tokens and the audit log, declared on the service's shared MetaData.

The migration ``0003_security`` creates exactly these; change both together
(a new revision, never an edit of an applied one).

* ``integration_tokens.digest`` is the SHA-256 (hex) of the token; the token
  itself is shown once by ``screenpop tokens create`` and never stored, so a
  database dump opens no integration.  A revoked token keeps its row
  (``revoked_at`` set): the audit log and ``tokens list`` still name it.
* ``audit_log`` is append-only by convention: nothing in the service updates
  a row, and rows are deleted only by age (``[security]
  audit_retention_days``, ``screenpop audit purge``: through the ``at``
  index, each purge leaving an ``audit.purged`` entry).  ``detail`` is JSON
  for what does not fit the columns.
"""
from __future__ import annotations

from sqlalchemy import JSON, Column, Index, Integer, String, Table
from sqlalchemy.dialects.postgresql import JSONB

from screenpop.db import UtcDateTime, metadata

JsonDoc = JSON().with_variant(JSONB(), "postgresql")

integration_tokens = Table(
    "integration_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("scope", String(32), nullable=False),
    Column("digest", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("revoked_at", UtcDateTime),
    Column("revoked_by", String(128)),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(128), nullable=False),  # username, "agent:1001", "cli:root", "token:erp"
    Column("actor_role", String(32)),
    Column("action", String(64), nullable=False),  # card.viewed, pop.delivered, outcome.set, ...
    Column("target_type", String(32), nullable=False),  # call, user, token
    Column("target_id", String(128), nullable=False),
    Column("customer", String(255)),  # whose card, when a customer is concerned
    Column("remote", String(64)),
    Column("detail", JsonDoc, nullable=False),
    Index(None, "at"),
    Index(None, "actor"),
    Index(None, "action"),
    Index(None, "target_id"),
    Index(None, "customer"),
)
