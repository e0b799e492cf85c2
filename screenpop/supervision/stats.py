"""Today's figures per queue and per agent, from the interaction log.

Why from the log and not from counters in memory: the log is what survives a
restart (and what several nodes share), so the figures a supervisor sees at
10:00 still count the calls of 08:00 after a redeploy at 09:00.

Two halves: :class:`DayFigures` is the arithmetic, pure, fed with call rows;
:class:`StatsCache` reads the rows (the whole day once, then only rows whose
events were written since the last read) and keeps the figures, so requests and
pushes never query the database.

Definitions (one call = one interaction record, counted in the queue it
entered first, on the day it started):

* offered — calls that entered the queue; answered — of those, answered by an
  agent; abandoned — the caller hung up while waiting;
* avg wait — over answered calls (the speed of answer); avg talk — over
  answered calls that have ended;
* service level — answered within the queue's threshold, over the calls whose
  wait is over (answered, abandoned or given up by the queue).  Calls still
  waiting are not counted yet.
"""
from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator, Callable, Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, Select, and_, bindparam, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from screenpop.interactions.models import interactions

log = logging.getLogger(__name__)

SETTLED_MARGIN = 60.0  # seconds beyond the incremental reads' look-back before an ended call is forgotten

COLUMNS = ("call_id", "queue", "queued_at", "started_at", "answered_at", "ended_at", "wait_seconds", "talk_seconds",
           "end_reason", "answer_times", "transfers", "events_written_at")


@dataclass(frozen=True, slots=True)
class CallFigures:
    """What one call adds to the day."""

    call_id: str
    queue: str | None  # None: not a queue call
    answered: bool
    abandoned: bool
    wait_over: bool
    wait_seconds: float | None
    talk_seconds: float | None  # None until the call has ended
    agent_talk: dict[str, float]  # agent -> seconds talked (finished parts only)
    agents: tuple[str, ...]  # every agent who answered
    # not part of what the call adds (equality): when it may be forgotten
    ended: bool = field(default=False, compare=False)
    written_at: datetime | None = field(default=None, compare=False)

    @classmethod
    def from_row(cls, row: Any) -> CallFigures:
        get = row.get if isinstance(row, dict) else (lambda name: getattr(row, name))
        answered = get("answered_at") is not None
        ended = get("ended_at") is not None
        answer_times = {a: _epoch(t) for a, t in (get("answer_times") or {}).items()}
        return cls(
            call_id=get("call_id"),
            queue=get("queue") if get("queued_at") is not None else None,
            answered=answered,
            abandoned=get("end_reason") == "abandoned",
            wait_over=answered or ended,
            wait_seconds=get("wait_seconds"),
            talk_seconds=get("talk_seconds") if ended and answered else None,
            agent_talk=_agent_talk(answer_times, get("transfers") or [], _epoch(get("ended_at"))),
            agents=tuple(sorted(answer_times)),
            ended=ended,
            written_at=get("events_written_at"),
        )


def _agent_talk(answer_times: dict[str, float | None], transfers: list[dict], ended: float | None) -> dict[str, float]:
    """Each agent's part of a call: from their answer to their transfer away,
    the next agent's answer, or the end; parts still going are not counted."""
    order = sorted((t, a) for a, t in answer_times.items() if t is not None)
    out: dict[str, float] = {}
    for i, (start, agent) in enumerate(order):
        stops = [_epoch(t.get("ts")) for t in transfers if t.get("from_agent") == agent]
        stops = [s for s in stops if s is not None and s >= start]
        if i + 1 < len(order):
            stops.append(order[i + 1][0])
        if ended is not None:
            stops.append(ended)
        if stops:
            out[agent] = round(max(0.0, min(stops) - start), 3)
    return out


@dataclass(slots=True)
class QueueToday:
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    wait_over: int = 0
    answered_in_sl: int = 0
    wait_total: float = 0.0
    waits: int = 0
    talk_total: float = 0.0
    talks: int = 0

    def to_dict(self, threshold: float) -> dict[str, Any]:
        return {
            "offered": self.offered, "answered": self.answered, "abandoned": self.abandoned,
            "avg_wait_seconds": round(self.wait_total / self.waits, 1) if self.waits else None,
            "avg_talk_seconds": round(self.talk_total / self.talks, 1) if self.talks else None,
            "service_level": round(self.answered_in_sl / self.wait_over, 4) if self.wait_over else None,
            "sl_threshold_seconds": threshold,
        }


@dataclass(slots=True)
class AgentToday:
    answered: int = 0
    talk_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"answered": self.answered, "talk_seconds": round(self.talk_seconds, 1)}


