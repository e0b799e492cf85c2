"""The writer's spill file: partial records that could not wait in memory.

Why a file and not a bigger queue: during a long database outage a busy
call center produces more records than a process should hold, and a process
stopped during an outage must not take its queue with it.  The file is
append-only JSON lines, one partial record each; replaying it is a fold with
:func:`~screenpop.interactions.record.merge`, so reading a line twice (a
crash between writing to the database and deleting the file) changes nothing.

Blocking file I/O, meant to run in the writer's one worker thread, which
keeps appends and reads in order.  A torn last line (a crash mid-append) is
skipped with a warning; every line before it is kept.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable

from screenpop.interactions.record import EVENT_FIELDS, LOOKUP_FIELDS, InteractionRecord

log = logging.getLogger(__name__)

VERSION = 1
_FIELDS = ("call_id", *EVENT_FIELDS, *LOOKUP_FIELDS)


def to_line(record: InteractionRecord) -> str:
    data: dict[str, Any] = {name: getattr(record, name) for name in _FIELDS}
    return json.dumps({"v": VERSION, "record": data}, ensure_ascii=False, separators=(",", ":")) + "\n"


def from_line(line: str) -> InteractionRecord:
    data = json.loads(line)
    if not isinstance(data, dict) or data.get("v") != VERSION:
        raise ValueError("not a spill record of version 1")
    values = {k: v for k, v in data["record"].items() if k in _FIELDS}
    return InteractionRecord(**values)


def append(path: Path, records: Iterable[InteractionRecord]) -> int:
    """Append and fsync; returns how many records were written."""
    lines = [to_line(r) for r in records]
    if not lines:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write("".join(lines))
        f.flush()
        os.fsync(f.fileno())
    return len(lines)


def rotate(path: Path, replay_path: Path) -> bool:
    """Move the spill file aside for replaying, unless a replay is already
    under way; new spills then go to a fresh file.  True when there is
    something to replay."""
    if replay_path.exists():
        return True
    if path.exists():
        os.replace(path, replay_path)
        return True
    return False


def read_chunk(path: Path, offset: int, max_records: int) -> tuple[list[InteractionRecord], int, bool]:
    """Up to ``max_records`` records from byte ``offset``; returns them, the
    next offset, and whether the end of the file was reached."""
    records: list[InteractionRecord] = []
    with open(path, "rb") as f:
        f.seek(offset)
        while len(records) < max_records:
            line = f.readline()
            if not line:
                return records, f.tell(), True
            offset = f.tell()
            if not line.endswith(b"\n"):
                log.warning("interaction spill torn last line skipped path=%s bytes=%d", path, len(line))
                continue
            try:
                records.append(from_line(line.decode("utf-8")))
            except (ValueError, TypeError, KeyError) as exc:
                log.warning("interaction spill unreadable line skipped path=%s offset=%d error=%s", path, offset, exc)
        at_end = not f.readline()
    return records, offset, at_end


def remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
