"""support role; interactions: offered_agents

Revision ID: 0006_support_role
Revises: 0005_events_written_at
Create Date: 2026-12-04

Why: an agent may read and write only the calls they were offered (rung,
answered, or named in a transfer), and search only those; a new ``support``
role (staff logging outcomes, not on the phones) reads them all.

* ``users``: the role check admits ``support`` (like supervisors and
  admins, without an agent id).  SQLite cannot alter a check: the table is
  copied (batch mode).  Foreign keys are not enforced on the service's
  SQLite connections, so the copy leaves the sessions alone.
* ``interactions.offered_agents``: ``|1001|1002|``, every agent the call was
  offered to, flattened like ``answered_agents`` so "the calls offered to
  1001" is one portable ``LIKE``.  Every stored call is filled in here (the
  writer keeps it for new ones: ``screenpop.interactions.rows``).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_support_role"
down_revision = "0005_events_written_at"
branch_labels = None
depends_on = None

CHECK_NAME = "ck_users_role"
OLD_CHECK = "role IN ('agent', 'supervisor', 'admin') AND ((role = 'agent') = (agent_id IS NOT NULL))"
NEW_CHECK = "role IN ('agent', 'supervisor', 'admin', 'support') AND ((role = 'agent') = (agent_id IS NOT NULL))"
BATCH = 1000

# frozen: the columns this revision reads and writes, as they are at this revision
_interactions = sa.table(
    "interactions",
    sa.column("call_id", sa.String(128)),
    sa.column("agents_rung", sa.JSON()),
    sa.column("answered_by", sa.String(64)),
    sa.column("answer_times", sa.JSON()),
    sa.column("transfers", sa.JSON()),
    sa.column("offered_agents", sa.Text()),
)


def _offered(rung, answered_by, answer_times, transfers) -> str | None:
    """Frozen copy of ``InteractionRecord.agents_offered`` + ``rows.bar_list``."""
    seen: list[str] = []
    for agent in [*(rung or []), *sorted(answer_times or {}), answered_by,
                  *(t.get(k) for t in (transfers or []) for k in ("from_agent", "to_agent"))]:
        if agent and str(agent) not in seen:
            seen.append(str(agent))
    return "|" + "|".join(a.replace("|", "/") for a in seen) + "|" if seen else None


def _role_check(check: str) -> None:
    with op.batch_alter_table("users", recreate="auto") as batch:
        batch.drop_constraint(op.f(CHECK_NAME), type_="check")
        batch.create_check_constraint(op.f(CHECK_NAME), sa.text(check))


def upgrade() -> None:
    _role_check(NEW_CHECK)
    op.add_column("interactions", sa.Column("offered_agents", sa.Text()))
    bind = op.get_bind()
    c = _interactions.c
    last = ""
    while True:
        rows = bind.execute(sa.select(c.call_id, c.agents_rung, c.answered_by, c.answer_times, c.transfers)
                            .where(c.call_id > last).order_by(c.call_id).limit(BATCH)).all()
        if not rows:
            break
        values = [{"id": r.call_id, "offered": _offered(r.agents_rung, r.answered_by, r.answer_times, r.transfers)} for r in rows]
        values = [v for v in values if v["offered"] is not None]
        if values:
            bind.execute(_interactions.update().where(c.call_id == sa.bindparam("id")).values(offered_agents=sa.bindparam("offered")), values)
        last = rows[-1].call_id


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE role = 'support')"))
    op.execute(sa.text("DELETE FROM users WHERE role = 'support'"))
    _role_check(OLD_CHECK)
    # in place, as 0005 does: a batch copy of interactions would cascade-delete the notes
    op.drop_column("interactions", "offered_agents")
