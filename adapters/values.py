"""Turn whatever a driver returns into values ``json.dumps`` accepts.

A record travels over the bus, into the cache and to browsers, so it must be
plain JSON.  The choices, made once here so every adapter agrees:

* ``Decimal`` -> ``str`` (``Decimal('125.40')`` -> ``"125.40"``): money is
  never turned into a float, and the scale the database keeps is preserved.
* aware ``datetime`` -> UTC ``"YYYY-MM-DDTHH:MM:SS.ffffffZ"``, the format the
  rest of screenpop writes (pushed balances compare these strings); naive
  ``datetime`` -> ``isoformat()`` unchanged, since its zone is unknown.
* ``date``/``time`` -> ``isoformat()``; ``timedelta`` -> seconds (float).
* ``UUID`` -> canonical string; ``bytes`` -> text when valid UTF-8, else hex.
* non-finite floats -> None (JSON has no NaN); anything else unknown -> str.
* containers nested deeper than ``MAX_DEPTH`` -> the string ``TOO_DEEP``: no
  card needs it, and a structure nested near the interpreter's recursion
  limit would load here but fail later, when the pop is encoded for the
  agent's socket (the agent would get no pop at all).
"""
from __future__ import annotations

import datetime as dt
import math
import uuid
from decimal import Decimal
from typing import Any

UTC_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
MAX_DEPTH = 32
TOO_DEEP = "(nested too deep)"


def jsonable(value: Any, _depth: int = 0) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            return value.astimezone(dt.timezone.utc).strftime(UTC_FORMAT)
        return value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.hex()
    if isinstance(value, (dict, list, tuple, set, frozenset)):
        if _depth >= MAX_DEPTH:
            return TOO_DEEP
        if isinstance(value, dict):
            return {str(k): jsonable(v, _depth + 1) for k, v in value.items()}
        return [jsonable(v, _depth + 1) for v in value]
    return str(value)


def jsonable_row(mapping: Any) -> dict[str, Any]:
    """A result row as a dict; a repeated column name keeps its last value."""
    return {str(k): jsonable(v) for k, v in mapping.items()}
