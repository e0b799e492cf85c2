"""CallFeed gives the loop a turn within a burst of AMI events."""
from __future__ import annotations

import asyncio

from telephony.feed import CallFeed
from telephony.tracker import CallTracker


async def test_a_burst_is_handled_in_steps_other_tasks_run_between():
    queue: asyncio.Queue = asyncio.Queue()
    for n in range(100):
        queue.put_nowait({"Event": "VarSet", "Uniqueid": str(n)})
    handled, seen_by_other = [], []
    feed = CallFeed(queue, CallTracker(), deliver=lambda event: None, observe=lambda item: handled.append(item),
                    yield_every=16)

    async def other():
        while len(handled) < 100:
            seen_by_other.append(len(handled))
            await asyncio.sleep(0)

    watcher = asyncio.create_task(other())
    task = asyncio.create_task(feed.run())
    await asyncio.wait_for(watcher, 2)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert [item["Uniqueid"] for item in handled] == [str(n) for n in range(100)]  # all, in order
    steps = sorted(set(seen_by_other))
    assert len(steps) >= 6 and max(b - a for a, b in zip(steps, steps[1:])) <= 16
