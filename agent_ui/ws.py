"""HTTP edge of the agent WebSocket: ``GET /ws``.

Authentication happens before the upgrade, so a refused browser gets a plain
401/403 it can act on (back to the login page) instead of a socket that opens
and closes.  The same session as the pages: ``authenticate`` is injected and
reads the cookie or the ``token`` query parameter; this module never looks at
credentials itself.

``?agent=ID`` names whose pops to follow: an agent may only name itself, a
supervisor or admin may follow any agent (``screenpop watch --agent``);
without it a supervisor's socket gets the queue and agent states.

A browser sends the session cookie with a WebSocket handshake from any page,
so a foreign page could open ``/ws`` as the logged-in agent and read the
customer cards (cross-site WebSocket hijacking).  Browsers always send
``Origin``; when it is there it must be this server (or a configured
origin).  Non-browser clients (``screenpop watch``) send none.
"""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Collection

from aiohttp import web
from yarl import URL

from agent_ui.connections import Connection, new_websocket
from agent_ui.hub import Hub, NotAllowed, audience_of
from agent_ui.jsonio import json_error
from agent_ui.request_cycles import let_go

log = logging.getLogger(__name__)

ROUTE = "/ws"

# The open socket of a /ws request, for middleware that must close it (a
# session that ends): ``request.get(CONNECTION)`` once the handler runs,
# then ``conn.close(SESSION_ENDED, "session ended", reason="session-ended")``.
CONNECTION = web.RequestKey("ws_connection", Connection)
SESSION_ENDED = 4401  # application close code: log in again, do not just reconnect

Authenticate = Callable[[web.Request], Awaitable[Any]]  # -> User | None


def same_origin(request: web.Request, allowed: Collection[str] = ()) -> bool:
    """True without an Origin header, or when it names this host (or an allowed origin).

    The host is compared, not the scheme: behind a TLS-terminating proxy the
    page is https while aiohttp sees http."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    if origin in allowed:
        return True
    try:
        url = URL(origin)
        host = url.raw_host
    except ValueError:
        return False
    if not host:
        return False
    authority = host if url.explicit_port is None else f"{host}:{url.explicit_port}"
    forwarded = request.headers.get("X-Forwarded-Host")
    return authority.lower() in {h.lower() for h in (request.host, forwarded) if h}


async def user_from_middleware(request: web.Request) -> Any:
    """For an app whose auth middleware already put the user on the request."""
    return request.get("user")


def setup(
    app: web.Application,
    hub: Hub,
    authenticate: Authenticate = user_from_middleware,
    *,
    path: str = ROUTE,
    allowed_origins: Collection[str] = (),
) -> None:
    """Add ``GET path`` serving ``hub``; sockets are closed on application shutdown.

    ``authenticate(request)`` returns the user (``.username``, ``.role``,
    ``.agent_id``) or None; by default the one a middleware stored as
    ``request["user"]``."""

    async def websocket(request: web.Request) -> web.StreamResponse:
        if not same_origin(request, allowed_origins):
            log.warning("ws refused reason=foreign-origin origin=%s remote=%s", request.headers.get("Origin", "")[:100], request.remote)
            return json_error(403, "this page may not open the agent socket (foreign Origin)")
        try:
            user = await authenticate(request)
        except Exception:  # the session store is down: the browser retries, it is not logged out
            log.exception("ws refused reason=authentication-failed remote=%s", request.remote)
            return json_error(503, "sessions unavailable, retry shortly", **{"Retry-After": "5"})
        if user is None:
            log.info("ws refused reason=unauthenticated remote=%s", request.remote)
            return json_error(401, "log in first (session cookie or token query parameter)")
        try:
            audience = audience_of(user, request.query.get("agent"))
        except NotAllowed as exc:
            log.warning("ws refused reason=not-allowed user=%s role=%s detail=%s", getattr(user, "username", "?"), getattr(user, "role", None), exc)
            return json_error(403, str(exc))
        if not hub.has_room_for(audience):
            log.warning("ws refused reason=too-many-sockets user=%s agent=%s", getattr(user, "username", "?"), audience.agent_id)
            return json_error(429, "too many open sockets for this agent; close some tabs", **{"Retry-After": "30"})
        ws = new_websocket(hub.settings)
        if not ws.can_prepare(request).ok:
            return json_error(426, "this endpoint speaks WebSocket only", Upgrade="websocket")
        await ws.prepare(request)
        transport = request.transport  # the request lets go of it when the connection is lost
        try:
            await hub.serve(ws, user, audience, transport=transport, on_open=lambda conn: request.__setitem__(CONNECTION, conn))
        finally:
            request.pop(CONNECTION, None)  # request -> connection -> response -> request: a cycle once over
            let_go(request.protocol, transport)  # the rest of the cycles aiohttp and asyncio leave (see request_cycles)
        return ws

    async def close_sockets(app: web.Application) -> None:
        await hub.close_all()

    app.router.add_get(path, websocket)
    app.on_shutdown.append(close_sockets)
