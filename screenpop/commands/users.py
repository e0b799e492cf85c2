"""``screenpop users``: accounts of the agent UI (add, list, disable, enable, passwd).

A password is never a command-line argument: it would sit in the shell
history and in ``ps`` for every user of the machine to read.  It comes from
``--password-file``, from standard input when that is not a terminal (one
line: ``generate-password | screenpop users add …``), or from a prompt
asked twice.

The database is the ``[storage] dsn``; it is brought to the latest schema
first (the same idempotent step ``serve`` runs), so the very first admin
can be created before the service ever started.
"""
from __future__ import annotations

import asyncio
import json
import sys


def register(subparsers) -> None:
    users = subparsers.add_parser("users", help="agent UI accounts: add, list, disable, enable, passwd")
    sub = users.add_subparsers(required=True, metavar="ACTION")

    # allow_abbrev=False: "--password secret" must be refused, not read as --password-file
    add = sub.add_parser("add", help="create an account (password from --password-file, stdin or a prompt)", allow_abbrev=False)
    add.add_argument("username")
    from screenpop.auth.accounts import ROLES

    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--agent-id", help="the id the PBX rings this agent as (required for --role agent)")
    add.add_argument("--name", help="display name")
    add.add_argument("--password-file", help="file whose first line is the password")
    add.set_defaults(func=cmd_add)

    listing = sub.add_parser("list", help="every account, with its state")
    listing.add_argument("--json", action="store_true", help="one JSON object per account")
    listing.set_defaults(func=cmd_list)

    for name, helptext in (("disable", "refuse logins and end every session of the account"), ("enable", "allow logins again")):
        action = sub.add_parser(name, help=helptext)
        action.add_argument("username")
        action.set_defaults(func=cmd_disable if name == "disable" else cmd_enable)

    passwd = sub.add_parser("passwd", help="set a new password (ends the account's sessions)", allow_abbrev=False)
    passwd.add_argument("username")
    passwd.add_argument("--password-file", help="file whose first line is the password")
    passwd.set_defaults(func=cmd_passwd)


def read_password(path: str | None, stdin=None, prompt=None) -> str:
    """The password from a file, a piped stdin, or a terminal prompt asked twice."""
    from screenpop.cli import UsageError

    stdin = sys.stdin if stdin is None else stdin
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                password = handle.readline().rstrip("\r\n")
        except OSError as exc:
            raise UsageError(f"cannot read --password-file {path}: {exc.strerror}") from None
    elif not stdin.isatty():
        password = stdin.readline().rstrip("\r\n")
    else:
        import getpass

        prompt = prompt or getpass.getpass
        password = prompt("Password: ")
        if prompt("Again: ") != password:
            raise UsageError("the two passwords differ; nothing changed")
    if not password:
        raise UsageError("empty password; nothing changed")
    return password


async def _with_store(args, work):
    from screenpop.auth.accounts import AccountError
    from screenpop.auth.passwords import PasswordRejected
    from screenpop.auth.store import AccountStore
    from screenpop.cli import UsageError, settings_from
    from screenpop.db import create_engine
    from screenpop.interactions.migrate import migrate

    settings = settings_from(args)
    await migrate(settings.storage.dsn)
    engine = create_engine(settings.storage.dsn)
    try:
        return await work(AccountStore(engine))
    except (AccountError, PasswordRejected) as exc:
        raise UsageError(str(exc)) from None
    finally:
        await engine.dispose()


async def _audit(store, action: str, username: str, **detail) -> None:
    """The change in the audit log, as done by whoever ran the command."""
    from screenpop.security.audit import AuditEvent, AuditStore, cli_actor

    await AuditStore(store.engine).write([AuditEvent(cli_actor(), action, "user", username, detail=detail)])


def cmd_add(args) -> int:
    password = read_password(args.password_file)

    async def work(store):
        user = await store.create_user(args.username, password, args.role, args.agent_id, args.name)
        await _audit(store, "user.created", user.username, role=user.role, agent_id=user.agent_id)
        agent = f" agent_id={user.agent_id}" if user.agent_id else ""
        print(f"user added username={user.username} role={user.role}{agent}")

    asyncio.run(_with_store(args, work))
    return 0


def cmd_list(args) -> int:
    async def work(store):
        return await store.list_users()

    accounts = asyncio.run(_with_store(args, work))
    if args.json:
        for account in accounts:
            row = {**account.user.as_json(), "disabled": account.disabled, "locked_until": account.locked_until.isoformat() if account.locked_until else None}
            print(json.dumps(row, ensure_ascii=False))
        return 0
    rows = [("USERNAME", "ROLE", "AGENT", "STATE", "NAME")]
    for account in accounts:
        state = "disabled" if account.disabled else ("locked" if account.locked_until else "active")
        user = account.user
        rows.append((user.username, user.role, user.agent_id or "-", state, user.display_name or ""))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])
    return 0


def _set_disabled(args, disabled: bool) -> int:
    async def work(store):
        await store.disable(args.username, disabled)
        await _audit(store, "user.disabled" if disabled else "user.enabled", args.username.strip().lower())

    asyncio.run(_with_store(args, work))
    print(f"user {'disabled' if disabled else 'enabled'} username={args.username.strip().lower()}")
    return 0


def cmd_disable(args) -> int:
    return _set_disabled(args, True)


def cmd_enable(args) -> int:
    return _set_disabled(args, False)


def cmd_passwd(args) -> int:
    password = read_password(args.password_file)

    async def work(store):
        await store.set_password(args.username, password)
        await _audit(store, "user.password_changed", args.username.strip().lower())

    asyncio.run(_with_store(args, work))
    print(f"password changed username={args.username.strip().lower()}")
    return 0
