"""``screenpop audit``: read the audit log (who opened which customer's card,
who changed which record), newest first, with the API's filters.

``screenpop audit purge --before DATE`` deletes the entries older than
``DATE`` (a date: before that day began, UTC; or an ISO time), in batches
of 5,000 rows, and records an ``audit.purged`` entry naming who ran it, the
time and how many went.  A time in the future is refused: it would delete
entries being written now.  The node does the same every hour by itself
with ``[security] audit_retention_days``.
"""
from __future__ import annotations

import asyncio
import json

from screenpop.terminal import printable


def register(subparsers) -> None:
    audit = subparsers.add_parser("audit", help="the audit log: who opened which card, who changed what; purge old entries")
    audit.add_argument("--actor", help="username, agent:ID or cli:NAME")
    audit.add_argument("--action", help="card.viewed, pop.delivered, outcome.set, note.added, user.*, token.*, audit.*")
    audit.add_argument("--target", help="call id, username or token name")
    audit.add_argument("--customer", help="part of the customer key, e.g. sales:c-17")
    audit.add_argument("--since", help="date (2026-11-23) or ISO time")
    audit.add_argument("--until", help="date (inclusive) or ISO time")
    audit.add_argument("--limit", type=int, default=100)
    audit.add_argument("--json", action="store_true", help="one JSON object per entry")
    audit.set_defaults(func=cmd_audit)
    sub = audit.add_subparsers(metavar="ACTION", required=False)
    purge = sub.add_parser("purge", help="delete the entries older than a date (recorded as audit.purged)")
    purge.add_argument("--before", required=True, metavar="DATE",
                       help="delete entries before this date (2026-01-01: before that day, UTC) or ISO time")
    purge.set_defaults(func=cmd_purge)


def _shown(value) -> str:
    """A stored value for the terminal: control characters (escape sequences a
    hostile caller name could carry) shown as escapes, never sent raw."""
    return printable(str(value))


def cmd_audit(args) -> int:
    from agent_ui.audit_api import parse_query
    from agent_ui.jsonio import BadRequest
    from screenpop.cli import UsageError, settings_from
    from screenpop.db import create_engine
    from screenpop.interactions.migrate import migrate
    from screenpop.security.audit import AuditStore

    filters = {k: str(v) for k, v in (("actor", args.actor), ("action", args.action), ("target", args.target),
                                      ("customer", args.customer), ("since", args.since), ("until", args.until),
                                      ("limit", args.limit)) if v is not None}
    try:
        query = parse_query(filters)
    except BadRequest as exc:
        raise UsageError(str(exc)) from None
    settings = settings_from(args)

    async def run():
        await migrate(settings.storage.dsn)
        engine = create_engine(settings.storage.dsn)
        try:
            return await AuditStore(engine).search(query)
        finally:
            await engine.dispose()

    page = asyncio.run(run())
    for entry in page.items:
        row = entry.as_json()
        if args.json:
            print(json.dumps(row, ensure_ascii=False))
        else:
            customer = f" customer={_shown(row['customer'])}" if row["customer"] else ""
            print(f"{row['at']}  {_shown(row['actor'])}  {row['action']}  {row['target_type']}={_shown(row['target_id'])}{customer}")
    if not args.json:
        print(f"-- {len(page.items)} of {page.total} entries")
    return 0


def parse_before(text: str, now=None):
    """``--before``: a date (the start of that day, UTC) or an ISO time (naive
    = UTC), not in the future; UsageError with the reason otherwise."""
    from agent_ui.audit_api import _bound
    from agent_ui.jsonio import BadRequest
    from screenpop.auth.accounts import utcnow
    from screenpop.cli import UsageError

    try:
        before = _bound({"before": text.strip()}, "before", end=False)
    except BadRequest:
        before = None
    if before is None:
        raise UsageError(f"--before {text!r} is not a date like 2026-11-23 or an ISO time like 2026-11-23T08:00:00Z")
    now = now or utcnow()
    if before > now:
        raise UsageError(f"--before {text} is in the future: it would delete entries being written now "
                         f"(the latest allowed is {now.isoformat(timespec='seconds')})")
    return before


def cmd_purge(args) -> int:
    from screenpop.cli import settings_from
    from screenpop.db import create_engine
    from screenpop.interactions.migrate import migrate
    from screenpop.security.audit import AUDIT_PURGED, AuditEvent, AuditStore, cli_actor

    before = parse_before(args.before)
    settings = settings_from(args)

    async def run() -> int:
        await migrate(settings.storage.dsn)
        engine = create_engine(settings.storage.dsn)
        try:
            store = AuditStore(engine)
            count = await store.purge(before)
            await store.write([AuditEvent(cli_actor(), AUDIT_PURGED, "audit", before.isoformat(),
                                          detail={"before": before.isoformat(), "deleted": count})])
            return count
        finally:
            await engine.dispose()

    count = asyncio.run(run())
    print(f"audit entries purged count={count} before={before.isoformat()}")
    return 0
