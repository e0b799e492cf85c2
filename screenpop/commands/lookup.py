"""``screenpop lookup NUMBER`` and ``screenpop index rebuild|stats``.

The same wiring as the service (``customer_lookup.plugin``), so what an
operator sees here is what an agent would see: the quickest way to answer
"why did this caller pop as unknown?" or "is the billing database slow?".
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import datetime, timezone
from typing import Any, TextIO

from screenpop.terminal import json_printable, printable


def register(sub) -> None:
    config = argparse.ArgumentParser(add_help=False)
    # Also accepted after the sub-command; SUPPRESS keeps a global --config when absent here.
    config.add_argument("--config", default=argparse.SUPPRESS, help="TOML configuration file")

    lookup = sub.add_parser("lookup", parents=[config], help="look a caller number up in every source and print the card")
    lookup.add_argument("number", help="the caller number as a PBX would send it ('anonymous' for withheld)")
    lookup.add_argument("--json", action="store_true", help="print the card as JSON")
    lookup.add_argument("--deadline-ms", type=int, default=None, help="per-source deadline (default: [lookup] deadline_ms)")
    lookup.set_defaults(func=cmd_lookup)

    index = sub.add_parser("index", parents=[config], help="the phone index (normalized number -> records per source)")
    actions = index.add_subparsers(required=True, metavar="ACTION")
    rebuild = actions.add_parser("rebuild", parents=[config], help="rebuild the phone index from every source, progress on stderr")
    rebuild.add_argument("--source", action="append", dest="sources", metavar="NAME", help="only this source (repeatable)")
    rebuild.set_defaults(func=cmd_index_rebuild)
    stats = actions.add_parser("stats", parents=[config], help="numbers and records per source, and the last build, as JSON")
    stats.set_defaults(func=cmd_index_stats)


# ------------------------------------------------------------------ lookup


def cmd_lookup(args) -> int:
    from screenpop.cli import UsageError, settings_from

    settings = settings_from(args)
    if not settings.sources:
        # Every number would be "Unknown caller": an answer that looks like
        # data when it is a configuration mistake.
        where = getattr(args, "config", None) or "the default configuration (no --config)"
        raise UsageError(f"no sources configured in {where}; add [[sources]] tables (see config/demo.toml) "
                         "or pass --config with a file that has them")
    if args.deadline_ms is not None:
        settings.lookup.deadline_ms = args.deadline_ms
    card = asyncio.run(_lookup(settings, args.number))
    if args.json:
        print(json_printable(json.dumps(card.to_dict(), ensure_ascii=False, indent=2)))
    else:
        print(describe_card(card))
    return 0


async def _lookup(settings, number: str):
    runtime = await _runtime(settings)
    try:
        # The index the service uses: in Redis, or the in-process one it
        # saved (customer_lookup.index_file); built here only when missing,
        # stale or built from another source definition.
        for outcome in await runtime.use_saved_index():
            if outcome.error:
                print(f"screenpop: source {outcome.source}: cannot read its phones: {outcome.error}", file=sys.stderr)
        return await runtime.service.lookup(number, use_cache=False)
    finally:
        await runtime.close()


def describe_card(card) -> str:
    """The card as an operator reads it in a terminal.  Every line is passed
    through :func:`screenpop.terminal.printable`: names and fields come from
    callers and business systems, and an escape sequence in them must not
    reach the operator's terminal raw."""
    headline = {"known": "Known caller", "multiple": "Several customers", "unknown": "Unknown caller", "withheld": "Withheld number"}
    lines = [f"{headline.get(card.status, card.status)}: {card.e164 or '-'} (received {card.caller_number!r}, {card.number_kind})"]
    for i, person in enumerate(card.persons, 1):
        who = " · ".join(x for x in (person.name, person.company, person.email) if x) or "(no name)"
        maybe = "  [possible match: only the last digits of a stored number match]" if person.match == "possible" else ""
        lines.append(f"  {i}. {who}{'  [VIP]' if person.vip else ''}{maybe}")
        lines.append(f"     records: {_records(person.keys)}")
        if person.possible and person.match != "possible":
            lines.append(f"     possible match only: {_records(person.possible)}")
        for section in ("sales", "billing", "support"):
            values = getattr(person, section)
            if values:
                lines.append(f"     {section}: {_values(values)}")
        for source, values in person.extra.items():
            lines.append(f"     {source} (other): {_values(values)}")
        if person.history:
            lines.append(f"     earlier calls: {len(person.history)}")
    for name, status in card.sources.items():
        took = f" {status.elapsed_ms:.0f} ms" if status.elapsed_ms is not None else ""
        why = f": {status.detail}" if status.detail else ""
        lines.append(f"  source {name}: {status.status}{took}{why}")
    return "\n".join(printable(line) for line in lines)