class DayFigures:
    """The day's calls, folded into per-queue and per-agent totals.  Rows may
    come again (a call's row changes as it goes on): the newest replaces."""

    def __init__(self, threshold_for: Callable[[str], float] = lambda queue: 20.0):
        self.threshold_for = threshold_for
        self.calls: dict[str, CallFigures] = {}
        self.queues: dict[str, QueueToday] = {}
        self.agents: dict[str, AgentToday] = {}
        self.agents_touched: set[str] = set()  # agents whose figures the last update changed

    def update(self, rows: Iterable[Any]) -> set[str]:
        """Take (new versions of) rows; returns the queues whose figures
        changed (and leaves the agents in ``agents_touched``)."""
        touched: set[str] = set()
        agents: set[str] = set()
        for row in rows:
            figures = CallFigures.from_row(row)
            old = self.calls.get(figures.call_id)
            if old == figures:
                continue
            if old is not None:
                self._add(old, -1)
                touched.add(old.queue or "")
                agents.update(old.agents)
            self.calls[figures.call_id] = figures
            self._add(figures, 1)
            touched.add(figures.queue or "")
            agents.update(figures.agents)
        touched.discard("")
        self.agents_touched = agents
        return touched

    def forget_settled(self, before: datetime) -> int:
        """Drop the per-call figures of calls that ended and whose events
        were last written before ``before``: their share stays in the totals,
        and an incremental read (which looks back less far) never brings
        them again.  Why: one entry per call of the day grew the process by tens
        of megabytes an hour at 50 calls/s.  A whole-day read rebuilds from
        nothing, so it never needs them either."""
        settled = [cid for cid, call in self.calls.items()
                   if call.ended and call.written_at is not None and call.written_at < before]
        for call_id in settled:
            del self.calls[call_id]
        return len(settled)

    def _add(self, call: CallFigures, sign: int) -> None:
        for agent in call.agents:
            a = self.agents.setdefault(agent, AgentToday())
            a.answered += sign
            a.talk_seconds += sign * call.agent_talk.get(agent, 0.0)
        if call.queue is None:
            return
        q = self.queues.setdefault(call.queue, QueueToday())
        q.offered += sign
        q.answered += sign * call.answered
        q.abandoned += sign * call.abandoned
        q.wait_over += sign * call.wait_over
        if call.answered and call.wait_seconds is not None:
            q.waits += sign
            q.wait_total += sign * call.wait_seconds
            q.answered_in_sl += sign * (call.wait_seconds <= self.threshold_for(call.queue))
        if call.talk_seconds is not None:
            q.talks += sign
            q.talk_total += sign * call.talk_seconds

    def queue(self, name: str) -> dict[str, Any]:
        return self.queues.get(name, QueueToday()).to_dict(self.threshold_for(name))

    def agent(self, agent_id: str) -> dict[str, Any]:
        return self.agents.get(agent_id, AgentToday()).to_dict()


def day_start(now: float, tz: str = "UTC") -> datetime:
    """Midnight of ``now``'s day in ``tz``, as an aware UTC datetime."""
    local = datetime.fromtimestamp(now, ZoneInfo(tz))
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(timezone.utc)


def _page_order(changed: bool) -> tuple:
    """The order pages are read in: the whole day by call id (the primary
    key), recent changes by (events_written_at, call_id), the index that
    finds them without walking the day."""
    c = interactions.c
    return (c.events_written_at, c.call_id) if changed else (c.call_id,)


@functools.cache
def _read_query(changed: bool, paged: bool, limited: bool) -> Select:
    """:func:`read_rows`'s statement for each shape, built once, its values
    bound at execution.  Why: a statement built per read (the page key's
    ``tuple_`` comparison most of all) left reference cycles behind, every
    2 s, for the full garbage collection (see screenpop.gc_tuning)."""
    c = interactions.c
    order = _page_order(changed)
    where = [c.started_at >= bindparam("since", type_=c.started_at.type)]
    if changed:
        where.append(c.events_written_at >= bindparam("changed_after", type_=c.events_written_at.type))
    if paged:
        where.append(tuple_(*order) > tuple_(*(bindparam(f"after_{i}", type_=column.type) for i, column in enumerate(order))))
    query = select(*[c[name] for name in COLUMNS]).where(and_(*where))
    if limited:
        query = query.order_by(*order).limit(bindparam("limit", type_=Integer))
    return query


