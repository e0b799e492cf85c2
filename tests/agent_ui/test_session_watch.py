"""SessionWatch: every open socket's session re-checked with one query per
interval; the sockets of ended sessions are ended, nobody on a failed check."""
from __future__ import annotations

import asyncio

from agent_ui.session_watch import SessionWatch


class Store:
    def __init__(self, alive: set[str]):
        self.alive = alive
        self.asked: list[list[str]] = []
        self.fail = False

    async def check(self, ids):
        self.asked.append(sorted(ids))
        if self.fail:
            raise ConnectionError("database down")
        return {i for i in ids if i in self.alive}


async def test_one_query_for_all_sockets_and_ended_sessions_close_their_sockets():
    store = Store({"s1", "s2"})
    watch = SessionWatch(store.check, interval=60)
    ended: list[str] = []
    for n in range(1000):
        watch.watch(f"s{n % 3 + 1}", lambda n=n: ended.append(f"socket{n}"))
    assert len(watch) == 1000
    assert await watch.check_now() == 333
    assert store.asked == [["s1", "s2", "s3"]]  # one query, each session once
    assert len(ended) == 333 and "socket2" in ended and "socket0" not in ended
    assert len(watch) == 667
    assert await watch.check_now() == 0  # an ended session's sockets are ended once
    await watch.stop()


async def test_a_failed_check_ends_nobody():
    store = Store(set())
    watch = SessionWatch(store.check, interval=60)
    ended = []
    watch.watch("s1", lambda: ended.append(1))
    store.fail = True
    assert await watch.check_now() == 0 and ended == [] and len(watch) == 1
    store.fail = False
    assert await watch.check_now() == 1 and ended == [1]
    await watch.stop()


async def test_closed_sockets_leave_the_watch_and_the_timer_checks_the_rest():
    store = Store({"s1"})
    watch = SessionWatch(store.check, interval=0.02)
    ended = []
    unwatch = watch.watch("s2", lambda: ended.append("first"))
    watch.watch("s1", lambda: ended.append("alive"))
    unwatch()  # that socket closed on its own before any check
    for _ in range(100):
        if store.asked:
            break
        await asyncio.sleep(0.01)
    assert store.asked and store.asked[0] == ["s1"]
    assert ended == []
    watch.watch("s2", lambda: ended.append("second"))
    for _ in range(100):
        if ended:
            break
        await asyncio.sleep(0.01)
    assert ended == ["second"]
    await watch.stop()
