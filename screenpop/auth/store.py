"""Accounts and sessions in the service's database (SQLAlchemy async).

The rules live in :mod:`screenpop.auth.accounts` and
:mod:`screenpop.auth.passwords`; this module only reads and writes rows.

scrypt is deliberately slow (tens of milliseconds, 16 MiB), so it runs in a
worker thread: a burst of logins must not freeze every agent's pops.  A login
for a name that does not exist still pays one scrypt against a fixed dummy
hash, so response time does not tell which names exist.

Several ``serve`` processes share the database, so the failure counter is
incremented in SQL (``failed_logins + 1``), never read-modify-written.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterable

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from screenpop.auth import passwords
from screenpop.auth.accounts import (
    BAD_PASSWORD,
    DISABLED,
    LOCKED,
    UNKNOWN_USER,
    Account,
    AccountError,
    ActiveSession,
    LockoutPolicy,
    LoginFailure,
    Session,
    SessionPolicy,
    User,
    looks_like_token,
    new_csrf_token,
    new_token,
    normalize_username,
    token_digest,
    utcnow,
    validate_new_user,
)
from screenpop.auth.loader import SessionLoader
from screenpop.auth.models import sessions, users
from screenpop.db import writing

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class UnknownUser(AccountError):
    """No account has that username."""


def _user(row) -> User:
    return User(row.id, row.username, row.role, row.agent_id, row.display_name)


_SESSION_COLUMNS = (
    sessions.c.id, sessions.c.user_id, sessions.c.created_at, sessions.c.last_seen, sessions.c.expires_at, sessions.c.csrf_token,
    users.c.username, users.c.role, users.c.agent_id, users.c.display_name, users.c.disabled,
)
_TOUCH = (
    update(sessions)
    .where(sessions.c.id == bindparam("b_id"))
    .values(last_seen=bindparam("b_seen", type_=sessions.c.last_seen.type),
            expires_at=bindparam("b_expires", type_=sessions.c.expires_at.type))
)

# Built once, executed with {"ids": [...]}: a statement built per batch leaves
# a few SQLAlchemy objects in reference cycles each time (screenpop.gc_tuning).
_SESSIONS_BY_ID = (
    select(*_SESSION_COLUMNS).join(users, users.c.id == sessions.c.user_id)
    .where(sessions.c.id.in_(bindparam("ids", expanding=True)))
)
_SESSIONS_ALIVE = (
    select(sessions.c.id, sessions.c.expires_at, users.c.disabled).join(users, users.c.id == sessions.c.user_id)
    .where(sessions.c.id.in_(bindparam("ids", expanding=True)))
)
_DELETE_SESSIONS = delete(sessions).where(sessions.c.id.in_(bindparam("ids", expanding=True)))


def _session(row) -> Session:
    return Session(row.id, row.user_id, row.created_at, row.last_seen, row.expires_at, row.csrf_token)


class AccountStore:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        lockout: LockoutPolicy = LockoutPolicy(),
        sessions: SessionPolicy = SessionPolicy(),
        scrypt_n: int = passwords.N,
        clock: Clock = utcnow,
    ):
        self.engine = engine
        self.lockout = lockout
        self.session_policy = sessions
        self.scrypt_n = scrypt_n  # lower only in tests
        self.clock = clock
        self._dummy_hash = passwords.hash_password("not a password of anyone", n=scrypt_n)
        # session_for: concurrent lookups share one query, valid sessions are
        # kept for sessions.cache_for (screenpop.auth.loader).
        self.session_loader = SessionLoader(self._load_sessions, clock=clock, cache_seconds=sessions.cache_for.total_seconds())

    # ------------------------------------------------------------ passwords

    async def _hash(self, password: str, role: str | None = None) -> str:
        """``role``: a password a person sets for that role, held to
        :func:`~screenpop.auth.passwords.check_strength` (None: only the basic checks)."""
        passwords.check_acceptable(password)
        if role is not None:
            passwords.check_strength(password, role)
        return await asyncio.to_thread(passwords.hash_password, password, n=self.scrypt_n)

    async def _verify(self, stored: str, password: str) -> bool:
        return await asyncio.to_thread(passwords.verify_password, stored, password)

    # ----------------------------------------------------------------- users

    async def create_user(self, username: str, password: str, role: str, agent_id: str | None = None, display_name: str | None = None,
                          *, strength_checked: bool = True) -> User:
        """``strength_checked=False``: only for the demo's own accounts
        (:func:`ensure_demo_users`, password "demo"); every account a person
        creates is held to the role's password rule."""
        new = validate_new_user(username, role, agent_id, display_name)
        passwords.check_acceptable(password)
        if strength_checked and await self.get_user(new.username) is not None:
            raise AccountError(await self._conflict(new.username, new.agent_id))  # "already exists" before "too weak"
        hashed = await self._hash(password, new.role if strength_checked else None)
        now = self.clock()
        try:
            async with writing(self.engine) as conn:
                result = await conn.execute(
                    users.insert().values(
                        username=new.username, display_name=new.display_name, role=new.role, agent_id=new.agent_id,
                        password_hash=hashed, disabled=False, failed_logins=0, created_at=now, password_changed_at=now,
                    )
                )
                user_id = result.inserted_primary_key[0]
        except IntegrityError:
            raise AccountError(await self._conflict(new.username, new.agent_id)) from None
        log.info("user created user=%s role=%s agent_id=%s", new.username, new.role, new.agent_id)
        return User(user_id, new.username, new.role, new.agent_id, new.display_name)

    async def _conflict(self, username: str, agent_id: str | None) -> str:
        async with self.engine.connect() as conn:
            if (await conn.execute(select(users.c.id).where(users.c.username == username))).first():
                return f"a user named {username!r} already exists"
            if agent_id and (await conn.execute(select(users.c.username).where(users.c.agent_id == agent_id))).first():
                return f"agent id {agent_id} already belongs to another account"
        return "the user conflicts with an existing one"

    async def get_user(self, username: str) -> User | None:
        name = normalize_username(username)
        if name is None:
            return None
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.username == name))).first()
        return _user(row) if row else None

    async def list_users(self) -> list[Account]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(users).order_by(users.c.username))).all()
        return [Account(_user(r), bool(r.disabled), r.created_at, r.failed_logins, r.locked_until) for r in rows]

    async def set_password(self, username: str, password: str) -> None:
        """Also ends every session of the user: a password is changed because
        it may be known to someone else, whose sessions must not survive."""
        user = await self.get_user(username)
        hashed = await self._hash(password, user.role if user is not None else None)  # no user: _update_user says so
        user_id = await self._update_user(username, password_hash=hashed, password_changed_at=self.clock(), failed_logins=0, locked_until=None)
        await self.end_sessions(user_id)
        log.info("password changed user=%s", normalize_username(username))

    async def disable(self, username: str, disabled: bool = True) -> None:
        user_id = await self._update_user(username, disabled=disabled)
        if disabled:
            ended = await self.end_sessions(user_id)
            log.info("user disabled user=%s sessions_ended=%d", normalize_username(username), ended)
        else:
            log.info("user enabled user=%s", normalize_username(username))

    async def _update_user(self, username: str, **values) -> int:
        name = normalize_username(username)
        async with writing(self.engine) as conn:
            row = (await conn.execute(select(users.c.id).where(users.c.username == name))).first() if name else None
            if row is None:
                raise UnknownUser(f"no user named {username!r}")
            await conn.execute(update(users).where(users.c.id == row.id).values(**values))
        return row.id

    # ---------------------------------------------------------------- login

    async def authenticate(self, username: str, password: str) -> User | LoginFailure:
        """The user, or why not.  The reason is for the log and the lockout
        message; callers must show unknown-user, bad-password and disabled
        the same way."""
        name = normalize_username(username)
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.username == name))).first() if name else None
        if row is None:
            await self._verify(self._dummy_hash, password if isinstance(password, str) else "")
            return LoginFailure(UNKNOWN_USER)
        now = self.clock()
        if row.locked_until is not None and row.locked_until > now:
            return LoginFailure(LOCKED, (row.locked_until - now).total_seconds())
        ok = await self._verify(row.password_hash, password if isinstance(password, str) else "")
        if row.disabled:
            return LoginFailure(DISABLED)
        if not ok:
            return await self._failed(row.id, now)
        values = {"failed_logins": 0, "locked_until": None, "last_login_at": now}
        if passwords.needs_rehash(row.password_hash, n=self.scrypt_n):
            values["password_hash"] = await self._hash(password)
        async with writing(self.engine) as conn:
            await conn.execute(update(users).where(users.c.id == row.id).values(**values))
        return _user(row)

    async def _failed(self, user_id: int, now: datetime) -> LoginFailure:
        async with writing(self.engine) as conn:
            await conn.execute(update(users).where(users.c.id == user_id).values(failed_logins=users.c.failed_logins + 1))
            count = (await conn.execute(select(users.c.failed_logins).where(users.c.id == user_id))).scalar_one()
            if count >= self.lockout.max_failures:
                until = self.lockout.lock_until(now)
                await conn.execute(update(users).where(users.c.id == user_id).values(locked_until=until, failed_logins=0))
                log.warning("account locked user_id=%s failures=%d until=%s", user_id, count, until.isoformat())
        return LoginFailure(BAD_PASSWORD)

    # ------------------------------------------------------------- sessions

    async def create_session(self, user: User) -> tuple[str, Session]:
        """A new session; the token is returned once and only its digest is kept."""
        token, now = new_token(), self.clock()
        session = Session(token_digest(token), user.id, now, now, self.session_policy.first_expiry(now), new_csrf_token())
        async with writing(self.engine) as conn:
            await conn.execute(delete(sessions).where(sessions.c.user_id == user.id, sessions.c.expires_at <= now))
            await conn.execute(
                sessions.insert().values(
                    id=session.id, user_id=user.id, created_at=now, last_seen=now,
                    expires_at=session.expires_at, csrf_token=session.csrf_token,
                )
            )
        return token, session

    async def session_for(self, token: str) -> ActiveSession | None:
        """The live session of ``token`` and its (enabled) user, sliding its
        expiry.  Lookups made at the same moment share one query, and a valid
        session may come from the short cache (see :mod:`screenpop.auth.loader`)."""
        if not looks_like_token(token):
            return None
        return await self.session_loader.get(token_digest(token))

    async def _load_sessions(self, ids: list[str]) -> dict[str, ActiveSession]:
        """The valid ones of these sessions (by stored id), in one query; the
        dead ones found are deleted and the live ones slid in one write."""
        now = self.clock()
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_SESSIONS_BY_ID, {"ids": ids})).all()
        found, slid, dead, touches = {}, {}, [], []
        for row in rows:
            if row.expires_at <= now or row.disabled:
                dead.append(row.id)
                continue
            user = User(row.user_id, row.username, row.role, row.agent_id, row.display_name)
            found[row.id] = ActiveSession(user, Session(row.id, row.user_id, row.created_at, row.last_seen, row.expires_at, row.csrf_token))
            if self.session_policy.should_touch(row.last_seen, now):
                expires = self.session_policy.next_expiry(row.created_at, now)
                touches.append({"b_id": row.id, "b_seen": now, "b_expires": expires})
                slid[row.id] = ActiveSession(user, Session(row.id, row.user_id, row.created_at, now, expires, row.csrf_token))
        if dead or touches:
            try:
                async with writing(self.engine) as conn:
                    if dead:
                        await conn.execute(_DELETE_SESSIONS, {"ids": dead})
                    if touches:  # one executemany for the whole batch
                        await conn.execute(_TOUCH, touches)
            except Exception as exc:  # the reads stand: a session read valid is not refused for a failed touch
                log.warning("session touch failed sessions=%d reason=%s", len(touches) + len(dead), type(exc).__name__)
            else:
                found.update(slid)
        return found

    async def session_alive(self, session_id: str) -> bool:
        """Is the session (by its stored id) still valid, its user enabled?
        For long-lived connections re-checking themselves; does not slide."""
        query = select(sessions.c.expires_at, users.c.disabled).join(users, users.c.id == sessions.c.user_id).where(sessions.c.id == session_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        alive = row is not None and row.expires_at > self.clock() and not row.disabled
        if not alive:
            self.session_loader.evict([session_id])
        return alive

    async def sessions_alive(self, session_ids: Iterable[str], *, batch: int = 5000) -> set[str]:
        """Which of these sessions (by stored id) are still valid, their users
        enabled.  One query for every open socket at once, instead of one per
        socket (2,000 agents' sockets were 67 queries/s); ``batch`` keeps each
        IN list under the drivers' parameter limits.  Does not slide."""
        ids, alive, now = sorted(set(session_ids)), set(), self.clock()
        async with self.engine.connect() as conn:
            for i in range(0, len(ids), batch):
                rows = await conn.execute(_SESSIONS_ALIVE, {"ids": ids[i:i + batch]})
                alive.update(row.id for row in rows if row.expires_at > now and not row.disabled)
        if len(alive) < len(ids):  # ended, perhaps on another node: not served from this node's cache either
            self.session_loader.evict(set(ids) - alive)
        return alive

    async def end_session(self, token: str) -> bool:
        if not looks_like_token(token):
            return False
        async with writing(self.engine) as conn:
            result = await conn.execute(delete(sessions).where(sessions.c.id == token_digest(token)))
        self.session_loader.evict([token_digest(token)])
        return result.rowcount > 0

    async def end_sessions(self, user_id: int) -> int:
        async with writing(self.engine) as conn:
            result = await conn.execute(delete(sessions).where(sessions.c.user_id == user_id))
        self.session_loader.evict_user(user_id)
        return result.rowcount

    async def purge_expired(self) -> int:
        async with writing(self.engine) as conn:
            result = await conn.execute(delete(sessions).where(sessions.c.expires_at <= self.clock()))
        return result.rowcount

    async def count_sessions(self, username: str) -> int:
        name = normalize_username(username)
        query = select(func.count()).select_from(sessions.join(users, users.c.id == sessions.c.user_id)).where(users.c.username == name)
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).scalar_one()


# ---------------------------------------------------------------- demo users


@dataclass(frozen=True, slots=True)
class DemoUser:
    username: str
    password: str
    role: str
    agent_id: str | None = None
    display_name: str | None = None


async def ensure_demo_users(store: AccountStore, demo_users: Iterable[DemoUser]) -> list[str]:
    """Create the demo's accounts that do not exist yet; returns the names
    created.  Existing accounts are left alone (their password may have been
    changed on purpose), so running the demo twice is harmless."""
    created = []
    for demo in demo_users:
        if await store.get_user(demo.username) is not None:
            continue
        try:
            await store.create_user(demo.username, demo.password, demo.role, demo.agent_id, demo.display_name,
                                    strength_checked=False)  # the demo's "demo" stays the demo's
        except AccountError:
            if await store.get_user(demo.username) is None:  # not a concurrent creation: a real problem
                raise
            continue
        created.append(normalize_username(demo.username))
    return created
