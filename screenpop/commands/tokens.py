"""``screenpop tokens``: bearer tokens of integration clients (create, list, revoke).

``create NAME --scope billing`` prints the token once, on standard output
alone (``screenpop tokens create erp --scope billing > erp.token``); only its
SHA-256 is stored, so a lost token is revoked and a new one created, never
shown again.  ``revoke NAME`` takes effect on every node within
``[security] token_cache_seconds``, without a restart.  Each create and
revoke is an entry of the audit log, under the name of who ran the command.

The database is the ``[storage] dsn``, brought to the latest schema first.
"""
from __future__ import annotations

import asyncio
import json
import sys


def register(subparsers) -> None:
    tokens = subparsers.add_parser("tokens", help="integration bearer tokens: create, list, revoke")
    sub = tokens.add_subparsers(required=True, metavar="ACTION")
    create = sub.add_parser("create", help="make a token and print it once")
    create.add_argument("name", help="who uses it, e.g. erp-billing (a-z 0-9 . _ -)")
    create.add_argument("--scope", required=True, choices=["billing"], help="what it may call")
    create.set_defaults(func=cmd_create)
    listing = sub.add_parser("list", help="every token (never the token itself), active and revoked")
    listing.add_argument("--json", action="store_true", help="one JSON object per token")
    listing.set_defaults(func=cmd_list)
    revoke = sub.add_parser("revoke", help="refuse the token from now on, on every node")
    revoke.add_argument("name")
    revoke.set_defaults(func=cmd_revoke)


async def _with_store(args, work):
    from screenpop.cli import UsageError, settings_from
    from screenpop.db import create_engine
    from screenpop.interactions.migrate import migrate
    from screenpop.security.tokens import TokenError, TokenStore

    settings = settings_from(args)
    await migrate(settings.storage.dsn)
    engine = create_engine(settings.storage.dsn)
    try:
        return await work(TokenStore(engine))
    except TokenError as exc:
        raise UsageError(str(exc)) from None
    finally:
        await engine.dispose()


async def _audit(store, action: str, name: str, **detail) -> None:
    from screenpop.security.audit import AuditEvent, AuditStore, cli_actor

    await AuditStore(store.engine).write([AuditEvent(cli_actor(), action, "token", name, detail=detail)])


def cmd_create(args) -> int:
    from screenpop.security.audit import cli_actor

    async def work(store):
        token, info = await store.create(args.name, args.scope, cli_actor())
        await _audit(store, "token.created", info.name, scope=info.scope)
        return token, info

    token, info = asyncio.run(_with_store(args, work))
    print(token)
    print(f"token created name={info.name} scope={info.scope}: shown once, store it now "
          "(only its SHA-256 is kept)", file=sys.stderr)
    return 0


def cmd_list(args) -> int:
    async def work(store):
        return await store.list()

    infos = asyncio.run(_with_store(args, work))
    if args.json:
        for info in infos:
            print(json.dumps(info.as_json(), ensure_ascii=False))
        return 0
    rows = [("NAME", "SCOPE", "STATE", "CREATED", "BY")]
    for info in infos:
        state = "active" if info.active else f"revoked {info.revoked_at:%Y-%m-%d %H:%M} by {info.revoked_by}"
        rows.append((info.name, info.scope, state, f"{info.created_at:%Y-%m-%d %H:%M}", info.created_by))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def cmd_revoke(args) -> int:
    from screenpop.security.audit import cli_actor

    async def work(store):
        info = await store.revoke(args.name, cli_actor())
        await _audit(store, "token.revoked", info.name, scope=info.scope)
        return info

    info = asyncio.run(_with_store(args, work))
    print(f"token revoked name={info.name} scope={info.scope}")
    return 0