def _records(keys: dict[str, list[str]]) -> str:
    return ", ".join(f"{source} {'/'.join(values)}" for source, values in keys.items()) or "-"


def _values(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v}" for k, v in values.items())


# ------------------------------------------------------------------- index


def cmd_index_rebuild(args) -> int:
    from screenpop.cli import settings_from

    return asyncio.run(_rebuild(settings_from(args), args.sources, sys.stderr))


async def _rebuild(settings, names: list[str] | None, err: TextIO) -> int:
    from screenpop.cli import UsageError

    if not settings.sources:
        raise UsageError("no [[sources]] in the configuration: nothing to index")
    runtime = await _runtime(settings)
    try:
        if not runtime.shared:
            where = f"saved to {runtime.index_file.path}" if runtime.index_file else "not saved (the interaction log is not a SQLite file)"
            print(f"screenpop: no [bus] redis_url: the index is in-process, {where}; a running service "
                  "keeps building its own and saves it after each build", file=err)

        def progress(source: str, rows: int) -> None:
            print(f"index {source}: {rows} rows read", file=err, flush=True)

        try:
            outcomes = await runtime.rebuild_index(names, progress=progress)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    finally:
        await runtime.close()
    failed = 0
    for outcome in outcomes:
        if outcome.stats is not None:
            s = outcome.stats
            print(f"index {s.source}: done, {s.rows} rows: {s.indexed} indexed, {s.flagged} flagged (short/invalid), "
                  f"{s.skipped} skipped (empty/withheld) in {s.seconds:.2f} s", file=err)
        elif outcome.error is not None:
            failed += 1
            print(f"index {outcome.source}: FAILED: {outcome.error} (previous index kept)", file=err)
        else:
            print(f"index {outcome.source}: skipped: {outcome.skipped}", file=err)
    return 1 if failed else 0


def cmd_index_stats(args) -> int:
    from screenpop.cli import settings_from

    async def stats(settings) -> dict:
        runtime = await _runtime(settings)
        try:
            return await index_report(runtime)
        finally:
            await runtime.close()

    print(json.dumps(asyncio.run(stats(settings_from(args))), indent=2, ensure_ascii=False))
    return 0


async def index_report(runtime, now: float | None = None) -> dict:
    """What is stored where, per configured source, with times a person
    reads; a source with nothing says why rather than showing a 0."""
    from customer_lookup.index import totals
    from customer_lookup.index_file import SavedPhoneIndex

    now = time.time() if now is None else now
    if runtime.shared:
        stored = (f"Redis {runtime.settings.bus.redis_url}, shared by every node "
                  f"(keys {runtime.settings.lookup.redis_prefix}phones:…)")
        built = (await runtime.index.stats())["sources"]
        missing_why = "not in Redis: no node has built it yet (start the service or run 'screenpop index rebuild')"
    elif runtime.index_file is not None:
        stored = (f"in the memory of the running service; saved after each build to {runtime.index_file.path}, "
                  "which is what this command and 'screenpop lookup' read")
        built = (await SavedPhoneIndex(runtime.index_file, [s.name for s in runtime.sources]).stats())["sources"]
        usable = runtime.saved_usable(now)
        missing_why = (f"not in {runtime.index_file.path}: never built with this source definition "
                       "(start the service or run 'screenpop index rebuild')")
    else:
        stored = ("in the memory of each screenpop process only (no [bus] redis_url, and the interaction log is not "
                  "a SQLite file to save it beside): this process has none to show")
        built, usable = {}, set()
        missing_why = "only in the memory of a running service"
    sources: dict[str, dict] = {}
    for source in runtime.sources:
        entry = built.get(source.name)
        if not entry or not entry.get("built_at"):
            sources[source.name] = {"numbers": 0, "entries": 0, "built_at": None, "note": missing_why}
            continue
        at = float(entry["built_at"])
        sources[source.name] = {
            "numbers": entry["numbers"],
            "entries": entry["entries"],
            "region": entry.get("region") or runtime.region_of(source.name),
            "built_at": _utc(at),
            "built_at_local": _local(at),
            "age": _age(now - at),
            "build": entry.get("build"),
        }
        if not runtime.shared and source.name not in usable:
            sources[source.name]["note"] = ("stale or built from another source definition: "
                                            "'screenpop lookup' will rebuild it")
    report = {"stored": stored}
    report.update(totals(sources))
    return report


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _local(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="seconds")


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min ago"
    return f"{seconds // 86400} days ago"


async def _runtime(settings):
    from customer_lookup.plugin import build_lookup
    from screenpop.cli import UsageError

    try:
        # One-shot: the card is printed at the deadline, and each source's
        # query is stopped there too, so the process exits then.
        return await build_lookup(settings, waits_late=False)
    except ValueError as exc:  # a source the adapters refuse (no :key in record_query, bad url)
        raise UsageError(str(exc)) from None
