"""Logins, sessions and the access middleware of the agent UI (aiohttp).

Wiring (once, before the app starts)::

    auth = agent_ui.auth.setup(app, store, settings.auth, billing_tokens=tokens)
    access.add(app, "GET", "/api/v1/calls", handler, roles={"supervisor", "admin"})
    ws.setup(app, hub, agent_ui.auth.authenticate)
    access.declare(app, "GET", "/ws", access.ANY_USER)

How a request is identified, in this order: ``Authorization: Bearer <session
token>`` (scripts, ``screenpop watch``), the ``token`` query parameter on
WebSocket handshakes (clients that cannot set headers) and routes declared
with ``query_token=True``, then the session cookie (browsers).  Only the cookie is sent by the browser on its own, so
only cookie-authenticated state changes need the CSRF token; a cookie-
authenticated WebSocket upgrade must come from our own origin, since
browsers do not apply CORS to WebSockets.

Failures answer 401 ``{"error": …}`` (no or dead session), 403 (wrong role,
bad CSRF token) or, for a browser asking for a page, a redirect to
``/login?next=…``; 503 when the session store cannot be read (never "log in
again" because the database restarted).  Sessions are looked up through the
store's :class:`~screenpop.auth.loader.SessionLoader`: a reconnect storm's
handshakes share a few queries, and valid sessions are kept
``[auth] session_cache_seconds``.

The login, who-am-I and logout routes are in :mod:`agent_ui.session_routes`,
the redacting access log in :mod:`agent_ui.access_log`; their names are
importable from here too (``auth.add_routes``, ``auth.login``,
``auth.RedactingAccessLogger``...).
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import time
from typing import Callable
from urllib.parse import quote, urlsplit

from aiohttp import hdrs, web

from agent_ui import access, ws
from agent_ui.access_log import RedactingAccessLogger  # noqa: F401  (importable from here, as before)
from agent_ui.jsonio import json_error
from agent_ui.session_watch import SessionWatch
from agent_ui.tokens import BearerTokens
from screenpop.auth.accounts import ActiveSession, LockoutPolicy, SessionPolicy, User
from screenpop.auth.ratelimit import FailureWindow
from screenpop.config import AuthSettings

log = logging.getLogger(__name__)

LOGIN_PATH = "/login"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
PURGE_EVERY = 3600.0  # seconds between sweeps of expired sessions


def policies(settings: AuthSettings) -> tuple[LockoutPolicy, SessionPolicy]:
    """The store's policies from the ``[auth]`` settings (build the AccountStore with these)."""
    from datetime import timedelta

    return (
        LockoutPolicy(settings.max_failures, settings.lock_seconds),
        SessionPolicy(idle=timedelta(seconds=settings.session_idle_seconds), absolute=timedelta(seconds=settings.session_absolute_seconds),
                      cache_for=timedelta(seconds=settings.session_cache_seconds)),
    )


class Authenticator:
    """The app's login state: the account store, the ``[auth]`` settings, the
    billing bearer tokens and the failed-login windows (per process)."""

    def __init__(self, store, settings: AuthSettings, billing_tokens: BearerTokens | None = None, *, monotonic: Callable[[], float] = time.monotonic):
        self.store = store  # screenpop.auth.store.AccountStore, built with policies(settings)
        self.settings = settings
        # ``is None``, not ``or``: the database's token set is falsy until its
        # first reload (and whenever no token is active), and must still be the
        # one checked, or a token made by ``screenpop tokens create`` is never seen.
        self.billing_tokens = billing_tokens if billing_tokens is not None else BearerTokens()
        self.monotonic = monotonic
        self.by_address = FailureWindow(settings.rate_limit_failures, settings.rate_limit_window_seconds)
        # Same threshold as the database lockout (the store's, should it differ
        # from the settings), so a name that does not exist gets "locked"
        # exactly like one that does.
        lockout = getattr(store, "lockout", None) or policies(settings)[0]
        self.by_name = FailureWindow(lockout.max_failures, lockout.lock_seconds)
        self.sessions = SessionWatch(self._alive_sessions, settings.socket_recheck_seconds)

    async def _alive_sessions(self, ids) -> set[str]:
        """The open sockets' sessions still valid: one query (a store without
        the batch query is asked one session at a time)."""
        batch = getattr(self.store, "sessions_alive", None)
        if batch is not None:
            return await batch(ids)
        return {session_id for session_id in ids if await self.store.session_alive(session_id)}

    def install(self, app: web.Application) -> None:
        """Attach to ``app`` and put the middleware first (outermost), so no
        other middleware sees a request before its rule is checked."""
        app[AUTH] = self
        app.middlewares.insert(0, middleware)
        app.cleanup_ctx.append(self._purge_expired_sessions)
        app.on_cleanup.append(lambda _app: self.sessions.stop())

    async def _purge_expired_sessions(self, app: web.Application):
        """Sessions nobody comes back to are otherwise only deleted at their
        user's next login; an hourly sweep keeps the table small."""

        async def sweep() -> None:
            while True:
                try:
                    purged = await self.store.purge_expired()
                    if purged:
                        log.info("sessions purged count=%d", purged)
                except Exception as exc:
                    log.warning("sessions purge failed reason=%s", type(exc).__name__)
                await asyncio.sleep(PURGE_EVERY)

        task = asyncio.create_task(sweep(), name="auth-session-purge")
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def authenticate(self, request: web.Request) -> User | None:
        return await authenticate(request)


