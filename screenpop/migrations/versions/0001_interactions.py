"""interaction log: interactions and interaction_notes

Revision ID: 0001_interactions
Revises:
Create Date: 2026-11-23

Frozen: the tables as they were at this revision, spelled out here rather
than imported from ``screenpop.interactions.models``, so that later changes to
the models never rewrite history.  Constraint and index names are explicit
(the shared naming convention's output) so every backend gets the same ones.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_interactions"
down_revision = None
branch_labels = None
depends_on = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)

INDEXED = (
    "caller_e164", "caller_number", "answered_by", "started_at", "queued_at",
    "ended_at", "disposition", "customer_name", "customer_name_folded",
)


def upgrade() -> None:
    op.create_table(
        "interactions",
        sa.Column("call_id", sa.String(128), nullable=False),
        sa.Column("caller_number", sa.String(64)),
        sa.Column("caller_digits", sa.String(64)),
        sa.Column("caller_name", sa.String(255)),
        sa.Column("caller_e164", sa.String(32)),
        sa.Column("customer_name", sa.String(255)),
        sa.Column("customer_name_folded", sa.String(255)),
        sa.Column("customer_keys", JSON_DOC, nullable=False),
        sa.Column("customer_key_list", sa.Text()),
        sa.Column("card_status", sa.String(16)),
        sa.Column("lookup_at", TS),
        sa.Column("queue", sa.String(128)),
        sa.Column("agents_rung", JSON_DOC, nullable=False),
        sa.Column("ring_times", JSON_DOC, nullable=False),
        sa.Column("answered_by", sa.String(64)),
        sa.Column("answer_times", JSON_DOC, nullable=False),
        sa.Column("answered_agents", sa.Text()),
        sa.Column("transfers", JSON_DOC, nullable=False),
        sa.Column("started_at", TS),
        sa.Column("queued_at", TS),
        sa.Column("first_ring_at", TS),
        sa.Column("answered_at", TS),
        sa.Column("ended_at", TS),
        sa.Column("last_event_at", TS),
        sa.Column("wait_seconds", sa.Float()),
        sa.Column("talk_seconds", sa.Float()),
        sa.Column("end_reason", sa.String(32)),
        sa.Column("disposition", sa.String(64)),
        sa.Column("follow_up", sa.Date()),
        sa.Column("outcome_by", sa.String(128)),
        sa.Column("outcome_at", TS),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_interactions")),
    )
    for column in INDEXED:
        op.create_index(op.f(f"ix_interactions_{column}"), "interactions", [column])

    op.create_table(
        "interaction_notes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.String(128), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interaction_notes")),
        sa.ForeignKeyConstraint(
            ["call_id"], ["interactions.call_id"],
            name=op.f("fk_interaction_notes_call_id_interactions"), ondelete="CASCADE",
        ),
    )
    op.create_index(op.f("ix_interaction_notes_call_id"), "interaction_notes", ["call_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_interaction_notes_call_id"), table_name="interaction_notes")
    op.drop_table("interaction_notes")
    for column in reversed(INDEXED):
        op.drop_index(op.f(f"ix_interactions_{column}"), table_name="interactions")
    op.drop_table("interactions")
