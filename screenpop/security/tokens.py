"""Bearer tokens of integration clients, kept in the database, revocable.

``screenpop tokens create erp --scope billing`` makes a high-entropy token
(256 bits), prints it once and stores only its SHA-256; ``revoke`` marks the
row, it is never deleted (the audit log keeps naming it).

Every node checks presented tokens against an in-memory copy of the active
digests that :class:`IntegrationTokens` reloads from the database every
``[security] token_cache_seconds``: a revocation on one node (or from the
CLI) takes effect everywhere within that time, no restart, and no request
waits on the database.  Tokens from the config file (``[billing] token``)
keep working beside the database ones, under the name ``config``.

If the database stays unreachable, the last good copy is used for at most
``STALE_FACTOR`` refresh periods (at least a minute), then database tokens
are refused (fail closed): a revoked token must not live on through an outage.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterable

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from screenpop.auth.accounts import utcnow
from screenpop.db import writing
from screenpop.security.models import integration_tokens

log = logging.getLogger(__name__)

SCOPES = ("billing",)
PREFIX = "spt_"  # recognisable in a secret scanner, never in a log
CONFIG_NAME = "config"
STALE_FACTOR = 12
MIN_STALE_SECONDS = 60.0
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class TokenError(ValueError):
    """A token cannot be created or revoked as asked; the message says why."""


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def digest_hex(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name == CONFIG_NAME:
        raise TokenError(f"token name {name!r}: 1-64 of a-z 0-9 . _ -, starting with a letter or digit, not {CONFIG_NAME!r}")
    return name


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise TokenError(f"unknown scope {scope!r}; scopes are {', '.join(SCOPES)}")
    return scope


@dataclass(frozen=True, slots=True)
class TokenInfo:
    name: str
    scope: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_json(self) -> dict:
        return {"name": self.name, "scope": self.scope, "created_at": self.created_at.isoformat(),
                "created_by": self.created_by, "active": self.active,
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None, "revoked_by": self.revoked_by}


def _info(row) -> TokenInfo:
    return TokenInfo(row.name, row.scope, row.created_at, row.created_by, row.revoked_at, row.revoked_by)


class TokenStore:
    """Rows of ``integration_tokens``; no caching here."""

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = utcnow):
        self.engine = engine
        self.clock = clock

    async def create(self, name: str, scope: str, by: str) -> tuple[str, TokenInfo]:
        """A new token; returned once, only its digest is stored."""
        check_name(name)
        check_scope(scope)
        token, now = new_token(), self.clock()
        try:
            async with writing(self.engine) as conn:
                await conn.execute(integration_tokens.insert().values(
                    name=name, scope=scope, digest=digest_hex(token), created_at=now, created_by=by))
        except IntegrityError:
            raise TokenError(f"a token named {name!r} already exists (revoked ones keep their name)") from None
        log.info("integration token created name=%s scope=%s by=%s", name, scope, by)
        return token, TokenInfo(name, scope, now, by)

    async def list(self) -> list[TokenInfo]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(integration_tokens).order_by(integration_tokens.c.name))).all()
        return [_info(r) for r in rows]

    async def revoke(self, name: str, by: str) -> TokenInfo:
        now = self.clock()
        async with writing(self.engine) as conn:
            row = (await conn.execute(select(integration_tokens).where(integration_tokens.c.name == name))).first()
            if row is None:
                raise TokenError(f"no token named {name!r}")
            if row.revoked_at is not None:
                raise TokenError(f"token {name!r} was already revoked at {row.revoked_at.isoformat()}")
            await conn.execute(update(integration_tokens).where(integration_tokens.c.id == row.id)
                               .values(revoked_at=now, revoked_by=by))
        log.info("integration token revoked name=%s by=%s", name, by)
        return TokenInfo(row.name, row.scope, row.created_at, row.created_by, now, by)

    async def active_digests(self, scope: str) -> dict[bytes, str]:
        """digest -> name of every active token of ``scope``."""
        query = select(integration_tokens.c.digest, integration_tokens.c.name).where(
            integration_tokens.c.scope == scope, integration_tokens.c.revoked_at.is_(None))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {bytes.fromhex(r.digest): r.name for r in rows}


class IntegrationTokens:
    """The tokens of one scope as the web edge checks them; a drop-in for
    :class:`agent_ui.tokens.BearerTokens` (``check(authorization)``, truthiness).

    ``check`` is synchronous and never touches the database; :meth:`run`
    (started with the app) reloads the database tokens every ``cache_seconds``."""

    def __init__(self, store: TokenStore | None, scope: str, config_tokens: Iterable[str] = (), *,
                 cache_seconds: float = 5.0, monotonic: Callable[[], float] = time.monotonic):
        self.store = store
        self.scope = check_scope(scope)
        self.cache_seconds = cache_seconds
        self.monotonic = monotonic
        self._config = [hashlib.sha256(t.encode("utf-8")).digest() for t in config_tokens if t]
        self._db: dict[bytes, str] = {}
        self._loaded_at: float | None = None
        self.stale_after = max(MIN_STALE_SECONDS, STALE_FACTOR * cache_seconds)

    def __bool__(self) -> bool:
        return bool(self._config) or bool(self._current())

    def _current(self) -> dict[bytes, str]:
        if self._loaded_at is None or self.monotonic() - self._loaded_at > self.stale_after:
            return {}
        return self._db

    async def refresh(self) -> int:
        """Reload the database tokens now; returns how many are active."""
        if self.store is None:
            return 0
        self._db = await self.store.active_digests(self.scope)
        self._loaded_at = self.monotonic()
        return len(self._db)

    async def run(self) -> None:
        """Reload forever; a failed reload keeps the last copy until it is stale."""
        while True:
            await asyncio.sleep(self.cache_seconds)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("integration tokens reload failed scope=%s reason=%s", self.scope, type(exc).__name__)

    def identify(self, authorization: str | None) -> str | None:
        """The name of the token in ``Authorization: Bearer …``, or None."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        presented = hashlib.sha256(token.encode("utf-8")).digest()
        found = None
        for known in self._config:  # every candidate compared: no early exit to time
            if hmac.compare_digest(presented, known):
                found = CONFIG_NAME
        for known, name in self._current().items():
            if hmac.compare_digest(presented, known):
                found = name
        return found

    def check(self, authorization: str | None) -> bool:
        return self.identify(authorization) is not None
