"""A dropped socket's errors are let go with it (whole node: the auth
middleware, the session watch and the hub, as the soak runs them).

Kept, a cancelled writer's CancelledError, a reset mid-write and the
stream's end held tracebacks whose frames held the connection: reference
cycles only a full garbage collection frees, and this process keeps those
rare (screenpop.gc_tuning).  The soak found 187,000 such objects after two
reconnect storms."""
from __future__ import annotations

import asyncio
import gc


async def test_sockets_reset_while_pops_flow_leave_no_frames_in_cyclic_garbage(stack):
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
    gc.unfreeze()
    gc.collect()  # what came before out of the way
    for ws in sockets:
        ws.transport.abort()
    for _ in range(200):
        if len(hub) == 0:
            break
        await asyncio.sleep(0.02)
    assert len(hub) == 0
    pumping.cancel()
    await asyncio.sleep(0.1)
    gc.unfreeze()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        frames = sorted({o.f_code.co_qualname for o in gc.garbage if type(o).__name__ == "frame"})
    finally:
        gc.garbage.clear()
        gc.set_debug(0)
    assert frames == []
