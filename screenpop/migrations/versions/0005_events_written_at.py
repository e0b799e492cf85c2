"""interactions: events_written_at, and the recent-changes index on it

Revision ID: 0005_events_written_at
Revises: 0004_recent_calls_index
Create Date: 2026-11-24

Why: the supervisors' figures read the calls that changed since their last
read.  Keyed on ``last_event_at`` (the PBX's time of the call's newest
event), such a read cannot see a row written late: a call logged after a
database outage carries event times older than anything already read.  So
the whole day was read again every 10 minutes, beside the pops, at a cost
that grew with the day (about 1 s of CPU per 30,000 calls: a minute late in
a 1.8-million-call day, bench/bench_stats.py).  ``events_written_at`` is when
the writer last changed the call's events; every late write moves it.

The index on ``(last_event_at, call_id)`` served only that read and goes;
one on ``(events_written_at, call_id)`` takes its place.  Rows of the last
two days take their ``last_event_at`` as a first ``events_written_at``, so
the calls of a day that is being upgraded can be settled like later ones.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from alembic import op

revision = "0005_events_written_at"
down_revision = "0004_recent_calls_index"
branch_labels = None
depends_on = None

OLD_INDEX = "ix_interactions_last_event_at"
NEW_INDEX = "ix_interactions_events_written_at"
BACKFILL_DAYS = 2

# frozen: the columns this revision touches, as they are at this revision
_interactions = sa.table(
    "interactions",
    sa.column("last_event_at", sa.DateTime(timezone=True)),
    sa.column("events_written_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    op.add_column("interactions", sa.Column("events_written_at", sa.DateTime(timezone=True)))
    since = datetime.now(timezone.utc) - timedelta(days=BACKFILL_DAYS)
    if op.get_bind().dialect.name == "sqlite":
        since = since.replace(tzinfo=None)  # naive UTC there (screenpop.db.UtcDateTime)
    c = _interactions.c
    op.execute(_interactions.update().where(c.last_event_at >= since).values(events_written_at=c.last_event_at))
    op.create_index(op.f(NEW_INDEX), "interactions", ["events_written_at", "call_id"])
    op.drop_index(op.f(OLD_INDEX), table_name="interactions")


def downgrade() -> None:
    op.create_index(op.f(OLD_INDEX), "interactions", ["last_event_at", "call_id"])
    op.drop_index(op.f(NEW_INDEX), table_name="interactions")
    # SQLite drops a column in place (3.35+, and its index is gone by now); a
    # batch copy of the table would cascade-delete the calls' notes
    op.drop_column("interactions", "events_written_at")
