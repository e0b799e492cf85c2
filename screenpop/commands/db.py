"""``screenpop db upgrade``: bring the service's database to the latest schema.

``serve`` does the same at every start; this command is for operators who
migrate before rolling out new processes, and it prints each revision as it
is applied so a slow migration is visibly progressing.
"""
from __future__ import annotations

import asyncio
import sys


def register(subparsers) -> None:
    db = subparsers.add_parser("db", help="the service's own database (interaction log, users)")
    sub = db.add_subparsers(required=True, metavar="ACTION")
    upgrade = sub.add_parser("upgrade", help="apply every pending migration (safe to run again)")
    upgrade.add_argument("--dsn", help="database URL (default: [storage] dsn of the configuration)")
    upgrade.set_defaults(func=cmd_upgrade)
    current = sub.add_parser("current", help="print the revision the database is at, and the latest one")
    current.add_argument("--dsn", help="database URL (default: [storage] dsn of the configuration)")
    current.set_defaults(func=cmd_current)


def _dsn(args) -> str:
    """``--dsn``, else the ``[storage] dsn`` of the configuration every
    command uses (``screenpop.cli.settings_from``); either way said on stderr."""
    from screenpop.cli import settings_from
    from screenpop.config_paths import describe_dsn

    if args.dsn:
        print(f"screenpop: database {describe_dsn(args.dsn)} (--dsn)", file=sys.stderr, flush=True)
        return args.dsn
    return settings_from(args).storage.dsn


def cmd_upgrade(args) -> int:
    from screenpop.interactions.migrate import migrate

    dsn = _dsn(args)
    try:
        applied = asyncio.run(migrate(dsn, progress=lambda line: print(line, flush=True)))
    except Exception as exc:
        print(f"screenpop: migration failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr)
        return 1
    print(f"database at head, {len(applied)} revision(s) applied")
    return 0


def cmd_current(args) -> int:
    from screenpop.interactions.migrate import current_revisions, head_revisions

    try:
        current = asyncio.run(current_revisions(_dsn(args)))
    except Exception as exc:
        print(f"screenpop: cannot read the database: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    head = head_revisions()
    print(f"current={','.join(current) or 'none'} head={','.join(head)} {'up to date' if set(current) == set(head) else 'upgrade needed'}")
    return 0 if set(current) == set(head) else 3