AUTH = web.AppKey("auth", Authenticator)
# The lookup's result, once per request.  ``request["user"]`` and
# ``request["session"]`` stay plain strings: they are the contract pages and
# handlers read.
_RequestKey = getattr(web, "RequestKey", None) or (lambda name, t: name)
ACTIVE = _RequestKey("auth_active", object)
VIA = _RequestKey("auth_via", object)


# ------------------------------------------------------------------ identify


def client_address(request: web.Request, settings: AuthSettings) -> str:
    if settings.trust_forwarded and request.headers.get("X-Forwarded-For"):
        return request.headers["X-Forwarded-For"].split(",")[0].strip()
    return request.remote or "-"


def is_https(request: web.Request, settings: AuthSettings) -> bool:
    if settings.trust_forwarded and request.headers.get("X-Forwarded-Proto", "").lower() == "https":
        return True
    return request.secure


def _presented_token(request: web.Request, settings: AuthSettings, query_token: bool) -> tuple[str | None, str | None]:
    """The explicit credential wins over the one the browser adds on its own:
    a header, then (where allowed) ``?token=``, then the cookie."""
    header = request.headers.get(hdrs.AUTHORIZATION, "")
    scheme, _, value = header.partition(" ")
    if header:
        return (value.strip(), "bearer") if scheme.lower() == "bearer" else (None, None)
    if query_token and request.query.get("token"):
        return request.query["token"], "query"
    cookie = request.cookies.get(settings.cookie_name)
    return (cookie, "cookie") if cookie else (None, None)


async def _identify(request: web.Request, query_token: bool = False) -> tuple[ActiveSession | None, str | None]:
    """The request's session and how it was presented; looked up once per request."""
    if ACTIVE in request:
        return request[ACTIVE], request[VIA]
    auth = request.app[AUTH]
    token, via = _presented_token(request, auth.settings, query_token)
    active = await auth.store.session_for(token) if token else None
    request[ACTIVE], request[VIA] = active, via if active else None
    if active is not None:
        request["user"], request["session"] = active.user, active.session
    return active, request[VIA]


async def current_user(request: web.Request) -> User | None:
    """The logged-in user, also on public routes (the login page, to skip the form)."""
    active, _ = await _identify(request)
    return active.user if active else None


async def csrf_token(request: web.Request) -> str | None:
    """The CSRF token to embed in forms (field ``csrf_token``) and send as ``X-CSRF-Token``."""
    active, _ = await _identify(request)
    return active.session.csrf_token if active else None


async def authenticate(request: web.Request) -> User | None:
    """For ``agent_ui.ws.setup``: the socket's user (cookie, bearer or ``token`` query parameter)."""
    active, _ = await _identify(request, query_token=True)
    return active.user if active else None


