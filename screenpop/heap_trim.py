"""Give the C heap's free pages back to the system, once a minute.

Why: memory the process frees in the middle of glibc's heap stays in the
process (glibc returns only what sits at the heap's top), and in the soak
that is where resident memory crept: glibc's heap held 25 to 34 MiB free
inside it (``mallinfo2().fordblks``), a few MiB more after each reconnect
storm that came with a phone-index rebuild (the sockets' buffers and the
replaced index's dict tables freed between blocks still in use).  Later
allocations reuse some of it, never all, so the process grew by steps.
``malloc_trim(0)`` releases every whole free page wherever it lies.

Cost: it walks the free chunks of every arena, a few milliseconds to tens
for a heap of a few hundred MiB.  ctypes lets go of the GIL for the call, so
it runs on a thread and the event loop carries on (it only waits if it needs
the heap's lock meanwhile).  Where there is no glibc (musl, macOS) there is
no ``malloc_trim`` and nothing to do.

Python's own small objects live in pymalloc's arenas, which it returns by
itself once an arena is empty; this is for everything larger.
"""
from __future__ import annotations

import asyncio
import ctypes
import logging
import time
from dataclasses import dataclass
from typing import Callable

from screenpop.gc_tuning import resident_bytes

log = logging.getLogger(__name__)

MiB = 2**20


def find_malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None


@dataclass(slots=True)
class TrimStats:
    trims: int = 0
    last_ms: float = 0.0
    max_ms: float = 0.0
    last_released: int = 0  # bytes of resident memory, before minus after
    released_total: int = 0


class HeapTrim:
    """Runs beside the service (:meth:`run` as a task)."""

    def __init__(self, *, every: float = 60.0, trim: Callable[[int], int] | None = None,
                 memory: Callable[[], int] = resident_bytes):
        self.every = every
        self.trim = trim if trim is not None else find_malloc_trim()
        self.memory = memory
        self.stats = TrimStats()

    def trim_now(self) -> int:
        """Trim once (blocking; :meth:`run` calls it on a thread).  The resident bytes it gave back."""
        if self.trim is None:
            return 0
        before = self.memory()
        started = time.perf_counter()
        self.trim(0)
        took = (time.perf_counter() - started) * 1000
        released = max(0, before - self.memory())
        stats = self.stats
        stats.trims += 1
        stats.last_ms, stats.max_ms = took, max(stats.max_ms, took)
        stats.last_released = released
        stats.released_total += released
        level = logging.INFO if released >= MiB else logging.DEBUG
        log.log(level, "heap trimmed released_mib=%.1f ms=%.1f rss_mib=%.0f", released / MiB, took, (before - released) / MiB)
        return released

    async def run(self) -> None:
        if self.trim is None:
            log.info("heap trim unavailable (no glibc malloc_trim): freed C memory stays with the process")
            return
        while True:
            await asyncio.sleep(self.every)
            try:
                await asyncio.to_thread(self.trim_now)
            except Exception:  # never let housekeeping take the service down
                log.exception("heap trim failed")
