"""The AMI wire format: bytes in, header dicts out, and back.

Pure code, no I/O: the live connection, the replay of captures and the PBX
simulator all frame and encode through this one module, so a stream behaves
the same whether it comes from Asterisk, a file or the simulator.

Framing happens on bytes, before any decoding: a multi-byte character split
across two TCP reads is reassembled before it is decoded (panoramisk decodes
each read on its own and loses letters: "José" arrives as "Jos").  Damaged
input is counted in :class:`DecodeStats` and skipped with a warning; it never
raises and never costs a neighbouring message.
"""
from __future__ import annotations

import itertools
import logging
import re
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

BANNER_PREFIX = "Asterisk Call Manager/"
EOL = b"\r\n"

# A message ends at an empty line.  Asterisk sends CRLF; bare LF is tolerated.
_MESSAGE_END = re.compile(rb"\r?\n\r?\n")
_LINE_SPLIT = re.compile(r"\r?\n")
_TEXT_END = re.compile(r"\r?\n\r?\n")
_SEPARATOR, _ONCE = itertools.repeat(": "), itertools.repeat(1)


def _split_blocks(text: str) -> list[str]:
    if "\n\n" not in text and text.count("\n") == text.count("\r\n"):
        return text.split("\r\n\r\n")  # pure CRLF, as Asterisk sends it
    return _TEXT_END.split(text)


def _event_name(block: str) -> str:
    """The name of a block that starts with ``Event: ``, without parsing the rest."""
    end = block.find("\n")
    return (block[7:] if end < 0 else block[7:end]).rstrip("\r").strip()


AmiMessage = dict[str, str]
"""One AMI event or response: header name -> value, in arrival order.

A repeated header (``ChanVariable`` for instance) keeps every value, joined
with a newline, so the type stays ``str`` for the fast path."""


@dataclass(slots=True)
class DecodeStats:
    """What the decoder saw and what it had to throw away."""

    messages: int = 0
    unread: int = 0  # events no consumer reads, skipped before parsing (not damage)
    garbage_lines: int = 0  # a line that is not "Key: value"
    headerless: int = 0  # a block with neither Event nor Response
    oversized: int = 0  # a message or line over the limits, dropped
    invalid_utf8: int = 0  # lines whose undecodable bytes were replaced
    truncated: int = 0  # a partial message left when the stream closed
    problems: list[str] = field(default_factory=list)  # the last few, for logs

    @property
    def skipped(self) -> int:
        return self.garbage_lines + self.headerless + self.oversized + self.truncated

    def note(self, kind: str, detail: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.problems) >= 20:
            del self.problems[0]
        self.problems.append(f"{kind}: {detail}")
        count = getattr(self, kind)
        # First occurrences are logged, then one line per thousand: a flood of
        # garbage must not turn into a flood of log lines.
        if count <= 10 or count % 1000 == 0:
            log.warning("ami input skipped kind=%s count=%d detail=%s", kind, count, detail)


