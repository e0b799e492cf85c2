"""The call feed hands every raw item to its observer before the tracker,
in stream order, and a failing observer stops neither tracking nor delivery."""
from __future__ import annotations

import asyncio

from telephony.feed import CallFeed
from telephony.link import LinkDown, LinkUp, Snapshot
from telephony.tracker import CallTracker
from tests.supervision.helpers import capture_messages


async def run_feed(items, observe):
    queue: asyncio.Queue = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    delivered = []
    feed = CallFeed(queue, CallTracker(), delivered.append, observe=observe)
    task = asyncio.create_task(feed.run())
    while not queue.empty():
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return delivered


async def test_observer_sees_every_item_in_order_before_its_call_events():
    messages = capture_messages("support_answered")
    items = [LinkUp(reconnect=False), Snapshot(), *messages, LinkDown("stopped")]
    seen, order = [], []

    def observe(item):
        seen.append(item)
        order.append(("item", item.get("Event") if isinstance(item, dict) else type(item).__name__))

    queue: asyncio.Queue = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    feed = CallFeed(queue, CallTracker(), lambda e: order.append(("event", e.type)), observe=observe)
    task = asyncio.create_task(feed.run())
    while not queue.empty():
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert seen == items
    queued = order.index(("event", "call.queued"))
    assert order[queued - 1] == ("item", "QueueCallerJoin")


async def test_a_failing_observer_does_not_stop_call_tracking():
    def observe(item):
        raise RuntimeError("observer bug")

    delivered = await run_feed(capture_messages("support_answered"), observe)
    assert [e.type for e in delivered][-1] == "call.ended" and len(delivered) >= 5
