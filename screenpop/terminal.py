"""Text from outside, made safe for a terminal.

Caller ID names are set by whoever places the call, and customer fields by
whoever typed them into a business system: either can carry escape
sequences (retitle the window, clear the screen, fake a line), a
right-to-left override that makes ``exe.png`` read as ``png.exe``, or a
newline that forges a second output line.  Every command that prints such a
value (``replay``, ``lookup``, ``audit``, ``watch``, ``demo --timeline``)
passes it through :func:`printable`, the one place this rule lives.
"""
from __future__ import annotations

__all__ = ["json_printable", "printable"]


def printable(text: str) -> str:
    """``text`` with every character Python does not call printable (control
    and format characters, surrogates, line and paragraph separators, any
    whitespace but the space) written as its escape (``\\x1b``, ``\\u202e``,
    ``\\n``): the value stays readable, and nothing reaches the terminal raw,
    so one value is always one piece of one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def json_printable(text: str) -> str:
    """JSON text (``json.dumps(..., ensure_ascii=False)``) with every
    character a terminal would act on written as a JSON escape (``\\u202e``,
    ``\\u009b``): the same value for a parser, nothing raw for the terminal.
    ``json.dumps`` escapes only the C0 controls; outside strings JSON has only
    spaces and newlines, which stay."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == "\n" else _json_escape(ch) for ch in text)


def _json_escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # outside the BMP: a surrogate pair, as JSON writes it
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
