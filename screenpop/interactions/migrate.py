"""Bring the service's database to the latest schema (Alembic, programmatic).

Every ``serve`` process calls :func:`migrate` at start, so several may do it
at the same moment against one PostgreSQL.  On PostgreSQL the whole upgrade
runs in one transaction under a transaction-level advisory lock: the first
process migrates, the others wait, then find the database at head and do
nothing; a crash mid-way rolls back and releases the lock (PostgreSQL DDL is
transactional).  SQLite is the single-process demo and needs no lock.

No ``alembic.ini``: the script location is this package's
``screenpop/migrations`` folder, set in code.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import weakref
from pathlib import Path
from typing import Callable

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

import screenpop.migrations
from screenpop.db import create_engine

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(screenpop.migrations.__file__).resolve().parent
# A stable 64-bit key of our own, so no other application's advisory lock collides.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"screenpop:migrations").digest()[:8], "big", signed=True)

Progress = Callable[[str], None]

# Alembic keeps its running environment in module globals, so two upgrades
# interleaving in one process (two tasks on SQLite) would trample each other.
_local_locks: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]" = weakref.WeakKeyDictionary()


def alembic_config(script_location: str | Path | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location or MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    return config


def head_revisions(script_location: str | Path | None = None) -> tuple[str, ...]:
    """The revision(s) the code expects the database to be at."""
    return tuple(ScriptDirectory.from_config(alembic_config(script_location)).get_heads())


async def current_revisions(dsn: str) -> tuple[str, ...]:
    engine = create_engine(dsn)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda c: tuple(MigrationContext.configure(c).get_current_heads()))
    finally:
        await engine.dispose()


async def migrate(
    dsn: str,
    progress: Progress | None = None,
    *,
    target: str = "head",
    script_location: str | Path | None = None,
) -> list[str]:
    """Upgrade to ``target``; returns the revisions this call applied (empty
    when the database was already there).  ``progress(message)`` hears one line
    per step, the same line that is logged."""
    applied: list[str] = []

    def say(message: str) -> None:
        log.info("%s", message)
        if progress is not None:
            progress(message)

    def on_step(*, step, **_):
        verb = "upgrade" if step.is_upgrade else "downgrade"
        applied.append(step.up_revision_id)
        doc = (getattr(step.up_revision, "doc", None) or "").strip().splitlines()
        say(f"migration applied step={verb} revision={step.up_revision_id} doc={doc[0] if doc else ''!r}")

    config = alembic_config(script_location)
    config.attributes["on_version_apply"] = on_step

    def upgrade(sync_conn) -> None:
        config.attributes["connection"] = sync_conn
        command.upgrade(config, target)

    engine = create_engine(dsn)
    lock = _local_locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    try:
        async with lock, engine.connect() as conn:
            async with conn.begin():
                if conn.dialect.name == "postgresql":
                    say(f"migration lock waiting key={LOCK_KEY}")
                    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
                    say("migration lock acquired")
                await conn.run_sync(upgrade)
            heads = await conn.run_sync(lambda c: tuple(MigrationContext.configure(c).get_current_heads()))
    finally:
        await engine.dispose()
    state = "upgraded" if applied else "up to date"
    say(f"migration done state={state!r} revision={','.join(heads) or 'base'} applied={len(applied)}")
    return applied


# The name the brief of the service uses; the same function.
upgrade = migrate
