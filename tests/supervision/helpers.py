"""Drive the queue monitor the way the live feed does: each AMI event to the
monitor, then to the tracker, whose call events go to the monitor too."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from telephony.events import CallEvent
from telephony.protocol import AmiDecoder
from telephony.queues import Changes, QueueMonitor
from telephony.tracker import CallTracker

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CAPTURES = ("support_answered", "sales_no_answer_then_next", "billing_abandoned", "direct_call", "blind_transfer", "burst_small")


def capture_messages(name: str, chunk: int = 1400) -> list[dict]:
    """The capture's bytes through the decoder, in TCP-sized pieces."""
    data = (FIXTURES / f"{name}.ami").read_bytes()
    decoder = AmiDecoder()
    out = []
    for i in range(0, len(data), chunk):
        out.extend(decoder.feed(data[i:i + chunk]))
    decoder.close()
    assert decoder.stats.truncated == 0 and decoder.stats.oversized == 0
    return out


class Replayer:
    def __init__(self, monitor: QueueMonitor | None = None, tracker: CallTracker | None = None):
        self.monitor = monitor or QueueMonitor()
        self.tracker = tracker or CallTracker()
        self.call_events: list[CallEvent] = []

    def feed(self, message: dict) -> Changes:
        changes = self.monitor.feed(message)
        for event in self.tracker.feed(message):
            self.call_events.append(event)
            changes.update(self.monitor.call_event(event))
        return changes

    def run(self, messages: Iterable[dict], after: Callable[[dict, Changes], None] | None = None) -> None:
        for message in messages:
            changes = self.feed(message)
            if after is not None:
                after(message, changes)
