"""Session lookups of many requests at once: one query per batch, a short cache.

Every WebSocket handshake and every request looks its session up.  When
2,000 agents' sockets dropped and came back together (the soak benchmark),
2,000 lookups each wanted a pooled connection, a SELECT and often an
UPDATE at the same moment; on the busy SQLite file they queued, timed out
and were answered 503, and the sockets took minutes to come back.

:class:`SessionLoader` turns such a burst into a few queries:

* **Batching** (the DataLoader pattern).  A lookup joins the pending batch;
  one batch is queried at a time, with ``WHERE id IN (...)``, and every
  lookup that arrives meanwhile (the same event-loop tick, the ``window``,
  or while the previous batch's query runs) waits for the next one.  A
  lone lookup costs one query, as before; a storm of them a handful.  The
  ``load`` function is given the batch's ids and returns the valid ones
  (it also slides their expiry, in one write for the batch).  If it fails,
  every lookup of that batch fails with its exception (the caller answers
  503: the store is down), and the next batch tries again.
* **A short cache** of valid sessions (``cache_seconds``; 0: none).  An
  entry is served until that many seconds after it was read, and never
  past its session's own expiry.  :meth:`evict` and :meth:`evict_user`
  drop entries at once (this node's logout, ``end_sessions``, a disabled
  user); a session ended on another node is noticed when its entry runs
  out.  A lookup that was already reading when an eviction happened does
  not put its (possibly stale) answer in the cache.

Unknown and dead sessions are never cached: a token just created on
another node must work at once, and garbage tokens must not fill memory.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Awaitable, Callable, Iterable, Mapping

from screenpop.auth.accounts import ActiveSession

log = logging.getLogger(__name__)

Load = Callable[[list[str]], Awaitable[Mapping[str, ActiveSession]]]
Clock = Callable[[], datetime]

MAX_BATCH = 500  # ids per query: well under every driver's parameter limit
MAX_CACHED = 50_000


class SessionLoader:
    def __init__(self, load: Load, *, clock: Clock, cache_seconds: float = 0.0, window: float = 0.002,
                 max_batch: int = MAX_BATCH, max_cached: int = MAX_CACHED):
        self.load = load
        self.clock = clock
        self.cache_for = timedelta(seconds=cache_seconds)
        self.window = window  # seconds a batch waits for company before its query
        self.max_batch = max_batch
        self.max_cached = max_cached
        self.queries = 0  # batches loaded (for tests and metrics)
        self._pending: dict[str, list[asyncio.Future]] = {}
        self._task: asyncio.Task | None = None
        self._cache: dict[str, tuple[ActiveSession, datetime]] = {}  # id -> (session, served until)
        self._evictions = 0

    # ------------------------------------------------------------- lookups

    async def get(self, session_id: str) -> ActiveSession | None:
        """The valid session with this stored id (digest), or None."""
        cached = self.cached(session_id)
        if cached is not None:
            return cached
        future = asyncio.get_running_loop().create_future()
        self._pending.setdefault(session_id, []).append(future)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="auth-session-loader")
        return await future

    def cached(self, session_id: str) -> ActiveSession | None:
        entry = self._cache.get(session_id)
        if entry is None:
            return None
        active, until = entry
        if self.clock() < until:
            return active
        self._cache.pop(session_id, None)
        return None

    async def _run(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(self.window)  # the same tick's lookups, and a few ms more, join this batch
                ids = list(self._pending)[: self.max_batch]
                waiting = {session_id: self._pending.pop(session_id) for session_id in ids}
                await self._load(waiting)
        except BaseException:  # cancelled (shutdown): nobody may wait forever
            for futures in self._pending.values():
                for future in futures:
                    future.cancel()
            self._pending.clear()
            raise

    async def _load(self, waiting: dict[str, list[asyncio.Future]]) -> None:
        evictions = self._evictions
        self.queries += 1
        try:
            found = await self.load(list(waiting))
        except Exception as exc:
            for futures in waiting.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            return
        except BaseException:
            for futures in waiting.values():
                for future in futures:
                    future.cancel()
            raise
        if evictions == self._evictions:  # no logout meanwhile: the answers are fit to keep
            self._remember(found)
        for session_id, futures in waiting.items():
            active = found.get(session_id)
            for future in futures:
                if not future.done():  # its request may have gone (client disconnected)
                    future.set_result(active)

    # --------------------------------------------------------------- cache

    def _remember(self, found: Mapping[str, ActiveSession]) -> None:
        if not self.cache_for or not found:
            return
        now = self.clock()
        if len(self._cache) + len(found) > self.max_cached:
            self._prune(now)
        for session_id, active in found.items():
            if len(self._cache) >= self.max_cached:
                break
            until = min(now + self.cache_for, active.session.expires_at)
            if until > now:
                self._cache[session_id] = (active, until)

    def _prune(self, now: datetime) -> None:
        for session_id in [k for k, (_, until) in self._cache.items() if until <= now]:
            del self._cache[session_id]
        excess = len(self._cache) - self.max_cached // 2
        for session_id in list(self._cache)[: max(0, excess)]:  # the oldest first (insertion order)
            del self._cache[session_id]

    def evict(self, session_ids: Iterable[str]) -> None:
        """These sessions ended (logout here, or found dead by a re-check)."""
        self._evictions += 1
        for session_id in session_ids:
            self._cache.pop(session_id, None)

    def evict_user(self, user_id: int) -> None:
        """Every session of this user ended (disabled, password changed)."""
        self._evictions += 1
        for session_id in [k for k, (active, _) in self._cache.items() if active.user.id == user_id]:
            del self._cache[session_id]

    def clear(self) -> None:
        self._evictions += 1
        self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)
