"""The supervisor's pages and the wallboard.

Like the other pages (``agent_ui/pages.py``), these are shells: the server
renders the layout, the logged-in user and, for a drill-down, the queue name
or agent id taken from the address (autoescaped, as every template value);
everything live reaches the browser as JSON and is put on screen by the
static JS with DOM APIs only:

* ``/supervisor``: every queue and every agent, from the supervisor feed of
  ``/ws`` (``queue`` and ``agent`` messages, replayed on connect, then
  pushed as they change; nothing is polled);
* ``/supervisor/queues/{queue}``: one queue, its waiting callers and agents
  (``/ws``) and today's calls (``GET /api/v1/queues/{queue}``, fetched again
  when the queue's counters move);
* ``/supervisor/agents/{agent_id}``: one agent, the card of the call in
  progress (``/ws``) and today's calls with their outcomes
  (``GET /api/v1/agents/{agent_id}``);
* ``/wallboard``: a read-only large-format page for a TV.  It is public
  because a TV on the floor has no login: the page holds no data, its JS
  reads ``?token=`` from the address and asks
  ``GET /api/v1/wallboard?token=…`` (which checks the token) every 2 s.

Rules: the supervisor pages are for supervisors and admins; the wallboard
page is public (the token guards its data, not its markup).
"""
from __future__ import annotations

from aiohttp import web

from agent_ui.pages import AddRoute, login_redirect, render, user_view
from screenpop.auth.accounts import SUPERVISING_ROLES

SUPERVISOR_ROLES = SUPERVISING_ROLES  # not support staff: they log outcomes, they do not supervise
MAX_NAME = 128  # a queue name or agent id from the address; longer is no queue or agent of ours


def add_supervisor_routes(app: web.Application, add_route: AddRoute) -> None:
    """Register the pages through the app's route-rule registrar
    ``add_route(method, path, handler, rule)`` (see ``pages.add_page_routes``,
    which also serves the static files these pages use)."""
    add_route("GET", "/supervisor", dashboard_page, SUPERVISOR_ROLES)
    add_route("GET", "/supervisor/queues/{queue}", queue_page, SUPERVISOR_ROLES)
    add_route("GET", "/supervisor/agents/{agent_id}", agent_page, SUPERVISOR_ROLES)
    add_route("GET", "/wallboard", wallboard_page, "public")


def require_supervisor(request: web.Request) -> None:
    """The access rules stop everyone else before a handler runs; this is the
    fallback so a page never renders for nobody or for an agent."""
    user = user_view(request.get("user"))
    if user is None:
        raise login_redirect(request)
    if user.role not in SUPERVISOR_ROLES:
        raise web.HTTPForbidden(text="supervisors only")


def name_from_address(request: web.Request, key: str) -> str:
    value = request.match_info[key]
    if not value or len(value) > MAX_NAME or any(ord(c) < 0x20 or c == "\x7f" for c in value):
        raise web.HTTPNotFound(text=f"no such {key.replace('_id', '')}")
    return value


async def dashboard_page(request: web.Request) -> web.Response:
    require_supervisor(request)
    return render(request, "supervisor.html")


async def queue_page(request: web.Request) -> web.Response:
    require_supervisor(request)
    return render(request, "supervisor_queue.html", queue=name_from_address(request, "queue"))


async def agent_page(request: web.Request) -> web.Response:
    require_supervisor(request)
    return render(request, "supervisor_agent.html", agent_id=name_from_address(request, "agent_id"))


async def wallboard_page(request: web.Request) -> web.Response:
    """No user, no token in the markup: the JS takes the token from the address."""
    return render(request, "wallboard.html")
