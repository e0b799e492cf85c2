"""How long to wait before trying a lost link again.

One schedule for every retry loop: capped exponential backoff with jitter,
except that while an outage is young the attempts stay frequent.  A PBX
that restarts, or a proxy that blinks, is back within seconds; doubling the
wait after each failure made screenpop retry 13 s after the link was back
(a live 25 s AMI cut), so calls in that window reached agents late.  After
the young phase the capped doubling protects a PBX that is really down.
"""
from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    low: float = 0.5  # the first wait, and the least one
    high: float = 30.0  # the most, once the outage is old
    young_seconds: float = 60.0  # for this long after the link went down ...
    young_high: float = 2.0  # ... no wait is longer than this
    jitter: float = 0.2  # up to this share is taken off, so many clients spread out

    def delay(self, failures: int, outage_seconds: float = 0.0, rand: float | None = None) -> float:
        """The wait after ``failures`` failed attempts in a row, ``outage_seconds``
        after the link went down (0: not known, or a first failure)."""
        high = min(self.high, self.young_high) if outage_seconds < self.young_seconds else self.high
        base = min(high, self.low * 2 ** min(max(failures - 1, 0), 30))
        share = random.random() if rand is None else rand
        return max(min(self.low, high), base * (1.0 - self.jitter * share))
