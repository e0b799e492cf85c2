"""REST routes of the supervisors' view, and the wallboard's read-only feed.

``/api/v1/queues`` and ``/api/v1/agents`` (with one queue's or one agent's
calls of the day) are for supervisors and admins.  ``/api/v1/wallboard`` is
for a screen on the wall that has no login: it shows the queues with a
token of its own (``[supervision] wallboard_token``), compared in constant
time, and without who is calling (a wall is seen by visitors too).

Answers are shown as the reader's role may see them (``[privacy]``: with
``partial_phone_roles = ["supervisor"]`` a supervisor reads callers'
numbers as ``+34*******678`` in the waiting callers, the agents' calls and
the calls of the day; an admin not listed reads them whole), like every
other API answer.

The outcome route belongs to the interactions API; here a response hook
watches it, so an agent who saves an outcome leaves wrap-up at once.
"""
from __future__ import annotations

import hmac
import logging
from datetime import datetime
from typing import Any, Callable

from aiohttp import web

from screenpop.auth.accounts import SUPERVISING_ROLES
from screenpop.security.privacy import NO_MASKING, PrivacyRules
from screenpop.supervision.stats import day_start

log = logging.getLogger(__name__)

SUPERVISORS = SUPERVISING_ROLES  # never agents nor support staff
OUTCOME_ROUTE = "/api/v1/interactions/{call_id}/outcome"
MAX_KEY = 128
CALLS_TODAY = 200


def _error(status: int, reason: str, **headers: str) -> web.Response:
    return web.json_response({"error": reason}, status=status, headers=headers or None)


def redacted(queue: dict[str, Any]) -> dict[str, Any]:
    """A queue message for the wallboard: the same shape, callers not named."""
    waiting = [{**w, "caller_number": None, "caller_name": None, "customer_name": None} for w in queue["waiting"]]
    return {**queue, "waiting": waiting}


def setup(app: web.Application, add_route: Callable, supervision, *, store=None, wallboard_token: str = "",
          tz: str = "UTC", privacy: PrivacyRules = NO_MASKING) -> None:
    """``supervision`` is the :class:`~screenpop.supervision.services.SupervisionService`;
    ``store`` the interaction store (calls of the day); ``privacy`` the
    ``[privacy]`` rules, applied to every answer by the reader's role."""
    token = wallboard_token.encode("utf-8")

    def shown(request: web.Request, data: Any) -> web.Response:
        return web.json_response(privacy.view(data, getattr(request.get("user"), "role", None)))

    def today() -> datetime:
        return day_start(supervision.now(), tz)

    async def calls_today(**where: str) -> list[dict[str, Any]]:
        if store is None:
            return []
        result = await store.search(since=today(), limit=CALLS_TODAY, **where)
        return [_plain(r.to_dict()) for r in result.items]

    async def queues(request: web.Request) -> web.Response:
        return shown(request, {"items": supervision.queue_messages()})

    async def one_queue(request: web.Request) -> web.Response:
        name = request.match_info["queue"]
        if len(name) > MAX_KEY:
            return _error(400, f"queue name longer than {MAX_KEY} characters")
        message = supervision.queue_message(name)
        if message is None:
            return _error(404, "no such queue")
        return await _with_calls(request, message, queue=name)

    async def agents(request: web.Request) -> web.Response:
        return shown(request, {"items": supervision.agent_messages()})

    async def one_agent(request: web.Request) -> web.Response:
        agent_id = request.match_info["agent_id"]
        if len(agent_id) > MAX_KEY:
            return _error(400, f"agent id longer than {MAX_KEY} characters")
        message = supervision.agent_message(agent_id)
        if message is None:
            return _error(404, "no such agent")
        return await _with_calls(request, message, agent=agent_id)

    async def _with_calls(request: web.Request, message: dict[str, Any], **where: str) -> web.Response:
        try:
            calls = await calls_today(**where)
        except Exception as exc:  # the database: the live part is still worth showing
            log.error("supervision calls of the day failed where=%s error=%s", where, f"{type(exc).__name__}: {exc}")
            return _error(503, "storage unavailable, retry later", **{"Retry-After": "5"})
        return shown(request, {**message, "calls_today": calls})

    async def wallboard(request: web.Request) -> web.Response:
        given = request.query.get("token", "")
        header = request.headers.get("Authorization", "")
        if not given and header.lower().startswith("bearer "):
            given = header[7:].strip()
        if not token or not given or not hmac.compare_digest(given.encode("utf-8"), token):
            return _error(401, "a valid wallboard token is required", **{"WWW-Authenticate": 'Bearer realm="wallboard"'})
        return web.json_response({"queues": [redacted(q) for q in supervision.queue_messages()]},
                                 headers={"Cache-Control": "no-store"})

    add_route("GET", "/api/v1/queues", queues, SUPERVISORS)
    add_route("GET", "/api/v1/queues/{queue}", one_queue, SUPERVISORS)
    add_route("GET", "/api/v1/agents", agents, SUPERVISORS)
    add_route("GET", "/api/v1/agents/{agent_id}", one_agent, SUPERVISORS)
    add_route("GET", "/api/v1/wallboard", wallboard, "public")

    async def outcome_seen(request: web.Request, response: web.StreamResponse) -> None:
        route = request.match_info.route
        if (request.method == "PUT" and response.status == 200 and route.resource is not None
                and route.resource.canonical == OUTCOME_ROUTE):
            try:
                supervision.outcome_saved(request.match_info["call_id"])
            except Exception:
                log.exception("supervision: outcome hook failed path=%s", request.path)

    app.on_response_prepare.append(outcome_seen)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


__all__ = ["setup", "redacted", "SUPERVISORS"]
