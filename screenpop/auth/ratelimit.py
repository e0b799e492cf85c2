"""Failed-login throttling in memory; pure (the caller passes the time).

Two keys per attempt: the client address (one machine trying many names) and
the username (many machines trying one name, and names that do not exist, so
"this account is locked" cannot be used to find out which names do).  Only
failures count: fifty agents logging in behind one NAT at shift change must
not lock each other out.

Per process: with several ``serve`` processes an attacker gets a few more
tries, bounded by the database lockout, which is shared.
"""
from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class FailureWindow:
    limit: int
    window: float  # seconds
    max_keys: int = 50_000
    _hits: "OrderedDict[str, deque[float]]" = field(default_factory=OrderedDict)

    def retry_after(self, key: str, now: float) -> float | None:
        """Seconds until ``key`` may try again, or None when it may now."""
        hits = self._recent(key, now)
        if hits is None or len(hits) < self.limit:
            return None
        return max(hits[0] + self.window - now, 0.001)

    def fail(self, key: str, now: float) -> None:
        hits = self._recent(key, now)
        if hits is None:
            hits = self._hits[key] = deque()
            while len(self._hits) > self.max_keys:  # oldest key first: bounded memory under a spray
                self._hits.popitem(last=False)
        hits.append(now)
        self._hits.move_to_end(key)
        while len(hits) > self.limit:
            hits.popleft()

    def clear(self, key: str) -> None:
        self._hits.pop(key, None)

    def _recent(self, key: str, now: float) -> deque[float] | None:
        hits = self._hits.get(key)
        if hits is None:
            return None
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return None
        return hits
