"""The ``screenpop`` command.

Each sub-command is a small function that parses nothing itself: argparse
does that here, the work lives in the packages.  Errors a user can fix (a
missing file, a broken config) print one line and exit 2, never a traceback.
"""
from __future__ import annotations

import argparse
import asyncio
import errno
import sys
from contextlib import contextmanager
from pathlib import Path

from screenpop.config import ConfigError, Settings
from screenpop.config_paths import CONFIG_ENV, choose_config
from screenpop.logs import setup_logging

LOG_LEVELS = ["debug", "info", "warning", "error"]


class UsageError(Exception):
    """Something the user can fix; printed as one line."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    try:
        return args.func(args) or 0
    except (UsageError, ConfigError) as exc:
        print(f"screenpop: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="screenpop", description="Call-center screen pop for Asterisk.")
    parser.add_argument("--config", help="TOML configuration file, before or after the sub-command (default: "
                        f"${CONFIG_ENV}, else the demo's config/demo.toml; every key overridable by SCREENPOP_SECTION__KEY)")
    parser.add_argument("--log-level", default="warning", choices=LOG_LEVELS)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    replay = sub.add_parser("replay", help="turn a raw AMI capture into call events, no server needed")
    replay.add_argument("capture", help="capture file as Asterisk sent it ('-' for standard input)")
    replay.add_argument("--json", action="store_true", help="one JSON call event per line")
    replay.set_defaults(func=cmd_replay)

    demo = sub.add_parser("demo", help="run everything on this machine with the built-in PBX simulator")
    demo.add_argument("--rate", type=float, default=None,
                      help="simulated calls per second (default: what keeps the demo's agents about 72 %% busy)")
    demo.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: run until Ctrl-C)")
    demo.add_argument("--speed", type=float, default=1.0, help="play calls this many times faster than real time")
    demo.add_argument("--port", type=int, default=None, help="web port (default: [web] port, 8080)")
    demo.add_argument("--customers", type=int, default=20_000, help="customers to seed when the demo databases are missing")
    demo.add_argument("--timeline", action="store_true", help="also print the live call timeline")
    demo.add_argument("--json", action="store_true", help="with --timeline: call events as JSON lines")
    demo.set_defaults(func=cmd_demo)
    for register in _command_modules():
        register(sub)
    _global_options_everywhere(parser)
    return parser


def _global_options_everywhere(parser: argparse.ArgumentParser) -> None:
    """``--config`` and ``--log-level`` are accepted after any sub-command
    too (``screenpop serve --config FILE``, as the README writes it), at any
    depth (``screenpop users list --config FILE``).  SUPPRESS as the default:
    a sub-command that is not given one keeps the value given before it."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for child in set(action.choices.values()):
            if "--config" not in child._option_string_actions:
                child.add_argument("--config", default=argparse.SUPPRESS, help="TOML configuration file "
                                   f"(default: ${CONFIG_ENV}, else the demo's config/demo.toml)")
            if "--log-level" not in child._option_string_actions:
                child.add_argument("--log-level", default=argparse.SUPPRESS, choices=LOG_LEVELS)
            _global_options_everywhere(child)


def _command_modules():
    """Every module of ``screenpop.commands`` adds its sub-command(s) through
    ``register(subparsers)``; its work is imported inside the command, so
    ``screenpop --help`` stays fast."""
    import importlib
    import pkgutil

    import screenpop.commands as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        yield importlib.import_module(f"{package.__name__}.{info.name}").register


def settings_from(args, *, database: bool = True, announce: bool = True) -> Settings:
    """The settings every command runs with (:mod:`screenpop.config_paths`:
    ``--config``, else ``$SCREENPOP_CONFIG``, else the demo's config), and
    one line on stderr saying which file and which database (``database=False``
    for commands that use none; ``announce=False`` for a ``--quiet``), so
    nobody wonders whose data they see."""
    choice = choose_config(getattr(args, "config", None))
    settings = choice.load()
    if announce:
        print(f"screenpop: {choice.describe(settings, database=database)}", file=sys.stderr, flush=True)
    return settings


# ------------------------------------------------------------------ replay


def cmd_replay(args) -> int:
    from telephony.agents import AgentResolver
    from telephony.replay import ReplayResult, read_chunks, replay, timeline_line

    if args.capture != "-" and not Path(args.capture).is_file():
        raise UsageError(f"capture {args.capture} does not exist")
    settings = settings_from(args, database=False)
    stream = sys.stdin.buffer if args.capture == "-" else Path(args.capture).open("rb")
    result: list[ReplayResult] = []
    out = sys.stdout
    try:
        for event in replay(read_chunks(stream), AgentResolver(settings.agents.patterns), result):
            out.write(timeline_line(event, args.json) + "\n")
    except BrokenPipeError:  # `screenpop replay … | head`
        return 0
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    (summary,) = result
    if summary.stats.skipped or summary.stats.invalid_utf8:
        print(
            f"screenpop: {summary.stats.skipped} damaged AMI message(s) or line(s) skipped, "
            f"{summary.stats.invalid_utf8} line(s) with invalid UTF-8",
            file=sys.stderr,
        )
    if not args.json:
        print(f"-- {summary.stats.messages} AMI messages, {summary.active_calls} call(s) still in progress at the end", file=sys.stderr)
    return 0


# -------------------------------------------------------------------- demo


def cmd_demo(args) -> int:
    from screenpop.demo import run_demo

    settings = settings_from(args)
    with port_in_use_is_one_line(settings.web.host, settings.web.port if args.port is None else args.port):
        return asyncio.run(run_demo(settings, rate=args.rate, duration=args.duration, speed=args.speed,
                                    timeline=args.timeline, as_json=args.json, port=args.port, customers=args.customers))


@contextmanager
def port_in_use_is_one_line(host: str, port: int):
    """A web port another process holds is a mistake the user fixes in one
    step: say so in one line (exit 2), not with the bind's traceback."""
    try:
        yield
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise UsageError(f"port {port} on {host} is already in use; pick another with --port or [web] port") from None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
