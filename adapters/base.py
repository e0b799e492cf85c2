"""The contract between the lookup and every outside business system.

The lookup only ever sees three things: a stream of (record key, phone as
stored) pairs to build its phone index, a record fetched by key, and
:class:`SourceError` when the system misbehaves.  Keeping the contract this
small is what lets a SQL database, a REST API and the demo databases be
swapped freely, and what keeps call state and agents out of this package.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, AsyncIterator, Protocol, runtime_checkable

if TYPE_CHECKING:  # the config module pulls in telephony; adapters need not
    from screenpop.config import SourceSettings


@runtime_checkable
class Source(Protocol):
    """One business system the card is built from.

    ``iter_phones`` streams: a company database may hold millions of phone
    rows and the index refresh must not hold them all in memory.  Phones come
    out exactly as stored, because normalizing them is the lookup's job (it
    knows the default region; the adapter does not).  ``fetch`` returns a
    JSON-serialisable dict (see :mod:`adapters.values`) or None when the key
    no longer exists, which is an answer, not an error.
    """

    name: str
    fields: frozenset[str]

    def iter_phones(self) -> AsyncIterator[tuple[str, str]]: ...

    async def fetch(self, key: str) -> dict[str, Any] | None: ...

    async def close(self) -> None: ...


class SourceError(Exception):
    """The outside system failed; ``reason`` is short enough to show on a card.

    Raised for anything that is the other system's fault or the operator's
    (connection refused, database gone, bad SQL, HTTP 5xx, invalid JSON,
    timeout), never for a record that simply does not exist.  The original
    exception is chained as ``__cause__`` for the logs; callers show only
    ``str(error)``, which is the reason without a traceback.
    """

    def __init__(self, reason: str, *, source: str = ""):
        reason = " ".join(str(reason).split())[:300] or "unknown failure"
        super().__init__(reason)
        self.reason = reason
        self.source = source


def build_source(settings: "SourceSettings", **options: Any) -> Source:
    """The adapter for one ``[[sources]]`` table; ``options`` tune timeouts
    and pools (see each adapter's constructor)."""
    if settings.kind == "sql":
        from adapters.sql import SqlSource

        return SqlSource.from_settings(settings, **options)
    if settings.kind == "http":
        from adapters.http import HttpSource

        return HttpSource.from_settings(settings, **options)
    raise ValueError(f"source {settings.name!r}: unknown kind {settings.kind!r} (expected 'sql' or 'http')")
