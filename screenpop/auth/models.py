"""Users and sessions, declared on the service's shared MetaData.

The migration ``0002_users`` creates exactly these; change both together (a
new revision, never an edit of an applied one).

* ``users.agent_id`` is unique: one PBX agent id routes pops to one account.
  NULL (supervisors, admins) is allowed many times on both backends.
* The check constraint repeats the rule of :func:`validate_new_user` in the
  database, so a hand-written INSERT cannot create an agent without an id.
* ``sessions.id`` is the SHA-256 of the token; the token itself is never
  stored, so a database dump opens no session.
"""
from __future__ import annotations

from sqlalchemy import Boolean, CheckConstraint, Column, ForeignKey, Integer, String, Table

from screenpop.auth.accounts import AGENT, ROLES
from screenpop.db import UtcDateTime, metadata

# From the one list of roles (migration 0006_support_role wrote this check).
ROLE_CHECK = (f"role IN ({', '.join(repr(r) for r in ROLES)}) "
              f"AND ((role = '{AGENT}') = (agent_id IS NOT NULL))")

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(128)),
    Column("role", String(16), nullable=False),
    Column("agent_id", String(32), unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("disabled", Boolean(create_constraint=False), nullable=False, default=False),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", UtcDateTime()),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("password_changed_at", UtcDateTime(), nullable=False),
    Column("last_login_at", UtcDateTime()),
    CheckConstraint(ROLE_CHECK, name="role"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_seen", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
)