def safe_next(value: str | None, default: str = "/") -> str:
    """A ``next`` target that stays on this site (no ``//evil``, no scheme)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    parts = urlsplit(value)
    return default if parts.scheme or parts.netloc else value


# --------------------------------------------------------------- middleware


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"


def _wants_html(request: web.Request, via: str | None) -> bool:
    return request.method in ("GET", "HEAD") and "text/html" in request.headers.get(hdrs.ACCEPT, "") and not _is_websocket(request) and via != "bearer"


async def _csrf_ok(request: web.Request, expected: str) -> bool:
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()  # cached by aiohttp: the handler can read it again
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    return presented is not None and hmac.compare_digest(presented.encode(), expected.encode())


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None:
        return True  # not a browser
    return urlsplit(origin).netloc.lower() == (request.host or "").lower()


def _refuse(request: web.Request, status: int, reason: str, via: str | None) -> web.StreamResponse:
    if status == 401 and _wants_html(request, via):
        raise web.HTTPFound(f"{LOGIN_PATH}?next={quote(request.path_qs, safe='/')}")
    if status == 401:
        return json_error(401, reason, **{"WWW-Authenticate": 'Bearer realm="screenpop"'})
    return json_error(status, reason)


@web.middleware
async def middleware(request: web.Request, handler):
    if request.match_info.http_exception is not None:  # 404/405: nothing to protect
        return await handler(request)
    rule = request.app[access.REGISTRY].rule_for(request.match_info.route) if access.REGISTRY in request.app else None
    if rule is None:
        log.error("access refused reason=no-rule method=%s path=%s", request.method, request.path)
        return json_error(500, "this route has no access rule")
    auth = request.app[AUTH]
    if rule.kind == access.PUBLIC:
        if _wants_html(request, None) and request.cookies.get(auth.settings.cookie_name):
            try:
                await _identify(request)  # a page (the login form) may show who is logged in; assets skip the lookup
            except Exception as exc:  # a public page still renders, as for nobody
                log.warning("session check failed reason=%s path=%s", type(exc).__name__, request.path)
        return await handler(request)
    if rule.kind == access.BILLING_TOKEN:
        if not auth.billing_tokens.check(request.headers.get(hdrs.AUTHORIZATION)):
            reason = "bad-token" if auth.billing_tokens else "no-billing-token-configured"  # fail closed; pass billing_tokens= to the Authenticator
            log.warning("access refused reason=%s path=%s remote=%s", reason, request.path, client_address(request, auth.settings))
            return json_error(401, "a valid bearer token is required", **{"WWW-Authenticate": 'Bearer realm="billing"'})
        return await handler(request)
    try:
        active, via = await _identify(request, rule.query_token or _is_websocket(request))
    except Exception as exc:  # the database is down: say so, never "log in again"
        log.error("session check failed reason=%s path=%s", type(exc).__name__, request.path)
        return json_error(503, "session store unavailable, retry shortly", **{"Retry-After": "5"})
    if active is None:
        return _refuse(request, 401, "log in first", via)
    user = active.user
    if not rule.admits(user.role):
        log.warning("access refused reason=role user=%s role=%s method=%s path=%s", user.username, user.role, request.method, request.path)
        return _refuse(request, 403, f"this needs the role {rule}", via)
    if via == "cookie" and request.method not in SAFE_METHODS and not await _csrf_ok(request, active.session.csrf_token):
        log.warning("access refused reason=csrf user=%s method=%s path=%s", user.username, request.method, request.path)
        return _refuse(request, 403, f"missing or wrong CSRF token (send the {CSRF_HEADER} header)", via)
    if _is_websocket(request):
        if via == "cookie" and not _same_origin(request):
            log.warning("access refused reason=cross-origin-websocket user=%s origin=%s", user.username, request.headers.get(hdrs.ORIGIN))
            return _refuse(request, 403, "WebSocket from another origin", via)
        return await _guarded_socket(request, handler, active)
    return await handler(request)


async def _guarded_socket(request: web.Request, handler, active: ActiveSession) -> web.StreamResponse:
    """Serve a WebSocket while its session is watched: a socket lives for a
    whole shift, and a disabled account, a logout or an expired session must
    stop its pops too, not only its next login.  The check is the
    authenticator's :class:`SessionWatch`, one query per interval for every
    open socket."""
    auth = request.app[AUTH]
    username = active.user.username

    def end() -> None:
        log.info("ws closed reason=session-ended user=%s", username)
        conn = request.get(ws.CONNECTION)
        if conn is not None:  # 4401: the browser goes to the login page instead of reconnecting
            conn.close(ws.SESSION_ENDED, "session ended", reason="session-ended")
        elif request.transport is not None:
            request.transport.close()

    unwatch = auth.sessions.watch(active.session.id, end)
    try:
        return await handler(request)
    finally:
        unwatch()


def setup(app: web.Application, store, settings: AuthSettings, *, billing_tokens: BearerTokens | None = None) -> Authenticator:
    """Everything in one call: the access registry (with its start-up
    check), the middleware and the session routes.  Build ``store`` with
    :func:`policies`."""
    from agent_ui.session_routes import add_routes

    authenticator = Authenticator(store, settings, billing_tokens)
    access.setup(app, authenticator)
    add_routes(app)
    return authenticator


# The session routes' names, importable from here as before the split
# (agent_ui.session_routes imports this module, so they are looked up late).
_SESSION_ROUTES = frozenset({
    "SESSION_PATH", "MAX_LOGIN_BODY", "BAD_CREDENTIALS", "TOO_MANY", "LoginResult", "login", "logout",
    "session_json", "post_session", "get_session", "delete_session", "add_routes",
})


def __getattr__(name: str):
    if name in _SESSION_ROUTES:
        from agent_ui import session_routes

        return getattr(session_routes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

