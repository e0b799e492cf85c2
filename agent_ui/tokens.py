"""Bearer tokens for integration clients (billing systems).

Only a SHA-256 digest of each token is kept in memory and compared in
constant time, so a heap dump or a log line never reveals a usable token."""
from __future__ import annotations

import hashlib
import hmac
from typing import Iterable


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class BearerTokens:
    def __init__(self, tokens: Iterable[str] = ()):
        self._digests = [digest(t) for t in tokens if t]

    def __bool__(self) -> bool:
        return bool(self._digests)

    def check(self, authorization: str | None) -> bool:
        if not authorization or not self._digests:
            return False
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        presented = digest(token.strip())
        return any(hmac.compare_digest(presented, known) for known in self._digests)
