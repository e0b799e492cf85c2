"""A billing token made with ``screenpop tokens create NAME --scope billing``
works on a running node within ``[security] token_cache_seconds``, with no
billing token in the config file at all (issue 18, point 1: the web edge kept
an empty token set when the database's was still empty at start).

The whole node runs (PBX simulator over AMI, seeded demo databases, the web
app); the token is created in the node's database the way the CLI creates it
(:class:`~screenpop.security.tokens.TokenStore`), then used over real HTTP."""
from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from screenpop.security.tokens import TokenStore
from tests.stack import Stack, seed_databases

ANA_ACCOUNT = "AC-000123"  # the demo persona Ana Garcia's billing account (EUR)
CACHE_SECONDS = 0.3


@pytest.fixture(scope="module")
def demo_dbs(tmp_path_factory):
    return seed_databases(tmp_path_factory.mktemp("dbtoken"), customers=40)


def no_config_token(settings):
    return replace(settings, billing=replace(settings.billing, token=""),
                   security=replace(settings.security, token_cache_seconds=CACHE_SECONDS))


async def test_a_database_token_works_without_any_config_token(demo_dbs, tmp_path):
    async with Stack(demo_dbs, tmp_path, configure=no_config_token) as stack:
        url = f"/api/v1/billing/balances/{ANA_ACCOUNT}"
        body = {"balance": "99.10", "currency": "EUR"}
        status, _ = await stack.api("PUT", url, "spt_not-a-token-at-all", json=body)
        assert status == 401
        token, _ = await TokenStore(stack.service.interactions.engine).create("erp", "billing", "cli:ops")
        created = time.monotonic()
        while True:
            status, answer = await stack.api("PUT", url, token, json=body)
            if status == 200:
                break
            assert status == 401, (status, answer)
            assert time.monotonic() - created < CACHE_SECONDS * 2 + 2, "the CLI's token was never accepted"
            await asyncio.sleep(0.05)
        assert answer["balance"] == "99.10" and answer["account"] == ANA_ACCOUNT
        status, _ = await stack.api("PUT", url, token + "x", json=body)
        assert status == 401
