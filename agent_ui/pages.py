"""The HTML pages: login, agent desktop, interaction search, one interaction.

Server-side rendering is deliberately thin.  A page carries the logged-in
user, the CSRF token and the disposition codes; everything about calls and
customers reaches the browser as JSON (WebSocket, REST) and is put on screen
by the static JS with DOM APIs and ``textContent`` only.  So the one place
where data meets markup on the server is Jinja2 with autoescaping ON for
every template, and no template uses ``|safe``.

What the app must provide (see ``add_page_routes``):

* ``request["user"]``: the logged-in user (any object or mapping with
  ``username``, ``role``, ``agent_id``, ``display_name``), or absent/None;
* ``request["csrf_token"]`` (or ``request["session"].csrf_token``): the
  session's CSRF token, sent back by the JS as ``X-CSRF-Token``; absent on
  public pages;
* optionally ``request["dispositions"]`` / ``request["create_contact_url"]``
  to override the app-wide ``PageSettings`` stored under ``SETTINGS``.

Pages never fail because part of that context is missing: a page rendered
without dispositions lets the JS fetch them from ``/api/v1/config/ui``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import quote

import jinja2
from aiohttp import web

from agent_ui.access import ANY_USER
from screenpop.auth.accounts import AGENT, SUPERVISING_ROLES

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
STATIC_PREFIX = "/static/"
MAX_CALL_ID = 128  # screenpop.interactions.validate.MAX_CALL_ID

# Only these kinds of file are served from static/: a stray editor backup
# or a .py dropped there by mistake is a 404, never a download.
STATIC_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}

# Pages hold a CSRF token and personal data: never cached, never framed.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}

AddRoute = Callable[[str, str, Callable[[web.Request], Any], str], Any]


@dataclass(frozen=True, slots=True)
class PageSettings:
    """App-wide page configuration.

    ``dispositions``: the outcome codes from config, in any of the shapes
    ``normalize_dispositions`` accepts.  ``create_contact_url``: the sales
    system's "new contact" address with ``{number}`` where the caller's
    number goes, or None for no link."""

    dispositions: Any = ()
    create_contact_url: str | None = None


SETTINGS = web.AppKey("screenpop_page_settings", PageSettings)
# ``async (user, call_id) -> bool``: may this user open this call?  Set by
# the REST API (agent_ui.api), which owns the rule; an app without the API
# (no call data to show) renders the shell for anyone logged in.
CALL_ACCESS = web.AppKey("screenpop_call_access", object)
ENVIRONMENT = web.AppKey("screenpop_page_environment", jinja2.Environment)


def make_environment() -> jinja2.Environment:
    """Autoescape for every template whatever its extension (``select_autoescape``
    would leave a future ``.txt`` or ``.j2`` template unescaped)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def add_page_routes(app: web.Application, add_route: AddRoute, *, settings: PageSettings | None = None) -> None:
    """Register the pages and the static files through the app's route-rule
    registrar ``add_route(method, path, handler, rule)``.

    Rules: the login page and static files are ``public`` (the login page
    needs its CSS and JS before anyone is logged in); the desktop and the
    interaction pages are for every role (agents search the calls offered
    to them; one call's page is a 404 for an agent it was not offered to,
    as in the API).  ``/`` is each role's home: the desktop for agents,
    the dashboard ``/supervisor`` for supervisors and admins (their socket
    carries no pops), the interaction search for support staff."""
    app[ENVIRONMENT] = make_environment()
    if settings is not None:
        app[SETTINGS] = settings
    add_route("GET", "/login", login_page, "public")
    add_route("GET", "/", desk_page, ANY_USER)
    add_route("GET", "/interactions", search_page, ANY_USER)
    add_route("GET", "/interactions/{call_id}", interaction_page, ANY_USER)
    add_route("GET", STATIC_PREFIX + "{path:.+}", static_file, "public")


# ------------------------------------------------------------------ context


@dataclass(frozen=True, slots=True)
class UserView:
    """What templates may know about the user, whatever type the app uses."""

    username: str
    role: str
    agent_id: str | None
    display_name: str | None

    @property
    def name(self) -> str:
        return self.display_name or self.username


def user_view(user: Any) -> UserView | None:
    if user is None:
        return None

    def get(key: str) -> Any:
        return user.get(key) if isinstance(user, Mapping) else getattr(user, key, None)

    def opt(value: Any) -> str | None:
        return None if value is None or value == "" else str(value)

    return UserView(
        username=str(get("username") or ""),
        role=str(get("role") or ""),
        agent_id=opt(get("agent_id")),
        display_name=opt(get("display_name")),
    )


