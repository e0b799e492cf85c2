"""Replay a raw AMI capture through the tracker, no server needed.

The capture is read exactly as Asterisk sent it (banner included); the same
decoder and tracker as the live link turn it into call events, so a capture
from a customer's PBX reproduces what screenpop saw there."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable, Iterator

from screenpop.terminal import json_printable, printable

from telephony.agents import AgentResolver
from telephony.events import CallEvent
from telephony.protocol import AmiDecoder, DecodeStats
from telephony.tracker import CallTracker

CHUNK = 64 * 1024


@dataclass(slots=True)
class ReplayResult:
    stats: DecodeStats
    banner: str | None
    active_calls: int  # calls still in progress when the capture ended


def replay(chunks: Iterable[bytes], agents: AgentResolver | None = None, result: list[ReplayResult] | None = None) -> Iterator[CallEvent]:
    """Yield call events as the capture's chunks are decoded.

    ``result``, when given, receives one :class:`ReplayResult` at the end."""
    decoder = AmiDecoder()
    tracker = CallTracker(agents)
    for chunk in chunks:
        for message in decoder.feed(chunk):
            yield from tracker.feed(message)
    decoder.close()
    if result is not None:
        result.append(ReplayResult(decoder.stats, decoder.banner, tracker.active_calls))


def read_chunks(stream) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK):
        yield chunk


MISSED_WORDS = {
    "busy": "was busy (never rang)",
    "unavailable": "was unreachable (never rang)",
    "answered-elsewhere": "stopped ringing: answered elsewhere",
    "abandoned": "stopped ringing: the caller hung up",
}


def timeline_line(event: CallEvent, as_json: bool = False) -> str:
    """The line ``replay`` and ``demo --timeline`` print for an event: caller
    names and numbers are whatever the caller's side sent, so what a terminal
    would act on (escape sequences, a right-to-left override, a newline) is
    shown escaped, in the human line and in the JSON alike."""
    if as_json:
        return json_printable(json.dumps(event.to_dict(), ensure_ascii=False))
    return describe(event)


def describe(event: CallEvent) -> str:
    """One line of the human timeline, printable (:func:`screenpop.terminal.printable`)."""
    d = event.to_dict()
    kind = event.type.removeprefix("call.")
    caller = d.get("caller_number") or ("restricted" if d.get("presentation") == "restricted" else "withheld")
    if d.get("caller_name"):
        caller += f' "{d["caller_name"]}"'
    queue = f" ({d['queue']})" if d.get("queue") else ""
    if kind == "queued":
        detail = f"{caller} waits in {d['queue']} at position {d['position']}"
    elif kind == "ringing":
        detail = f"rings agent {d['agent']}{queue} for {caller}"
    elif kind == "missed":
        detail = f"agent {d['agent']} {MISSED_WORDS.get(d.get('reason'), 'did not answer')}"
    elif kind == "answered":
        detail = f"agent {d['agent']} answers{queue} after {d['wait_seconds']}s"
    elif kind == "transferred":
        target = d.get("to_agent") and f"agent {d['to_agent']}" or d.get("to_queue") and f"queue {d['to_queue']}" or d.get("to_number")
        detail = f"agent {d['from_agent']} transfers to {target}"
    elif kind == "abandoned":
        detail = f"caller hung up after waiting {d['wait_seconds']}s{queue}"
    else:
        who = f" with agent {d['agent']}" if d.get("agent") else ""
        detail = f"{d['reason']}{who}, talked {d['talk_seconds']}s"
    return printable(f"{event.ts[11:23]}  {event.call_id:<18} {kind:<11} {detail}")
