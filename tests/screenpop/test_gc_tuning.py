"""GcTuning: long-lived objects leave the full passes' way; frozen garbage
cycles are still reclaimed by a thaw."""
from __future__ import annotations

import asyncio
import gc
import weakref

from screenpop.gc_tuning import GcTuning, resident_bytes


class Node:
    def __init__(self):
        self.other = None


def cycle() -> tuple[Node, weakref.ref]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a, weakref.ref(a)


def is_tracked_unfrozen(obj) -> bool:
    return any(o is obj for o in gc.get_objects())


def test_survivors_are_frozen_out_of_the_collectors_walk():
    tuning = GcTuning()
    kept, _ = cycle()
    assert is_tracked_unfrozen(kept)
    before = gc.get_freeze_count()
    tuning.tick()
    assert gc.get_freeze_count() > before
    assert not is_tracked_unfrozen(kept)  # a full pass no longer walks it
    assert tuning.stats.freezes == 1
    gc.unfreeze()


def test_a_frozen_cycle_that_became_garbage_is_reclaimed_by_a_thaw():
    tuning = GcTuning()
    node, alive = cycle()
    tuning.freeze_now()
    del node
    gc.collect()
    assert alive() is not None  # frozen: a full pass does not see it
    tuning.thaw("test")
    assert alive() is None
    assert tuning.stats.thaws == 1 and tuning.stats.last_thaw_reclaimed >= 2
    gc.unfreeze()


def test_memory_growth_triggers_a_thaw():
    rss = [100.0]
    tuning = GcTuning(thaw_growth=0.25, memory=lambda: rss[0])
    tuning.start()
    rss[0] = 120.0
    tuning.tick()
    assert tuning.stats.thaws == 1 and tuning.stats.freezes == 1  # +20 %: a plain freeze
    rss[0] = 130.0
    tuning.tick()
    assert tuning.stats.thaws == 2  # +30 %: a thaw, and 130 is the new baseline
    rss[0] = 150.0
    tuning.tick()
    assert tuning.stats.thaws == 2 and tuning.stats.freezes == 3
    gc.unfreeze()


def test_a_thaw_that_finds_nothing_makes_the_next_wait_for_more_growth_and_one_that_finds_garbage_resets_it():
    rss = [100.0]
    tuning = GcTuning(thaw_growth=0.25, memory=lambda: rss[0])
    tuning.start()
    rss[0] = 130.0
    tuning.tick()  # nothing to reclaim: legitimate growth
    assert tuning.stats.thaws == 2 and tuning.growth_allowed == 0.5
    rss[0] = 180.0  # +38 %: below the doubled allowance
    tuning.tick()
    assert tuning.stats.thaws == 2
    garbage = [cycle()[0] for _ in range(tuning.stats.frozen // 50)]  # > 1 % of the frozen set, in cycles
    tuning.freeze_now()
    del garbage
    rss[0] = 200.0  # +54 %
    tuning.tick()
    assert tuning.stats.thaws == 3 and tuning.stats.last_thaw_reclaimed > 0
    assert tuning.growth_allowed == 0.25
    gc.unfreeze()


def test_an_old_frozen_set_is_thawed_even_without_growth():
    now = [0.0]
    tuning = GcTuning(thaw_every=60.0, clock=lambda: now[0], memory=lambda: 100)
    tuning.start()
    tuning.tick()
    assert tuning.stats.thaws == 1
    now[0] = 61.0
    tuning.tick()
    assert tuning.stats.thaws == 2
    gc.unfreeze()


def test_settle_thaws_at_once_after_any_growth():
    rss = [100.0]
    tuning = GcTuning(memory=lambda: rss[0])
    tuning.start()
    tuning.settle()
    assert tuning.stats.thaws == 1  # nothing grew
    rss[0] = 101.0
    tuning.settle()
    assert tuning.stats.thaws == 2 and tuning.stats.frozen == gc.get_freeze_count()
    gc.unfreeze()


def test_resident_memory_is_read():
    assert resident_bytes() > 10 * 2**20


async def test_run_freezes_on_its_interval_and_survives_a_failing_step(monkeypatch, caplog):
    tuning = GcTuning(freeze_every=0.01)
    calls = []

    def tick():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")

    monkeypatch.setattr(tuning, "tick", tick)
    task = asyncio.create_task(tuning.run())
    await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(calls) >= 3
    assert "gc tuning step failed" in caplog.text

