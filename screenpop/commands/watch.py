"""``screenpop watch``: follow an agent's pops from a terminal.

Secrets are read from files, never from the command line, where any user
of the machine could read them in ``ps``.
"""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path


def register(subparsers) -> None:
    watch = subparsers.add_parser(
        "watch",
        help="print an agent's pops, retracts and call updates as they happen",
        description="Connect to a running screenpop's /ws and print each message as one line. "
        "Reconnects with backoff when the server goes away.",
    )
    watch.add_argument("--agent", help="whose pops to follow: an agent may name only itself; "
                       "a supervisor or admin may name any agent (default: the logged-in agent)")
    watch.add_argument("--url", help="the server, e.g. http://host:8080 (default: [web] host and port of --config)")
    creds = watch.add_mutually_exclusive_group(required=True)
    creds.add_argument("--token-file", help="file holding a session token (sent as ?token= on /ws)")
    creds.add_argument("--user", help="log in as this user (POST /api/v1/session); needs --password-file")
    watch.add_argument("--password-file", help="file holding the password of --user ('-' reads standard input)")
    watch.add_argument("--json", action="store_true", help="one JSON message per line on stdout; notices go to stderr")
    watch.set_defaults(func=cmd_watch)


def cmd_watch(args) -> int:
    from screenpop.cli import UsageError
    from screenpop.watch import WatchError, http_base, watch

    token = password = None
    if args.token_file:
        token = _read_secret(args.token_file, "token")
    else:
        if not args.password_file:
            raise UsageError("--user needs --password-file")
        password = _read_secret(args.password_file, "password")
    url = args.url or _url_from_config(args)
    try:
        http_base(url)
        asyncio.run(watch(url, token=token, username=args.user, password=password, agent=args.agent,
                          as_json=args.json, out=sys.stdout, status=sys.stderr if args.json else sys.stdout))
    except WatchError as exc:
        raise UsageError(str(exc)) from None
    return 0


def _read_secret(path: str, what: str) -> str:
    from screenpop.cli import UsageError

    try:
        text = sys.stdin.readline() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the {what} file {path}: {exc.strerror if isinstance(exc, OSError) else 'not UTF-8'}") from None
    lines = text.splitlines()
    secret = lines[0] if lines else ""  # a password may begin or end with a space; only the newline goes
    if what == "token":
        secret = secret.strip()
    if not secret:
        raise UsageError(f"the {what} file {path} is empty")
    return secret


def _url_from_config(args) -> str:
    from screenpop.cli import settings_from

    web = settings_from(args).web
    host = "127.0.0.1" if web.host in ("0.0.0.0", "::", "") else web.host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{web.port}"
