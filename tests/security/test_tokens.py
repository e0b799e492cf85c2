"""Integration tokens in the database: hashed, named, revocable, and seen by
every node within the cache time (SQLite and PostgreSQL)."""
from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from screenpop.security.models import integration_tokens
from screenpop.security.tokens import CONFIG_NAME, IntegrationTokens, TokenError, TokenStore


class Ticks:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


async def test_only_the_digest_is_stored(engine):
    store = TokenStore(engine)
    token, info = await store.create("erp", "billing", "cli:ops")
    assert token.startswith("spt_") and len(token) >= 40 and info.active
    async with engine.connect() as conn:
        rows = (await conn.execute(select(integration_tokens))).all()
    assert len(rows) == 1 and rows[0].digest == hashlib.sha256(token.encode()).hexdigest()
    assert all(token not in str(value) for value in rows[0])
    other, _ = await store.create("crm", "billing", "cli:ops")
    assert other != token


async def test_names_and_scopes_are_checked(engine):
    store = TokenStore(engine)
    await store.create("erp", "billing", "cli:ops")
    with pytest.raises(TokenError, match="already exists"):
        await store.create("erp", "billing", "cli:ops")
    for bad in ("", "ERP", "has space", "config", "-dash", "x" * 65, "<script>"):
        with pytest.raises(TokenError, match="token name"):
            await store.create(bad, "billing", "cli:ops")
    with pytest.raises(TokenError, match="unknown scope"):
        await store.create("wall", "wallboard", "cli:ops")


async def test_revocation_reaches_every_node_at_the_next_reload(engine):
    store = TokenStore(engine)
    token, _ = await store.create("erp", "billing", "cli:ops")
    header = f"Bearer {token}"
    node_a, node_b = IntegrationTokens(store, "billing"), IntegrationTokens(TokenStore(engine), "billing")
    await node_a.refresh()
    await node_b.refresh()
    assert node_a.identify(header) == "erp" and node_b.check(header)
    assert not node_a.check(f"Bearer {token}x") and not node_a.check(token) and not node_a.check(None)

    revoked = await store.revoke("erp", "ada")
    assert not revoked.active and revoked.revoked_by == "ada"
    assert node_b.check(header)  # until its next reload (every token_cache_seconds)
    await node_b.refresh()
    assert not node_b.check(header)
    with pytest.raises(TokenError, match="already revoked"):
        await store.revoke("erp", "ada")
    with pytest.raises(TokenError, match="no token named"):
        await store.revoke("nope", "ada")
    listed = await store.list()
    assert [(i.name, i.active, i.revoked_by) for i in listed] == [("erp", False, "ada")]


async def test_config_file_tokens_keep_working_beside_database_ones(engine):
    store = TokenStore(engine)
    token, _ = await store.create("erp", "billing", "cli:ops")
    tokens = IntegrationTokens(store, "billing", ["from-the-config-file-0123"])
    assert tokens and tokens.identify("Bearer from-the-config-file-0123") == CONFIG_NAME
    assert not tokens.check(f"Bearer {token}")  # not loaded yet
    await tokens.refresh()
    assert tokens.identify(f"bearer {token}") == "erp"
    assert not IntegrationTokens(None, "billing")  # nothing configured: falsy, refuses everything
    assert not IntegrationTokens(None, "billing").check("Bearer anything")


async def test_a_copy_that_cannot_be_reloaded_expires_fail_closed(engine):
    store = TokenStore(engine)
    token, _ = await store.create("erp", "billing", "cli:ops")
    ticks = Ticks()
    tokens = IntegrationTokens(store, "billing", cache_seconds=1.0, monotonic=ticks)
    await tokens.refresh()
    assert tokens.check(f"Bearer {token}")
    ticks.now += tokens.stale_after - 1
    assert tokens.check(f"Bearer {token}")  # a short outage: the last copy serves
    ticks.now += 2
    assert not tokens.check(f"Bearer {token}")  # too old: a revoked token must not live on
