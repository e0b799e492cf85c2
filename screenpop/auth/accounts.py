"""Domain types and rules of accounts and sessions; no I/O.

Decisions, in one place so the store and the web edge agree:

* Usernames are case-insensitive: stored lower-case, 3-64 characters of
  ``[a-z0-9._@-]``.  "Admin" and "admin" are one account, never two.
* An ``agent`` account must carry the agent id the PBX uses (``1001``);
  that id is what routes pops to the account, so one agent id belongs to at
  most one account (unique in the table).  ``supervisor``, ``admin`` and
  ``support`` accounts must NOT carry one: the WebSocket hub ignores it for them, and a
  field that silently does nothing is a support ticket waiting to happen.
* Roles are a flat list, no hierarchy: an access rule names every role it
  admits, so reading a rule is enough to know who gets in.  :data:`ROLES`
  is the one list (the CLI's choices, the database's check, the config's
  ``partial_phone_roles`` and the access rules all read it).  ``support``:
  staff who log call outcomes but are not on the phones (no agent id, so no
  pops); they read and write every call record, and neither supervise nor
  administer.
* A failed login counts against the account; after ``max_failures`` in a
  row the account is locked for ``lock_seconds`` (even the right password
  is refused meanwhile).  The caller only ever learns "no".
* Sessions slide: each use pushes the expiry ``idle`` further, but never
  past ``absolute`` after login, so a stolen token dies on its own.
* A node may keep a valid session in memory for ``cache_for`` (seconds):
  its own logouts and disables drop it at once, another node's are seen
  when the entry runs out, and an entry never outlives the session's expiry.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

AGENT, SUPERVISOR, ADMIN, SUPPORT = "agent", "supervisor", "admin", "support"
ROLES = (AGENT, SUPERVISOR, ADMIN, SUPPORT)
# Who watches the floor (queue and agent states, /supervisor, the
# supervision API and the supervisors' socket feed).
SUPERVISING_ROLES = frozenset({SUPERVISOR, ADMIN})
# Who reads and writes every call record; an agent only the calls offered
# to them (screenpop.interactions.access).
ALL_CALLS_ROLES = frozenset({SUPERVISOR, ADMIN, SUPPORT})

_USERNAME = re.compile(r"[a-z0-9._@-]{3,64}")
_AGENT_ID = re.compile(r"[A-Za-z0-9._-]{1,32}")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32)
MAX_DISPLAY_NAME = 128


class AccountError(ValueError):
    """A user cannot be created or changed as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    role: str
    agent_id: str | None
    display_name: str | None

    def as_json(self) -> dict:
        return {"id": self.id, "username": self.username, "role": self.role, "agent_id": self.agent_id, "display_name": self.display_name}


@dataclass(frozen=True, slots=True)
class Session:
    id: str  # SHA-256 hex of the token; the token itself is never stored
    user_id: int
    created_at: datetime
    last_seen: datetime
    expires_at: datetime
    csrf_token: str


@dataclass(frozen=True, slots=True)
class ActiveSession:
    """A valid session and its user, as :meth:`AccountStore.session_for` finds it."""

    user: User
    session: Session


# Why a login failed.  The store says exactly why (for the log); the web edge
# answers the same "invalid username or password" for the first three, so a
# caller never learns whether the name exists.
UNKNOWN_USER, BAD_PASSWORD, DISABLED, LOCKED = "unknown-user", "bad-password", "disabled", "locked"


@dataclass(frozen=True, slots=True)
class LoginFailure:
    reason: str
    retry_after: float | None = None  # seconds, when LOCKED

    def __bool__(self) -> bool:  # `if result:` reads as "logged in"
        return False


@dataclass(frozen=True, slots=True)
class Account:
    """A user as an administrator sees it (list_users)."""

    user: User
    disabled: bool
    created_at: datetime
    failed_logins: int
    locked_until: datetime | None


@dataclass(frozen=True, slots=True)
class NewUser:
    username: str
    role: str
    agent_id: str | None
    display_name: str | None


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    max_failures: int = 5
    lock_seconds: float = 300.0

    def lock_until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.lock_seconds)


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle: timedelta = timedelta(hours=12)  # longer than a shift's breaks
    absolute: timedelta = timedelta(days=7)
    touch_every: timedelta = timedelta(seconds=60)  # at most one write a minute per session
    # A valid session found is served from this node's memory this long
    # (never past its expiry); zero: every lookup reads the database.
    cache_for: timedelta = timedelta(0)

    def first_expiry(self, now: datetime) -> datetime:
        return min(now + self.idle, now + self.absolute)

    def next_expiry(self, created_at: datetime, now: datetime) -> datetime:
        return min(now + self.idle, created_at + self.absolute)

    def should_touch(self, last_seen: datetime, now: datetime) -> bool:
        return now - last_seen >= self.touch_every


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def normalize_username(username: str) -> str | None:
    """The stored form of a username, or None when it can never exist."""
    if not isinstance(username, str):
        return None
    name = username.strip().lower()
    return name if _USERNAME.fullmatch(name) else None


def validate_new_user(username: str, role: str, agent_id: str | None, display_name: str | None) -> NewUser:
    name = normalize_username(username)
    if name is None:
        raise AccountError("username: 3 to 64 characters among letters, digits and . _ @ -")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if agent_id is not None:
        agent_id = str(agent_id).strip() or None
    if role == AGENT:
        if agent_id is None:
            raise AccountError("an agent account needs the agent id its phone rings as (e.g. 1001)")
        if not _AGENT_ID.fullmatch(agent_id):
            raise AccountError("agent id: 1 to 32 characters among letters, digits and . _ -")
    elif agent_id is not None:
        raise AccountError(f"a {role} account has no agent id (only agent accounts receive pops)")
    if display_name is not None:
        display_name = " ".join(str(display_name).split()) or None
    if display_name is not None and len(display_name) > MAX_DISPLAY_NAME:
        raise AccountError(f"display name: at most {MAX_DISPLAY_NAME} characters")
    return NewUser(name, role, agent_id, display_name)


def new_token() -> str:
    """A session token: 32 random bytes, URL-safe, 43 characters."""
    return secrets.token_urlsafe(32)


def looks_like_token(token: object) -> bool:
    """Cheap shape check, so garbage never costs a database round trip."""
    return isinstance(token, str) and _TOKEN.fullmatch(token) is not None


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)
