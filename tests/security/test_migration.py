"""0003_security on real SQLite and PostgreSQL: it creates what the models
declare, the stores work on it, and it downgrades to 0002 cleanly."""
from __future__ import annotations

import importlib

from screenpop.db import create_engine
from screenpop.interactions.migrate import migrate
from screenpop.security.audit import AuditEvent, AuditQuery, AuditStore
from screenpop.security.tokens import TokenStore
from tests.migrations import downgrade_to, schema_against_models

MINE = {"integration_tokens", "audit_log"}


async def test_upgrade_creates_the_tables_the_models_declare(dsn):
    applied = await migrate(dsn)
    assert "0003_security" in applied
    engine = create_engine(dsn)
    try:
        tables, diffs = await schema_against_models(engine, MINE)
        assert MINE <= tables
        assert diffs == []
        token, info = await TokenStore(engine).create("erp", "billing", "cli:test")
        assert info.active and len(await TokenStore(engine).active_digests("billing")) == 1
        await AuditStore(engine).write([AuditEvent("ada", "token.created", "token", "erp")])
        assert (await AuditStore(engine).search(AuditQuery())).total == 1
    finally:
        await engine.dispose()
    assert await migrate(dsn) == []


async def test_downgrade_removes_only_the_security_tables(dsn):
    await migrate(dsn)
    tables = await downgrade_to(dsn, "0002_users")
    assert not (MINE & tables) and {"users", "interactions"} <= tables
    assert (await migrate(dsn))[0] == "0003_security"


def test_revision_follows_the_users_one():
    module = importlib.import_module("screenpop.migrations.versions.0003_security")
    assert (module.revision, module.down_revision) == ("0003_security", "0002_users")
