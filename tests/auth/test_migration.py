"""0002_users on real SQLite and PostgreSQL: it creates what the models
declare, the store works on it, and it downgrades cleanly."""
from __future__ import annotations

from screenpop.auth.models import sessions, users
from screenpop.auth.store import AccountStore
from screenpop.db import create_engine
from screenpop.interactions.migrate import head_revisions, migrate
from tests.auth.conftest import FAST_N
from tests.migrations import downgrade_to, schema_against_models

MINE = {"users", "sessions"}


async def test_upgrade_creates_the_tables_the_models_declare(dsn):
    applied = await migrate(dsn)
    assert "0002_users" in applied
    engine = create_engine(dsn)
    try:
        tables, diffs = await schema_against_models(engine, MINE)
        assert MINE <= tables
        assert diffs == []
        store = AccountStore(engine, scrypt_n=FAST_N)
        user = await store.create_user("alice", "pw-1234", "agent", "1001")
        assert (await store.authenticate("alice", "pw-1234")) == user
        token, _ = await store.create_session(user)
        assert (await store.session_for(token)).user == user
    finally:
        await engine.dispose()
    assert await migrate(dsn) == []  # at head: nothing to do


async def test_downgrade_removes_only_the_account_tables(dsn):
    await migrate(dsn)
    tables = await downgrade_to(dsn, "0001_interactions")
    assert not (MINE & tables) and "interactions" in tables
    assert "0002_users" in await migrate(dsn)


def test_revision_chain():
    assert users.name == "users" and sessions.name == "sessions"
    from screenpop.migrations.versions import __path__ as versions  # noqa: F401
    import importlib

    module = importlib.import_module("screenpop.migrations.versions.0002_users")
    assert (module.revision, module.down_revision) == ("0002_users", "0001_interactions")
    assert head_revisions()  # one chain the code can upgrade along
