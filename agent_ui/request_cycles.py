"""Let an ended WebSocket request be freed by reference counting.

Why: this process keeps full garbage collections rare
(``screenpop.gc_tuning``): what lives long is frozen, and a reference cycle
among frozen objects is only reclaimed by a *thaw*, a pause of a second or
more on a busy node.  Left alone, every closed agent socket leaves 32 objects
in such cycles, most of them aiohttp's and asyncio's, holding the socket's
buffers: a reconnect storm of 2,000 agents left 30 MiB, and memory grew with
each storm until a thaw paused every pop in flight.

The cycles, and the one edge of each that is cut once nobody uses it:

* the request's protocol keeps the response's heartbeat callback
  (``RequestHandler._data_received_cb``, a bound method of the
  ``WebSocketResponse``), and the response keeps the request, whose
  ``protocol`` is that handler: cut once the socket is closed (the heartbeat
  is cancelled by then, so the callback has nothing left to do);
* a closed asyncio socket transport keeps its own ``_read_ready_cb`` (a bound
  method of itself); Python 3.12 clears it in ``close()`` (cpython gh-100348),
  3.11 does not: cut once the transport is closing (its reader is removed by
  then, so the callback is never called again).

Both are private attributes of the libraries, read with ``getattr``: a
version that renames them leaves the cycles (the garbage collector still
frees them, later) and never breaks a socket.
``tests/agent_ui/test_socket_cycles.py`` fails when they come back.
"""
from __future__ import annotations

import asyncio
from typing import Any

RETRY_AFTER = 1.0  # seconds: aiohttp closes the transport once the handler has returned
RETRIES = 5


def let_go(protocol: Any, transport: asyncio.Transport | None, *, retries: int = RETRIES) -> None:
    """Cut both cycles of an ended WebSocket request (the socket closed).

    The transport's is only cut once it is closing; until then this tries
    again every :data:`RETRY_AFTER` seconds, ``retries`` times."""
    if getattr(protocol, "_data_received_cb", None) is not None:
        protocol._data_received_cb = None
    if transport is None:
        return
    if transport.is_closing():
        if getattr(transport, "_read_ready_cb", None) is not None:
            transport._read_ready_cb = None
    elif retries > 0:
        asyncio.get_running_loop().call_later(RETRY_AFTER, lambda: let_go(None, transport, retries=retries - 1))