async def read_rows(engine: AsyncEngine, since: datetime, changed_after: datetime | None = None, *,
                    after: tuple | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """The day's call rows (started at or after ``since``); only those whose
    events were written at or after ``changed_after`` when given.

    Calls still going whose events did not change are not read again: their
    figures depend on their events only, so an unchanged row folds to the
    same figures.  At 50 calls/s that clause re-read every call in progress
    twice a second.  The write time, not the PBX's time of the newest event
    (``last_event_at``): a call logged late, as after a database outage,
    carries old events but a new write time, so it is read like any other.

    ``after`` and ``limit``: one page, the rows after the key ``after`` in
    :func:`_page_order` (see :func:`read_pages`)."""
    params: dict[str, Any] = {"since": since}
    if changed_after is not None:
        params["changed_after"] = changed_after
    if after is not None:
        params.update((f"after_{i}", value) for i, value in enumerate(after))
    if limit is not None:
        params["limit"] = limit
    query = _read_query(changed_after is not None, after is not None, limit is not None)
    async with engine.connect() as conn:
        result = await conn.execute(query, params)
        keys = list(result.keys())
        return [dict(zip(keys, row)) for row in result]  # not row._mapping: its key view was built per row


async def read_pages(engine: AsyncEngine, since: datetime, changed_after: datetime | None = None,
                     page: int = 1000) -> AsyncIterator[list[dict[str, Any]]]:
    """:func:`read_rows` a page at a time.  Why: the whole day's rows are read
    at start (a restart late in a busy day: hundreds of thousands of rows);
    converted and folded in one go they held the event loop (and every pop)
    for seconds.  Between pages the loop runs."""
    names = [column.name for column in _page_order(changed_after is not None)]
    after = None
    while True:
        rows = await read_rows(engine, since, changed_after, after=after, limit=page)
        if rows:
            yield rows
        if len(rows) < page:
            return
        after = tuple(rows[-1][name] for name in names)
        await asyncio.sleep(0)


@dataclass
class StatsCache:
    """Today's figures, read from the log at start and refreshed when calls
    move (the service asks after call events), never per request.

    The whole day is read at start and when the day changes; after that only
    the rows written since ``overlap`` seconds before the newest write already
    seen.  The look-back covers transactions that commit a little after the
    time they stamped, and clocks of several nodes that differ by less.  A
    write delayed by a database outage is stamped when it is written, so it
    is counted without reading the day again (until 0005 the whole day was
    read every 10 minutes for it: a minute of CPU late in a busy day)."""

    engine: AsyncEngine
    threshold_for: Callable[[str], float]
    tz: str = "UTC"
    clock: Callable[[], float] = field(default=lambda: datetime.now(timezone.utc).timestamp())
    before_read: Callable[[], Any] | None = None  # e.g. the writer's flush, so the call just ended is in
    overlap: float = 10.0  # was 120, then 30: 1,500 rows re-read per refresh at 50 calls/s held the loop 30-40 ms
    page: int = 100  # rows folded between two turns of the event loop (250 still held it ~18 ms)
    figures: DayFigures = field(init=False)
    day: datetime | None = field(default=None, init=False)
    _newest: datetime | None = field(default=None, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    # agents whose figures the last refresh changed: only their messages are rebuilt
    agents_changed: set[str] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        self.figures = DayFigures(self.threshold_for)

    async def refresh(self) -> set[str]:
        """Read what changed; returns the queues whose figures changed (every
        queue known at a day change)."""
        async with self._lock:
            if self.before_read is not None:
                result = self.before_read()
                if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                    await result
            now = self.clock()
            start = day_start(now, self.tz)
            full = self.day != start
            if full:  # folded into new figures, swapped in once whole: readers never see half a day
                figures, after = DayFigures(self.threshold_for), None
            else:
                figures = self.figures
                after = self._newest - timedelta(seconds=self.overlap) if self._newest else None
            changed: set[str] = set()
            agents: set[str] = set()
            newest, rows_read = (None if full else self._newest), 0
            async for rows in read_pages(self.engine, start, after, self.page):
                rows_read += len(rows)
                for row in rows:
                    written = row["events_written_at"]
                    if written is not None and (newest is None or written > newest):
                        newest = written
                changed |= figures.update(rows)
                agents |= figures.agents_touched
                if full and newest is not None:
                    # As it goes, not only at the end: a whole-day read otherwise
                    # held every call of the day at once (the soak: +20 MiB per
                    # whole-day read after 10 and 20 minutes; 1.8 million calls
                    # by the evening of a busy day).  The newest write seen so
                    # far only grows, so this forgets no call the end would keep.
                    figures.forget_settled(newest - timedelta(seconds=self.overlap + SETTLED_MARGIN))
            if newest is not None:
                figures.forget_settled(newest - timedelta(seconds=self.overlap + SETTLED_MARGIN))
            if full:
                changed |= set(self.figures.queues)
                agents |= set(self.figures.agents)
                self.figures, self.day = figures, start
            self._newest = newest
            self.agents_changed = agents
            log.debug("supervision stats refreshed full=%s rows=%d queues_changed=%d", full, rows_read, len(changed))
            return changed

    def queue(self, name: str) -> dict[str, Any]:
        return self.figures.queue(name)

    def agent(self, agent_id: str) -> dict[str, Any]:
        return self.figures.agent(agent_id)

    def queue_names(self) -> set[str]:
        return set(self.figures.queues)


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
