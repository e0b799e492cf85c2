"""HTTP edge of the agent WebSocket: ``GET /ws``.

Authentication happens before the upgrade, so a refused browser gets a plain
401/403 it can act on (back to the login page) instead of a socket that opens
and closes.  The same session as the pages: ``authenticate`` is injected and
reads the cookie or the ``token`` query parameter; this module never looks at
credentials itself.
"""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from aiohttp import web

from agent_ui.connections import new_websocket
from agent_ui.hub import Hub, audience_of

log = logging.getLogger(__name__)

ROUTE = "/ws"

Authenticate = Callable[[web.Request], Awaitable[Any]]  # -> User | None


def json_error(status: int, reason: str, **headers: str) -> web.Response:
    return web.json_response({"error": reason}, status=status, headers=headers or None)


def setup(app: web.Application, hub: Hub, authenticate: Authenticate, *, path: str = ROUTE) -> None:
    async def websocket(request: web.Request) -> web.StreamResponse:
        user = await authenticate(request)
        if user is None:
            log.info("ws refused reason=unauthenticated remote=%s", request.remote)
            return json_error(401, "log in first (session cookie or token query parameter)")
        if audience_of(user) is None:
            log.warning("ws refused reason=no-audience user=%s role=%s", getattr(user, "username", "?"), getattr(user, "role", None))
            return json_error(403, "this account cannot receive pops (no agent id or unknown role)")
        ws = new_websocket(hub.settings)
        if not ws.can_prepare(request).ok:
            return json_error(426, "this endpoint speaks WebSocket only", Upgrade="websocket")
        await ws.prepare(request)
        await hub.serve(ws, user, transport=request.transport)
        return ws

    async def close_sockets(app: web.Application) -> None:
        await hub.close_all()

    app.router.add_get(path, websocket)
    app.on_shutdown.append(close_sockets)
