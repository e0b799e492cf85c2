"""Reading what a WebSocket client (the `websockets` package, as a browser
stands in) receives: until a message matches, or for a while."""
from __future__ import annotations

import asyncio
import json
import time


async def collect(ws, until, timeout: float = 15.0) -> list[dict]:
    messages: list[dict] = []

    async def read():
        while True:
            message = json.loads(await ws.recv())
            messages.append(message)
            if until(message):
                return

    try:
        await asyncio.wait_for(read(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out; received {messages}") from None
    return messages


async def drain(ws, seconds: float) -> list[dict]:
    """Everything that arrives within ``seconds`` (to prove nothing more comes)."""
    messages = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            messages.append(json.loads(await asyncio.wait_for(ws.recv(), left)))
        except asyncio.TimeoutError:
            break
    return messages
