"""HeapTrim: free pages in the middle of glibc's heap go back to the system.

Real glibc, real resident memory: blocks above pymalloc's 512 bytes come
from malloc, so freeing nine in ten of 60,000 of them leaves ~50 MiB free
between live ones, which glibc keeps until it is trimmed."""
from __future__ import annotations

import asyncio
import logging

from screenpop.gc_tuning import resident_bytes
from screenpop.heap_trim import HeapTrim

MiB = 2**20

def test_a_trim_gives_back_the_free_pages_between_live_blocks(caplog):
    blocks = [bytearray(1000) for _ in range(60_000)]
    kept = blocks[::10]  # one in ten stays: the free memory lies between live blocks, not at the top
    del blocks
    trimmer = HeapTrim()
    assert trimmer.trim is not None, "no glibc malloc_trim: the platform the service is built for has one"
    before = resident_bytes()
    with caplog.at_level(logging.INFO, logger="screenpop.heap_trim"):
        released = trimmer.trim_now()
    assert released > 20 * MiB, f"released only {released / MiB:.1f} MiB"
    assert resident_bytes() < before - 20 * MiB
    assert trimmer.stats.trims == 1 and trimmer.stats.released_total == released
    assert "heap trimmed released_mib=" in caplog.text
    assert len(kept) == 6000


async def test_runs_on_a_thread_every_period_and_survives_a_failing_trim():
    calls = []

    def trim(pad: int) -> int:
        calls.append(pad)
        if len(calls) == 1:
            raise OSError("first one fails")
        return 1

    trimmer = HeapTrim(every=0.01, trim=trim, memory=lambda: 100)
    task = asyncio.create_task(trimmer.run())
    for _ in range(200):
        await asyncio.sleep(0.01)
        if trimmer.stats.trims >= 2:
            break
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(calls) >= 3 and set(calls) == {0}  # malloc_trim(0): no padding kept at the top
    assert trimmer.stats.trims >= 2 and trimmer.stats.released_total == 0


async def test_without_malloc_trim_it_says_so_and_stops(caplog):
    trimmer = HeapTrim(every=0.01)
    trimmer.trim = None
    with caplog.at_level(logging.INFO, logger="screenpop.heap_trim"):
        await asyncio.wait_for(trimmer.run(), 1)
    assert "heap trim unavailable" in caplog.text
    assert trimmer.trim_now() == 0
