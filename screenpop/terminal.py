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

__all__ = ["printable"]


def printable(text: str) -> str:
    """``text`` with every character Python does not call printable (control
    and format characters, surrogates, line and paragraph separators, any
    whitespace but the space) written as its escape (``\\x1b``, ``\\u202e``,
    ``\\n``): the value stays readable, and nothing reaches the terminal raw,
    so one value is always one piece of one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
