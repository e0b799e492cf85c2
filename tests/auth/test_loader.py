"""SessionLoader on its own: how lookups are grouped into batches, and when
an answer may be kept.  The load function is a stand-in here (the store's
real one is tested in test_session_cache.py and the storm test)."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from screenpop.auth.accounts import ActiveSession, Session, User
from screenpop.auth.loader import SessionLoader

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


def active(session_id: str, user_id: int = 1, expires: timedelta = timedelta(hours=1)) -> ActiveSession:
    return ActiveSession(User(user_id, f"u{user_id}", "agent", str(1000 + user_id), None),
                         Session(session_id, user_id, NOW, NOW, NOW + expires, "csrf"))


class Backend:
    """Answers every id that starts with "ok"; ``gate`` holds a query open."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def load(self, ids: list[str]) -> dict[str, ActiveSession]:
        self.calls.append(list(ids))
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        return {i: active(i, user_id=int(i[2:] or 1)) for i in ids if i.startswith("ok")}


def loader(backend: Backend, **options) -> SessionLoader:
    clock = options.pop("clock", lambda: NOW)
    return SessionLoader(backend.load, clock=clock, window=0, **options)


async def test_lookups_of_one_tick_are_one_query():
    backend = Backend()
    sessions = loader(backend)
    found = await asyncio.gather(*(sessions.get(f"ok{n}") for n in range(1, 50)), sessions.get("nope"), sessions.get("ok1"))
    assert len(backend.calls) == 1 and sorted(backend.calls[0]) == sorted({f"ok{n}" for n in range(1, 50)} | {"nope"})
    assert [a.session.id for a in found[:49]] == [f"ok{n}" for n in range(1, 50)]
    assert found[49] is None and found[50].session.id == "ok1"


async def test_lookups_arriving_while_a_query_runs_wait_for_the_next_one_together():
    backend = Backend()
    backend.gate = asyncio.Event()
    sessions = loader(backend)
    first = asyncio.ensure_future(sessions.get("ok1"))
    await backend.entered.wait()
    later = [asyncio.ensure_future(sessions.get(f"ok{n}")) for n in range(2, 30)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(backend.calls) == 1  # one query in flight at a time
    backend.gate.set()
    await asyncio.gather(first, *later)
    assert [len(c) for c in backend.calls] == [1, 28]


async def test_a_batch_is_split_at_max_batch():
    backend = Backend()
    sessions = loader(backend, max_batch=10)
    await asyncio.gather(*(sessions.get(f"ok{n}") for n in range(1, 26)))
    assert [len(c) for c in backend.calls] == [10, 10, 5]


async def test_a_failed_query_fails_only_its_own_batch():
    calls = []

    async def flaky(ids):
        calls.append(ids)
        if len(calls) == 1:
            raise OSError("database restarting")
        return {i: active(i) for i in ids}

    sessions = SessionLoader(flaky, clock=lambda: NOW, window=0)
    results = await asyncio.gather(sessions.get("a"), sessions.get("b"), return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results)
    assert (await sessions.get("a")).session.id == "a"


async def test_an_answer_read_while_a_logout_happened_is_not_kept():
    backend = Backend()
    backend.gate = asyncio.Event()
    sessions = loader(backend, cache_seconds=5)
    lookup = asyncio.ensure_future(sessions.get("ok1"))
    await backend.entered.wait()
    sessions.evict(["ok1"])  # the logout committed while the SELECT was reading
    backend.gate.set()
    assert (await lookup) is not None  # this request raced the logout...
    assert sessions.cached("ok1") is None and len(sessions) == 0  # ...but nobody after it is served from memory
    await sessions.get("ok1")
    assert len(sessions) == 1


async def test_cache_entries_end_with_the_cache_seconds_or_the_session_whichever_first():
    now = [NOW]
    backend = Backend()
    sessions = loader(backend, cache_seconds=5, clock=lambda: now[0])
    await sessions.get("ok1")
    now[0] += timedelta(seconds=4.9)
    assert sessions.cached("ok1") is not None
    now[0] += timedelta(seconds=0.1)
    assert sessions.cached("ok1") is None

    async def short(ids):
        return {i: active(i, expires=timedelta(seconds=2)) for i in ids}

    now[0] = NOW
    sessions = SessionLoader(short, clock=lambda: now[0], cache_seconds=60, window=0)
    await sessions.get("s")
    now[0] += timedelta(seconds=1.9)
    assert sessions.cached("s") is not None
    now[0] += timedelta(seconds=0.1)  # the session expires now, 58 s before the cache would let it go
    assert sessions.cached("s") is None


async def test_evict_user_drops_every_session_of_that_user_only():
    backend = Backend()
    sessions = loader(backend, cache_seconds=5)
    await asyncio.gather(sessions.get("ok1"), sessions.get("ok2"))
    sessions.evict_user(1)
    assert sessions.cached("ok1") is None and sessions.cached("ok2") is not None


async def test_the_cache_is_bounded():
    backend = Backend()
    sessions = loader(backend, cache_seconds=5, max_cached=100)
    await asyncio.gather(*(sessions.get(f"ok{n}") for n in range(1, 400)))
    assert len(sessions) <= 100


async def test_a_request_that_goes_away_does_not_disturb_its_batch():
    backend = Backend()
    backend.gate = asyncio.Event()
    sessions = loader(backend)
    gone = asyncio.ensure_future(sessions.get("ok1"))
    stays = asyncio.ensure_future(sessions.get("ok1"))
    await backend.entered.wait()
    gone.cancel()
    backend.gate.set()
    assert (await stays).session.id == "ok1"
    with pytest.raises(asyncio.CancelledError):
        await gone


async def test_nobody_waits_forever_when_the_loader_is_cancelled():
    backend = Backend()
    backend.gate = asyncio.Event()
    sessions = loader(backend)
    lookups = [asyncio.ensure_future(sessions.get(f"ok{n}")) for n in (1, 2)]
    await backend.entered.wait()
    queued = asyncio.ensure_future(sessions.get("ok3"))
    await asyncio.sleep(0)
    sessions._task.cancel()  # the event loop shutting down
    results = await asyncio.gather(*lookups, queued, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    backend.gate = None
    assert (await sessions.get("ok1")).session.id == "ok1"  # a new lookup starts a new loader task
