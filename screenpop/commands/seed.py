"""``screenpop seed``: fill the demo sales, billing and support databases.

With a configuration named (``--config`` or ``$SCREENPOP_CONFIG``), fills
its ``sales``, ``billing`` and ``support`` sources; otherwise three SQLite
files under ``var/demo/`` of the working directory (where ``make demo``,
run in the checkout, reads them).  ``--sales-dsn`` etc. override either.
Any SQLAlchemy DSN works, PostgreSQL through COPY.  The databases it fills
are said on stderr first.  Progress goes to
stderr: one line redrawn in place on a terminal, a line every ten percent
when stderr is a file or a pipe (CI logs must not fill with carriage returns).
"""
from __future__ import annotations

import asyncio
import sys
import time

DEFAULT_CUSTOMERS = 1000


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "seed", help="fill the demo sales/billing/support databases with realistic, untidy customers",
        description="Create the three demo business databases and fill them with the fixed demo personas "
                    "plus N random customers: the same people, keys and numbers for a given --seed (dates follow "
                    "today). A PostgreSQL database that does not exist is created; ?search_path=NAME in a "
                    "PostgreSQL DSN puts the tables in that schema. Existing demo tables are replaced only with --force.")
    parser.add_argument("--customers", type=_count, default=DEFAULT_CUSTOMERS, metavar="N",
                        help=f"random customers to generate (default {DEFAULT_CUSTOMERS})")
    parser.add_argument("--seed", type=int, default=1, metavar="S", help="random seed (default 1)")
    for system in ("sales", "billing", "support"):
        parser.add_argument(f"--{system}-dsn", metavar="DSN",
                            help=f"SQLAlchemy DSN of the {system} database (default: the {system} source of --config "
                                 f"or $SCREENPOP_CONFIG when one is given, else sqlite+aiosqlite:///var/demo/{system}.sqlite3)")
    parser.add_argument("--force", action="store_true", help="replace the demo tables if they already exist")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(func=cmd_seed)


def _count(value: str) -> int:
    import argparse

    try:
        number = int(value.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def cmd_seed(args) -> int:
    from adapters.demo import DEFAULT_DSNS, SYSTEMS, SeedError, seed_demo
    from screenpop.cli import UsageError

    dsns = {**_configured_dsns(args, SYSTEMS, quiet=args.quiet),
            **{s: d for s in SYSTEMS if (d := getattr(args, f"{s}_dsn"))}}
    if not args.quiet:
        from screenpop.config_paths import describe_dsn

        shown = ", ".join(f"{s}={describe_dsn(dsns.get(s, DEFAULT_DSNS[s]))}" for s in SYSTEMS)
        print(f"screenpop: seeding {shown}", file=sys.stderr, flush=True)
    bar = None if args.quiet else ProgressLine(sys.stderr)
    try:
        result = asyncio.run(seed_demo(dsns, args.customers, args.seed, bar, force=args.force))
    except SeedError as exc:
        if bar:
            bar.abort()
        raise UsageError(str(exc)) from None
    rows = sum(result.rows.values())
    print(f"seeded {result.customers:,} customers, {rows:,} rows in {result.seconds:.1f} s", file=sys.stderr)
    return 0


def _configured_dsns(args, systems, *, quiet: bool) -> dict[str, str]:
    """The demo systems' DSNs of a configuration the user named, {} when none
    was named: seeding writes tables, so it never follows a default."""
    import os

    from screenpop.cli import UsageError, settings_from
    from screenpop.config_paths import CONFIG_ENV

    if not (getattr(args, "config", None) or os.environ.get(CONFIG_ENV)):
        return {}
    settings = settings_from(args, database=False, announce=not quiet)
    dsns = {s.name: s.dsn for s in settings.sources if s.name in systems and s.dsn}
    missing = [s for s in systems if s not in dsns and not getattr(args, f"{s}_dsn")]
    if missing:
        raise UsageError(f"the configuration has no sql source named {', '.join(missing)}; "
                         f"give {' '.join(f'--{s}-dsn DSN' for s in missing)}")
    return dsns


class ProgressLine:
    """Draws seed progress on a stream; a terminal gets one line redrawn in place."""

    WIDTH = 30

    def __init__(self, stream):
        self.stream = stream
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.next_step = 0
        self.drawn = False
        self.last_draw = 0.0

    def __call__(self, p) -> None:
        percent = int(p.fraction * 100)
        line = (f"seed {p.phase:<7} {percent:3d}% {p.customers_done:,}/{p.customers_total:,} customers, "
                f"{p.rows_done:,}/{p.rows_total:,} rows, {p.seconds:.1f} s")
        if self.tty:
            filled = self.WIDTH * percent // 100
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            now = time.monotonic()
            if p.phase == "load" and now - self.last_draw < 0.2:
                return
            self.last_draw = now
            self.stream.write(f"\r[{bar}] {line}\x1b[K")
            if p.phase == "done":
                self.stream.write("\n")
            self.drawn = p.phase != "done"
        elif p.phase != "load" or percent >= self.next_step:
            self.stream.write(line + "\n")
            if p.phase == "load":
                self.next_step = (percent // 10 + 1) * 10
        self.stream.flush()

    def abort(self) -> None:
        if self.tty and self.drawn:
            self.stream.write("\n")
            self.stream.flush()
