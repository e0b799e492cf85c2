"""Parse + track throughput on one core, on a large interleaved real stream.

The stream is built from the real captures in tests/fixtures: every copy of a
capture gets its own uniqueids, linkedids and bridge ids and a time offset,
then all events are merged by timestamp, so thousands of calls overlap the way
they do in a busy center.  The whole stream is encoded to bytes first; the
timed part is exactly what the live link does: AmiDecoder.feed on 64 KiB
reads, then CallTracker.feed on every message.

    .venv/bin/python bench/bench_tracker.py --copies 400
"""
from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from telephony.protocol import AmiDecoder, decode_all, encode_message  # noqa: E402
from telephony.tracker import CallTracker  # noqa: E402

CAPTURES = ["support_answered", "sales_no_answer_then_next", "billing_abandoned", "direct_call", "blind_transfer", "burst_small"]
ID_KEYS = ("Uniqueid", "Linkedid", "BridgeUniqueid")


def relabel(message: dict, copy: int, shift: float) -> dict:
    out = {}
    for key, value in message.items():
        if key.endswith(ID_KEYS) and value:
            value = f"{value}-{copy}"
        elif key == "Timestamp":
            value = f"{float(value) + shift:.6f}"
        out[key] = value
    return out


def build_stream(copies: int, spread: float) -> tuple[bytes, int, int]:
    """Return (bytes, number of AMI events, number of calls expected to end)."""
    per_capture = {}
    for name in CAPTURES:
        messages, _ = decode_all((ROOT / "tests" / "fixtures" / f"{name}.ami").read_bytes())
        per_capture[name] = [m for m in messages if "Event" in m and "Timestamp" in m]
    merged = []
    for copy in range(copies):
        name = CAPTURES[copy % len(CAPTURES)]
        shift = (copy / copies) * spread
        merged.extend(relabel(m, copy, shift) for m in per_capture[name])
        if copy % 200 == 0:
            print(f"\rbuilding stream: {copy}/{copies} captures", end="", file=sys.stderr, flush=True)
    merged.sort(key=lambda m: float(m["Timestamp"]))
    data = b"Asterisk Call Manager/11.0.0\r\n" + b"".join(encode_message(m) for m in merged)
    print(f"\rbuilding stream: {copies}/{copies} captures, {len(merged)} events, {len(data) / 1e6:.1f} MB", file=sys.stderr)
    return data, len(merged)


def run_once(data: bytes, chunk: int) -> tuple[float, int, int, int]:
    decoder = AmiDecoder()
    tracker = CallTracker()
    ended = events = 0
    gc.collect()
    start = time.perf_counter()
    for offset in range(0, len(data), chunk):
        for message in decoder.feed(data[offset : offset + chunk]):
            events += 1
            for call_event in tracker.feed(message):
                ended += call_event.type == "call.ended"
    elapsed = time.perf_counter() - start
    return elapsed, events, ended, tracker.tracked_channels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=400, help="capture copies to interleave (default 400)")
    parser.add_argument("--spread", type=float, default=600.0, help="seconds over which the copies start (default 600)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=64 * 1024, help="bytes per read")
    args = parser.parse_args()
    data, n_events = build_stream(args.copies, args.spread)
    best = None
    for attempt in range(args.repeat):
        elapsed, events, ended, left = run_once(data, args.chunk)
        rate = events / elapsed
        print(f"run {attempt + 1}/{args.repeat}: {events} events in {elapsed:.2f}s = {rate:,.0f} events/s, {ended} calls ended, {left} channels left", file=sys.stderr)
        assert events == n_events, "the decoder lost events"
        best = max(best or 0, rate)
    print(f"parse+track: best {best:,.0f} AMI events/s on one core ({n_events} events, {args.copies} interleaved captures, {args.chunk}-byte reads)")


if __name__ == "__main__":
    main()