class AmiDecoder:
    """Incremental AMI framer and parser.

    Feed it raw bytes in chunks of any size; it returns the complete messages
    each chunk finished.  The banner line (``Asterisk Call Manager/x.y``) is
    recognised at the start of the stream and stored in :attr:`banner`.

    ``wanted_events``: the event names the consumers read; any other event
    is counted in ``stats.unread`` and skipped before it is parsed.  About
    three AMI events in four (``VarSet``, ``Newexten``, ``DeviceStateChange``,
    ``Newstate``...) describe the dialplan's work, not the call, and parsing
    them was the largest single cost of a busy node.  An event that answers an
    action (it carries an ``ActionID``) is always kept.  ``None``: keep all.
    """

    def __init__(self, *, max_message_bytes: int = 256 * 1024, max_line_bytes: int = 16 * 1024,
                 accept_actions: bool = False, wanted_events: frozenset[str] | None = None):
        self.max_message_bytes = max_message_bytes
        self.max_line_bytes = max_line_bytes
        # A server (the PBX simulator) reads actions, which have neither Event nor Response.
        self.accept_actions = accept_actions
        self.wanted_events = wanted_events
        self.banner: str | None = None
        self.stats = DecodeStats()
        self._buffer = bytearray()
        self._at_start = True
        self._discarding = False  # inside an oversized message, skipping to its end

    def feed(self, data: bytes) -> list[AmiMessage]:
        buffer = self._buffer
        buffer += data
        if self._at_start and not self._take_banner():
            return []
        # Everything up to the last empty line is complete: decode it in one
        # go (a message boundary is ASCII, so no character is cut there).
        end = max(buffer.rfind(b"\n\r\n"), buffer.rfind(b"\n\n"))
        if end < 0:
            if len(buffer) > self.max_message_bytes:
                self._start_discarding()
            return []
        end += 3 if buffer[end + 1] == 13 else 2
        region = bytes(buffer[:end])
        del buffer[:end]
        try:
            blocks = _split_blocks(region.decode("utf-8"))
        except UnicodeDecodeError:
            blocks = [self._decode_lines(raw) for raw in _MESSAGE_END.split(region)]
        out: list[AmiMessage] = []
        wanted = self.wanted_events
        for block in blocks:
            if self._discarding:
                self._discarding = False  # the tail of an oversized message
                continue
            if not block:
                continue
            if wanted is not None and block.startswith("Event: ") and _event_name(block) not in wanted \
                    and "ActionID:" not in block:
                self.stats.unread += 1
                continue
            if len(block) > self.max_message_bytes:
                self.stats.note("oversized", f"message of {len(block)} characters")
                continue
            message = self._parse_block(block)
            if message is not None:
                out.append(message)
        if len(buffer) > self.max_message_bytes:
            self._start_discarding()
        return out

    def _start_discarding(self) -> None:
        """No end in sight: drop what we hold and skip to the next empty line."""
        if not self._discarding:
            self.stats.note("oversized", f"message over {self.max_message_bytes} bytes")
        self._discarding = True
        # Keep the tail: an end marker may be split across this read and the next.
        del self._buffer[:-3]

    def close(self) -> list[AmiMessage]:
        """End of stream: a partial message left over is counted, not parsed."""
        rest = bytes(self._buffer).strip()
        self._buffer.clear()
        if rest and not self._discarding:
            if self._at_start and rest.startswith(BANNER_PREFIX.encode()):
                self.banner = rest.decode("utf-8", "replace")
            else:
                self.stats.note("truncated", f"{len(rest)} bytes without a closing empty line")
        self._discarding = False
        return []

    def _take_banner(self) -> bool:
        """Consume the banner line if the stream starts with one.

        Returns False while the first line is still incomplete."""
        prefix = BANNER_PREFIX.encode()
        if len(self._buffer) < len(prefix) and prefix.startswith(self._buffer):
            return False  # too short to tell yet
        if not self._buffer.startswith(prefix):
            self._at_start = False  # no banner: a capture may start mid-stream
            return True
        newline = self._buffer.find(b"\n")
        if newline < 0:
            if len(self._buffer) > self.max_line_bytes:
                self._at_start = False
                return True
            return False
        self.banner = self._buffer[:newline].rstrip(b"\r").decode("utf-8", "replace")
        del self._buffer[: newline + 1]
        self._at_start = False
        return True

    def _parse_block(self, text: str) -> AmiMessage | None:
        if len(text) <= self.max_line_bytes and "\r\n" in text and "\n\n" not in text:
            # Fast path for the well-formed CRLF block Asterisk sends: one C-level
            # split per line.  Anything unusual falls through to the careful path.
            lines = text.split("\r\n")
            try:
                message = dict(map(str.split, lines, _SEPARATOR, _ONCE))
            except ValueError:
                pass
            else:
                if len(message) == len(lines) and (
                    "Event" in message or "Response" in message or (self.accept_actions and "Action" in message)
                ):
                    self.stats.messages += 1
                    return message
        message = {}
        body: list[str] = []
        for line in _LINE_SPLIT.split(text):
            key, sep, value = line.partition(":")
            if not sep or not key:
                if not line.strip():
                    continue
                if message.get("Response") == "Follows":
                    body.append(line)  # old-style Command output
                    continue
                self.stats.note("garbage_lines", repr(line[:80]))
                continue
            if len(line) > self.max_line_bytes:
                self.stats.note("oversized", f"header {key[:40]!r} of {len(line)} bytes")
                continue
            if value[:1] == " ":
                value = value[1:]
            if key in message:
                message[key] += "\n" + value
            else:
                message[key] = value
        if body:
            message["Output"] = "\n".join(body)
        if "Event" not in message and "Response" not in message and not (self.accept_actions and "Action" in message):
            if message:
                self.stats.note("headerless", f"block with keys {sorted(message)[:5]}")
            return None
        self.stats.messages += 1
        return message

    def _decode_lines(self, block: bytes) -> str:
        lines = []
        for raw in block.split(b"\n"):
            try:
                lines.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                self.stats.note("invalid_utf8", repr(raw[:80]))
                lines.append(raw.decode("utf-8", "replace"))
        return "\n".join(lines)


def encode_message(headers: dict[str, object]) -> bytes:
    """Encode one action (client side) or event/response (server side).

    A value may be a list for a repeated header.  CR or LF inside a key or a
    value would let one field inject whole messages, so it is refused."""
    parts: list[str] = []
    for key, value in headers.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            text = "" if item is None else str(item)
            if any(c in key for c in "\r\n:") or "\r" in text or "\n" in text:
                raise ValueError(f"AMI header {key!r} contains a line break or a colon in its name")
            parts.append(f"{key}: {text}\r\n")
    parts.append("\r\n")
    return "".join(parts).encode("utf-8")


def decode_all(data: bytes) -> tuple[list[AmiMessage], AmiDecoder]:
    """Decode a whole capture in one go (replay, tests, benchmarks)."""
    decoder = AmiDecoder()
    messages = decoder.feed(data)
    messages += decoder.close()
    return messages, decoder
