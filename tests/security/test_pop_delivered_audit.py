"""``pop.delivered`` is audited only for an agent whose open socket took the
pop (issue 18, point 16): the ingester publishes a pop for every agent the
queue rings, and an agent with no browser open was shown nothing.  A real
node (its web app, socket and audit log on SQLite), calls fed to its
orchestrator; the audit read back through the admin API."""
from __future__ import annotations

import asyncio
import json
import websockets

from telephony.events import CallQueued, CallRinging

TS = "2026-11-23T10:00:00.000000Z"


async def audited(node, action: str = "pop.delivered") -> list[tuple[str, str]]:
    status, body = await node.call("GET", f"/api/v1/audit?action={action}", "admin")
    assert status == 200, body
    return sorted((e["actor"], e["target_id"]) for e in body["items"])


async def test_only_agents_with_an_open_socket_are_audited_as_shown_the_pop(node):
    socket = await websockets.connect(f"{node.url.replace('http', 'ws')}/ws?token={node.tokens['agent']}")
    try:
        assert json.loads(await asyncio.wait_for(socket.recv(), 5))["type"] == "hello"
        orchestrator = node.service.orchestrator
        await orchestrator.handle(CallQueued("call-1", TS, "support", "+34912345678", "Ana", 1))
        await orchestrator.handle(CallRinging("call-1", TS, "1001", "support", "+34912345678", "Ana"))  # alice, online
        await orchestrator.handle(CallRinging("call-1", TS, "1002", "support", "+34912345678", "Ana"))  # nobody's browser
        await orchestrator.handle(CallQueued("call-2", TS, "support", "+34600111222", "Frank", 1))
        await orchestrator.handle(CallRinging("call-2", TS, "1003", "support", "+34600111222", "Frank"))
        pop = json.loads(await asyncio.wait_for(socket.recv(), 5))
        assert (pop["type"], pop["call_id"]) == ("pop", "call-1")
    finally:
        await socket.close()
    deadline = asyncio.get_running_loop().time() + 5
    while (seen := await audited(node)) != [("agent:1001", "call-1")]:
        assert not [a for a in seen if a[0] != "agent:1001"], seen  # never an agent without a socket
        assert asyncio.get_running_loop().time() < deadline, seen
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # the audit writer flushes every 0.05 s here: a late wrong entry would show
    assert await audited(node) == [("agent:1001", "call-1")]
