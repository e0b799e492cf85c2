"""Asterisk's own record of a call (CEL rows) turned into call events.  Pure.

When the AMI link was down, Asterisk went on and wrote what happened to its
Channel Event Logging table (``cel_pgsql``, ``cel_odbc``; FreePBX's
``asteriskcdrdb.cel``).  The rows of one ``linkedid`` tell the whole call:
when its channels began and ended, which application ran (``Queue`` with its
queue name in ``appdata``), which agent legs Asterisk dialed, which of them
answered and bridged with the caller, and when the last channel went
(``LINKEDID_END``).  :func:`call_events` replays them as the same call events
the tracker makes from AMI, with Asterisk's own times, so the interaction log
folds them like any other call.

What the rows cannot say (see tests/fixtures/cdr/README.md): the caller-ID
presentation (a number the caller withheld is stored plainly; only a dialplan
``Set(CALLERID(num-pres)=prohib)`` shows as an application), AMI's per-agent
dial status (a busy phone shows as the agent leg's hang-up cause 17), queue
positions.  The caller's presentation is therefore an input: the caller as
AMI saw it when it did, else the caller's choice read from the dialplan,
else ``unverified`` (then :func:`call_events` withholds the number unless
told to trust it).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from telephony.agents import AgentResolver
from telephony.events import (
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallMissed,
    CallQueued,
    CallRinging,
    CallTransferred,
    iso_utc,
)
from telephony.tracker import WITHHELD

# Hang-up causes (Q.850) of an agent leg whose phone never rang.
NEVER_RANG_CAUSES = {1: "unavailable", 3: "unavailable", 17: "busy", 20: "unavailable", 27: "unavailable",
                     34: "unavailable", 38: "unavailable"}
RESTRICTING_SETS = ("callerid(num-pres)=", "callerid(pres)=", "callerid(name-pres)=")


@dataclass(frozen=True, slots=True)
class CelRow:
    """One CEL row, the columns this module reads (the table may have more)."""

    id: int
    eventtype: str
    eventtime: float  # epoch seconds, UTC
    channame: str
    uniqueid: str
    linkedid: str
    cid_num: str = ""
    cid_name: str = ""
    appname: str = ""
    appdata: str = ""
    peer: str = ""
    extra: str = ""

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> CelRow:
        """A row as a database driver or a CSV reader gives it: ``eventtime``
        a naive UTC datetime (``usegmtime=yes``) or its text."""
        return cls(
            id=int(row.get("id") or 0), eventtype=str(row["eventtype"]), eventtime=epoch_utc(row["eventtime"]),
            channame=str(row.get("channame") or ""), uniqueid=str(row.get("uniqueid") or ""),
            linkedid=str(row.get("linkedid") or ""), cid_num=str(row.get("cid_num") or ""),
            cid_name=str(row.get("cid_name") or ""), appname=str(row.get("appname") or ""),
            appdata=str(row.get("appdata") or ""), peer=str(row.get("peer") or ""), extra=str(row.get("extra") or ""),
        )

    def extra_json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.extra) if self.extra else {}
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


def epoch_utc(value: Any) -> float:
    """A CEL/CDR time (naive UTC datetime, or its ISO text) -> epoch seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip())
    if not isinstance(value, datetime):
        raise ValueError(f"not a time: {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


@dataclass(slots=True)
class _Leg:
    agent: str
    uid: str
    rang_at: float
    answered_at: float | None = None
    bridged: bool = False
    never_rang: str | None = None  # busy / unavailable
    ended_at: float | None = None


def presentation_from_dialplan(rows: Iterable[CelRow]) -> str | None:
    """``restricted`` when the caller's dialplan hid the number, else None
    (the rows cannot tell a trunk's own restriction)."""
    for row in rows:
        if row.eventtype == "APP_START" and row.appname.lower() == "set":
            data = row.appdata.replace(" ", "").lower()
            for prefix in RESTRICTING_SETS:
                if data.startswith(prefix) and data[len(prefix):].startswith(("prohib", "unavailable")):
                    return "restricted"
    return None


def call_events(rows: Iterable[CelRow], agents: AgentResolver | None = None, *, presentation: str | None = None,
                trust_unseen_numbers: bool = False) -> list[CallEvent]:
    """The call events of one call (the rows of one ``linkedid``), in time order.

    ``presentation``: what AMI knew of the caller (None: AMI never saw the
    call).  A call that is not over yet (no ``LINKEDID_END``) gets no
    ``call.ended``.  Calls that never reached an agent and never entered a
    queue (internal, outbound) give nothing, as in the tracker."""
    rows = sorted(rows, key=lambda r: (r.eventtime, r.id))
    if not rows:
        return []
    agents = agents or AgentResolver()
    call_id = rows[0].linkedid
    caller_uids = {r.uniqueid for r in rows if not agents.agent_of(r.channame)}
    caller_rows = [r for r in rows if r.uniqueid in caller_uids]
    if not caller_rows:
        return []
    started = min(r.eventtime for r in caller_rows if r.eventtype == "CHAN_START") if any(
        r.eventtype == "CHAN_START" for r in caller_rows) else caller_rows[0].eventtime

    number, name = _caller(caller_rows)
    known = presentation or presentation_from_dialplan(caller_rows)
    if known == "restricted" or (known is None and not trust_unseen_numbers):
        shown = "restricted" if known == "restricted" else "unverified"
        number = name = None
    else:
        shown = "allowed" if number else "unavailable"

    queue_start = next((r for r in caller_rows if r.eventtype == "APP_START" and r.appname.lower() == "queue"), None)
    queue = queue_start.appdata.split(",", 1)[0].strip() or None if queue_start else None
    legs = _agent_legs(rows, agents, caller_uids)
    if queue is None and not legs:
        return []  # no queue, no agent: not a customer call
    ended = next((r.eventtime for r in rows if r.eventtype == "LINKEDID_END"), None)

    events: list[tuple[float, int, CallEvent]] = []

    def emit(ts: float, event: CallEvent) -> None:
        events.append((ts, len(events), event))

    waiting_since = queue_start.eventtime if queue_start else started
    if queue_start is not None:
        emit(queue_start.eventtime, CallQueued(call_id, iso_utc(queue_start.eventtime), queue, number, name, None, shown))
    answers = sorted((leg for leg in legs if leg.answered_at is not None and leg.bridged), key=lambda l: l.answered_at)
    first_answer = answers[0].answered_at if answers else None
    previous: _Leg | None = None
    attended = [r.eventtime for r in rows if r.eventtype == "ATTENDEDTRANSFER"]
    for leg in legs:
        if attended and first_answer is not None and leg.rang_at > first_answer:
            continue  # the agent's consultation call: AMI shows no ring for it either
        emit(leg.rang_at, CallRinging(call_id, iso_utc(leg.rang_at), leg.agent, queue, number, name, shown))
        if leg.never_rang:
            emit(leg.rang_at, CallMissed(call_id, iso_utc(leg.ended_at or leg.rang_at), leg.agent, leg.never_rang))
        elif leg in answers:
            continue
        else:
            end = leg.ended_at if leg.ended_at is not None else (ended or leg.rang_at)
            reason = "answered-elsewhere" if first_answer is not None and end >= first_answer else (
                "abandoned" if ended is not None and end >= ended - 1.0 else "no-answer")
            emit(end, CallMissed(call_id, iso_utc(end), leg.agent, reason))
    for leg in answers:
        if previous is not None and attended:
            # The agent talked to the target first, then handed the caller
            # over: the call moves at the transfer, as the tracker tells it
            # (call.transferred, no answer of its own).
            moved = attended.pop(0)
            emit(moved, CallTransferred(call_id, iso_utc(moved), previous.agent, to_agent=leg.agent))
            previous = leg
            continue
        if previous is not None:
            emit(leg.answered_at, CallTransferred(call_id, iso_utc(leg.answered_at), previous.agent, to_agent=leg.agent))
        wait = max(0.0, leg.answered_at - (waiting_since if previous is None else leg.rang_at))
        emit(leg.answered_at, CallAnswered(call_id, iso_utc(leg.answered_at), leg.agent, queue, round(wait, 3)))
        previous = leg
    if ended is not None:
        if first_answer is not None:
            reason, agent, talk = "completed", answers[-1].agent, round(max(0.0, ended - first_answer), 3)
        else:
            gave_up = queue is not None or any(l.ended_at is not None and l.ended_at >= ended - 1.0 and not l.never_rang for l in legs)
            reason, agent, talk = ("abandoned" if gave_up else "unanswered"), None, 0.0
            if gave_up:
                emit(ended, CallAbandoned(call_id, iso_utc(ended), queue, round(max(0.0, ended - waiting_since), 3)))
        emit(ended, CallEnded(call_id, iso_utc(ended), agent, reason, talk))
    events.sort(key=lambda item: (item[0], item[1]))
    return [event for _, _, event in events]


def _caller(rows: list[CelRow]) -> tuple[str | None, str | None]:
    for row in rows:
        number = row.cid_num.strip()
        if number and number.lower() not in WITHHELD:
            name = row.cid_name.strip()
            return number, (name if name and name.lower() not in WITHHELD else None)
    return None, None


def _agent_legs(rows: list[CelRow], agents: AgentResolver, caller_uids: set[str]) -> list[_Leg]:
    """One leg per channel Asterisk dialed for an agent.  A Local pair counts
    once (its ``;1`` half is the one dialed; the ``;2`` half answers and
    hangs up with the phone's cause)."""
    legs: dict[str, _Leg] = {}  # uid of the dialed channel
    halves: dict[str, str] = {}  # uid of a ;2 half -> the leg's uid
    pending: dict[str, str] = {}  # Local base name -> uid of its ;1
    caller_bridges = {r.extra_json().get("bridge_id") for r in rows if r.eventtype == "BRIDGE_ENTER" and r.uniqueid in caller_uids}
    caller_bridges.discard(None)
    for row in rows:
        agent = agents.agent_of(row.channame)
        if not agent:
            continue
        if row.eventtype == "CHAN_START":
            base, _, half = row.channame.rpartition(";")
            if row.channame.startswith("Local/") and half == "2" and base in pending:
                halves[row.uniqueid] = pending.pop(base)
                continue
            legs[row.uniqueid] = _Leg(agent, row.uniqueid, row.eventtime)
            if row.channame.startswith("Local/") and half == "1":
                pending[base] = row.uniqueid
            continue
        leg = legs.get(halves.get(row.uniqueid, row.uniqueid))
        if leg is None:
            continue
        if row.eventtype == "ANSWER" and leg.answered_at is None:
            leg.answered_at = row.eventtime
        elif row.eventtype == "BRIDGE_ENTER" and row.extra_json().get("bridge_id") in caller_bridges:
            leg.bridged = True
        elif row.eventtype == "HANGUP":
            cause = row.extra_json().get("hangupcause")
            if leg.answered_at is None and isinstance(cause, int) and cause in NEVER_RANG_CAUSES:
                leg.never_rang = NEVER_RANG_CAUSES[cause]
            if leg.ended_at is None or row.uniqueid == leg.uid:
                leg.ended_at = row.eventtime
    return sorted(legs.values(), key=lambda leg: leg.rang_at)


def group_by_call(rows: Iterable[CelRow]) -> dict[str, list[CelRow]]:
    calls: dict[str, list[CelRow]] = {}
    for row in rows:
        calls.setdefault(row.linkedid, []).append(row)
    return calls
