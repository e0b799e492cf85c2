"""An ended socket is freed by reference counting, not left to a full
garbage collection (whole node: the auth middleware, the session watch and
the hub, as the soak runs them).

This process keeps full collections rare (screenpop.gc_tuning): a cycle
among frozen objects waits for a thaw, a pause of a second or more.  Before
these fixes every dropped socket left 75 objects in cycles (our tracebacks
and tasks, then aiohttp's heartbeat callback and asyncio's transport), and
the soak's memory grew with every reconnect storm.  Each test ends sockets
one way while pops flow, then takes a census of what only a full
collection would free."""
from __future__ import annotations

import asyncio
import gc
from collections import Counter

import pytest
from aiohttp import WSCloseCode

SOCKET_KINDS = ("aiohttp.", "asyncio.", "agent_ui.", "screenpop.", "telephony.", "multidict.", "socket.", "frame ")


def cyclic_garbage() -> Counter:
    """What a full collection would free now, by type (everything unfrozen)."""
    gc.unfreeze()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return Counter(
            f"frame {o.f_code.co_qualname}" if type(o).__name__ == "frame" else f"{type(o).__module__}.{type(o).__qualname__}"
            for o in gc.garbage
        )
    finally:
        gc.garbage.clear()
        gc.set_debug(0)


def abort(ws) -> None:
    ws.transport.abort()  # a reset: no closing handshake


async def close_from_browser(ws) -> None:
    await ws.close()


@pytest.mark.parametrize("end", ["reset", "browser-closes", "server-closes"])
async def test_ended_sockets_leave_nothing_in_reference_cycles(stack, end):
    token = await stack.token("agent1001")
    sockets = [await stack.socket("agent1001", token) for _ in range(10)]
    hub = stack.service.hub
    stack.service.gc_tuning.freeze_every = 3600.0  # no freeze while we look

    async def pump():
        n = 0
        while True:
            n += 1
            hub.send_to_agent("1001", {"type": "card", "call_id": f"c{n}", "card": {"note": "x" * 500}})
            await asyncio.sleep(0.001)

    pumping = asyncio.create_task(pump())
    await asyncio.sleep(0.3)
    cyclic_garbage()  # what came before out of the way
    if end == "reset":
        for ws in sockets:
            abort(ws)
    elif end == "browser-closes":
        await asyncio.gather(*(close_from_browser(ws) for ws in sockets))
    else:
        for conn in hub.connections_of("1001"):
            conn.close(WSCloseCode.GOING_AWAY, "bye")
    for _ in range(200):
        if len(hub) == 0:
            break
        await asyncio.sleep(0.02)
    assert len(hub) == 0
    pumping.cancel()
    await asyncio.sleep(0.3)  # aiohttp closes the transport after the handler returns
    left = cyclic_garbage()
    ours = {kind: n for kind, n in left.items() if kind.startswith(SOCKET_KINDS)}
    assert ours == {}, f"left in cycles by 10 ended sockets: {dict(left)}"
