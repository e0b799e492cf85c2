"""Open WebSockets whose session ended get closed: one query for all of them.

A socket lives for a whole shift, so a logout, a disabled account or an
expired session must stop its pops too, not only its next login.  Each
socket used to re-check its own session on its own timer: at 2,000 agents
and a 30 s interval that was 67 queries a second on the service's database,
each a connection checkout and a round trip on the event loop that also
carries the pops.  Here every open socket registers its session id and a
way to end it; once per interval the ids of all of them go to the store in
one query (``check(ids) -> alive ids``), and the sockets of the sessions
that did not come back are ended.

A failed check ends nobody: a database blip must not log everyone out; the
next interval tries again.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Collection

log = logging.getLogger(__name__)

Check = Callable[[Collection[str]], Awaitable[set[str]]]
OnEnd = Callable[[], None]


class SessionWatch:
    def __init__(self, check: Check, interval: float):
        self.check = check
        self.interval = interval
        self.checks = 0  # queries made (one per interval while sockets are open)
        self._watched: dict[str, dict[object, OnEnd]] = {}  # session id -> registration -> end its socket
        self._task: asyncio.Task | None = None

    def __len__(self) -> int:
        return sum(len(ends) for ends in self._watched.values())

    def watch(self, session_id: str, on_end: OnEnd) -> Callable[[], None]:
        """Register one open socket; returns the function that unregisters it
        (call it when the socket closes)."""
        key = object()
        self._watched.setdefault(session_id, {})[key] = on_end
        self._ensure_running()

        def unwatch() -> None:
            ends = self._watched.get(session_id)
            if ends is not None:
                ends.pop(key, None)
                if not ends:
                    del self._watched[session_id]

        return unwatch

    async def check_now(self) -> int:
        """Check every watched session once; returns how many sockets were ended."""
        ids = list(self._watched)
        if not ids:
            return 0
        self.checks += 1
        try:
            alive = await self.check(ids)
        except Exception as exc:  # a database blip must not log everyone out
            log.warning("ws session recheck failed sessions=%d reason=%s", len(ids), type(exc).__name__)
            return 0
        ended = 0
        for session_id in ids:
            if session_id in alive:
                continue
            for on_end in list(self._watched.pop(session_id, {}).values()):
                ended += 1
                try:
                    on_end()
                except Exception:
                    log.exception("ending a socket of an ended session failed")
        return ended

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _ensure_running(self) -> None:
        if self._task is not None and not self._task.done():
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name="ws-session-watch")

    async def _run(self) -> None:
        while self._watched:
            await asyncio.sleep(self.interval)
            await self.check_now()
        self._task = None  # nobody left: the next socket starts it again
