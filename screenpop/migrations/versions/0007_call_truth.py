"""interactions: presentation, hidden_number/name, unreached, reconciled, reconciled_at

Revision ID: 0007_call_truth
Revises: 0006_support_role
Create Date: 2026-12-04

Why: the log must say what the PBX did, also off the happy path.

* ``presentation``: a caller who withheld their number is shown so by
  Asterisk only on the agent legs, after ``call.queued`` carried the number;
  the record keeps that the call is restricted, so no later write (a late
  lookup, a spill replay) brings the number back; ``hidden_number`` /
  ``hidden_name`` keep it only where ``[privacy] keep_restricted_numbers``
  says so, for admins' eyes.
* ``unreached``: agents whose phone never rang (DialEnd BUSY, CHANUNAVAIL,
  CONGESTION) and when; they are not among ``agents_rung``.
* ``reconciled`` / ``reconciled_at``: the event fields taken from
  Asterisk's own CEL records after an AMI outage, so a supervisor knows.

New columns only, all nullable: nothing to backfill (earlier calls have no
presentation known; their numbers were shown as they came).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007_call_truth"
down_revision = "0006_support_role"
branch_labels = None
depends_on = None

_json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("interactions", sa.Column("presentation", sa.String(16)))
    op.add_column("interactions", sa.Column("hidden_number", sa.String(64)))
    op.add_column("interactions", sa.Column("hidden_name", sa.String(255)))
    op.add_column("interactions", sa.Column("unreached", _json))
    op.add_column("interactions", sa.Column("reconciled", _json))
    op.add_column("interactions", sa.Column("reconciled_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    # SQLite drops a column in place (3.35+); a batch copy of the table would
    # cascade-delete the calls' notes (see 0005)
    for name in ("reconciled_at", "reconciled", "unreached", "hidden_name", "hidden_number", "presentation"):
        op.drop_column("interactions", name)