def normalize_dispositions(value: Any) -> list[tuple[str, str]]:
    """Config's disposition codes as ``[(code, label)]``.

    Accepted: a list of codes (``["sale", "callback"]``); of mappings
    (``{"code": "sale", "label": "Sale"}``); of objects with ``code`` and
    ``label``; of ``[code, label]`` pairs; or one mapping ``{code: label}``.
    A code without a label gets ``humanize(code)``.  Entries without a code
    are dropped rather than breaking the page."""
    if not value:
        return []
    items: Iterable[Any] = value.items() if isinstance(value, Mapping) else value
    out: list[tuple[str, str]] = []
    for item in items:
        if isinstance(item, str):
            code, label = item, humanize(item)
        elif isinstance(item, Mapping):
            code, label = item.get("code"), item.get("label")
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            code, label = item
        else:
            code, label = getattr(item, "code", None), getattr(item, "label", None)
        if code is None or str(code) == "":
            continue
        out.append((str(code), str(label) if label not in (None, "") else humanize(str(code))))
    return out


def humanize(code: str) -> str:
    """A bare code as a label: ``wrong_number`` -> ``Wrong number``.  Config
    holds codes (they are what the log stores); people read labels."""
    text = code.replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:] if text else code


def csrf_of(request: web.Request) -> str:
    """``request["csrf_token"]``, else the token of ``request["session"]`` (the
    auth middleware's session object), else empty (public pages)."""
    token = request.get("csrf_token") or getattr(request.get("session"), "csrf_token", None)
    return str(token) if token else ""


def page_context(request: web.Request, **extra: Any) -> dict[str, Any]:
    settings = request.app.get(SETTINGS) or PageSettings()
    create_contact_url = request.get("create_contact_url", settings.create_contact_url)
    return {
        "user": user_view(request.get("user")),
        "csrf_token": csrf_of(request),
        "dispositions": normalize_dispositions(request.get("dispositions", settings.dispositions)),
        "create_contact_url": create_contact_url or "",
        **extra,
    }


def render(request: web.Request, template: str, *, status: int = 200, **extra: Any) -> web.Response:
    env = request.app.get(ENVIRONMENT) or make_environment()
    body = env.get_template(template).render(page_context(request, **extra))
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8", headers=PAGE_HEADERS)


def safe_next(value: str | None) -> str:
    """A post-login destination on this site only: ``/path``, never
    ``//evil.example`` or ``/\\evil.example`` (browsers read both as another
    host), nor a scheme.  Anything else is ``/``."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(c) < 0x20 or c == "\x7f" for c in value) or len(value) > 2000:
        return "/"
    return value


def login_redirect(request: web.Request) -> web.HTTPFound:
    """The app's access rules should stop anonymous visitors before a page
    handler runs; this is the fallback so a page never renders for nobody."""
    return web.HTTPFound("/login?next=" + quote(request.path_qs, safe="/"))


# ------------------------------------------------------------------ handlers


async def login_page(request: web.Request) -> web.Response:
    if request.get("user") is not None:
        raise web.HTTPFound(safe_next(request.query.get("next")))
    return render(request, "login.html", next_url=safe_next(request.query.get("next")))


async def desk_page(request: web.Request) -> web.Response:
    user = user_view(request.get("user"))
    if user is None:
        raise login_redirect(request)
    if user.role in SUPERVISING_ROLES:  # a supervisor's socket carries no pops: their home is the dashboard
        raise web.HTTPFound("/supervisor")
    if user.role != AGENT:  # support staff log outcomes from the search (no phone, no pops)
        raise web.HTTPFound("/interactions")
    return render(request, "agent.html")


async def search_page(request: web.Request) -> web.Response:
    if request.get("user") is None:
        raise login_redirect(request)
    return render(request, "interactions.html")


async def interaction_page(request: web.Request) -> web.Response:
    """The page is a shell holding the call id; interaction.js loads the call
    from ``GET /api/v1/interactions/{call_id}`` (one rendering path, DOM only).

    A call the user may not open (an agent's call not offered to them) is a
    404 "no such call", like one that does not exist, as in the API: a 403
    would tell a curious agent which call ids exist."""
    user = request.get("user")
    if user is None:
        raise login_redirect(request)
    call_id = request.match_info["call_id"]
    if not call_id or len(call_id) > MAX_CALL_ID:
        raise web.HTTPNotFound(text="no such call")
    may_open = request.app.get(CALL_ACCESS)
    if may_open is not None:
        try:
            allowed = await may_open(user, call_id)
        except Exception as exc:  # the database, most likely: a page to retry, not a traceback
            log.error("interaction page failed call_id=%s error=%s", call_id[:64], type(exc).__name__)
            raise web.HTTPServiceUnavailable(text="storage unavailable, retry later", headers={"Retry-After": "5"}) from None
        if not allowed:
            raise web.HTTPNotFound(text="no such call")
    return render(request, "interaction.html", call_id=call_id)


async def static_file(request: web.Request) -> web.StreamResponse:
    """Files of ``agent_ui/static`` only, and only known types.

    ``no-cache`` (revalidate, not "do not store"): the ES modules import each
    other without version stamps, so after an upgrade the browser must ask
    again; an unchanged file costs a 304."""
    rel = request.match_info["path"]
    try:
        path = (STATIC_DIR / rel).resolve()
        path.relative_to(STATIC_DIR)
    except (ValueError, OSError):
        raise web.HTTPNotFound() from None
    kind = STATIC_TYPES.get(path.suffix.lower())
    if kind is None or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(
        path,
        headers={"Content-Type": kind, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )

