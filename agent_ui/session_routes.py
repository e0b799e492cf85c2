"""The ``/api/v1/session`` routes: log in, who am I, log out (aiohttp).

Split from :mod:`agent_ui.auth`, which identifies requests and guards
routes; the names here are also importable from there.  Why a login failed
is logged, never answered: unknown name, wrong password and disabled
account all read "invalid username or password".  Failed logins are
throttled per client address and per name (the authenticator's windows)
on top of the store's lockout.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from aiohttp import web

from agent_ui import access
from agent_ui.auth import AUTH, _identify, _presented_token, client_address, is_https
from agent_ui.jsonio import BadRequest, json_error, read_json_object
from screenpop.auth.accounts import LOCKED, UNKNOWN_USER, LoginFailure, Session, User, normalize_username

log = logging.getLogger("agent_ui.auth")  # one logger for logins and access decisions, as before the split

SESSION_PATH = "/api/v1/session"
MAX_LOGIN_BODY = 8 * 1024
BAD_CREDENTIALS = "invalid username or password"
TOO_MANY = "too many failed logins; try again later"


@dataclass
class LoginResult:
    status: int  # 200, 401 (bad credentials), 429 (locked or throttled)
    user: User | None = None
    token: str | None = None
    session: Session | None = None
    error: str | None = None
    retry_after: int | None = None
    cookie_name: str = "screenpop_session"
    secure: bool = False

    @property
    def ok(self) -> bool:
        return self.user is not None

    def set_cookie(self, response: web.StreamResponse) -> None:
        """Put the session cookie on ``response`` (a browser-session cookie: gone when the browser quits)."""
        if self.token:
            response.set_cookie(self.cookie_name, self.token, path="/", httponly=True, samesite="Lax", secure=self.secure)

    def error_response(self) -> web.Response:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after else {}
        return json_error(self.status, self.error or BAD_CREDENTIALS, **headers)


def _masked(name_key: str) -> str:
    """How a name that is not (yet) known to be an account appears in the log:
    people type their password into the username field, so never as typed."""
    return "<unknown:" + hashlib.sha256(name_key.encode()).hexdigest()[:8] + ">"


async def login(request: web.Request, username: str, password: str) -> LoginResult:
    """Check the credentials, throttle, open a session; the caller puts the
    cookie on its response with ``result.set_cookie(response)``."""
    auth = request.app[AUTH]
    settings = auth.settings
    address = client_address(request, settings)
    name = normalize_username(username) if isinstance(username, str) else None
    name_key = name or hashlib.sha256(str(username).encode("utf-8", "replace")).hexdigest()[:16]
    base = {"cookie_name": settings.cookie_name, "secure": settings.cookie_secure or is_https(request, settings)}
    now = auth.monotonic()
    wait = max(auth.by_address.retry_after(address, now) or 0, auth.by_name.retry_after(name_key, now) or 0)
    if wait:
        log.warning("login failed user=%s reason=throttled remote=%s retry_after=%.0f", _masked(name_key), address, wait)
        return LoginResult(429, error=TOO_MANY, retry_after=max(1, round(wait)), **base)
    result = await auth.store.authenticate(username if isinstance(username, str) else "", password if isinstance(password, str) else "")
    if isinstance(result, LoginFailure):
        shown = _masked(name_key) if result.reason == UNKNOWN_USER else name
        log.warning("login failed user=%s reason=%s remote=%s", shown, result.reason, address)
        if result.reason == LOCKED:
            return LoginResult(429, error=TOO_MANY, retry_after=max(1, round(result.retry_after or 1)), **base)
        auth.by_address.fail(address, now)
        auth.by_name.fail(name_key, now)
        return LoginResult(401, error=BAD_CREDENTIALS, **base)
    auth.by_name.clear(name_key)
    token, session = await auth.store.create_session(result)
    log.info("login ok user=%s role=%s agent_id=%s remote=%s", result.username, result.role, result.agent_id, address)
    return LoginResult(200, user=result, token=token, session=session, **base)


async def logout(request: web.Request, response: web.StreamResponse | None = None) -> bool:
    """End the request's session and clear the cookie on ``response``."""
    auth = request.app[AUTH]
    active, _ = await _identify(request)
    token, _ = _presented_token(request, auth.settings, query_token=False)
    ended = await auth.store.end_session(token) if token else False
    if response is not None:
        response.del_cookie(auth.settings.cookie_name, path="/")
    if ended and active is not None:
        log.info("logout user=%s", active.user.username)
    return ended


def session_json(user: User, session: Session) -> dict:
    return {"user": user.as_json(), "csrf_token": session.csrf_token, "expires_at": session.expires_at.isoformat()}


async def post_session(request: web.Request) -> web.Response:
    try:
        payload = await read_json_object(request, max_bytes=MAX_LOGIN_BODY, what='{"username", "password"}')
    except BadRequest as exc:
        return json_error(exc.status, str(exc))
    if not isinstance(payload.get("username"), str) or not isinstance(payload.get("password"), str):
        return json_error(400, "username and password are required strings")
    try:
        result = await login(request, payload["username"], payload["password"])
    except Exception as exc:
        log.error("login failed reason=store-unavailable error=%s", type(exc).__name__)
        return json_error(503, "account store unavailable, retry shortly", **{"Retry-After": "5"})
    if not result.ok:
        return result.error_response()
    if request.cookies.get(request.app[AUTH].settings.cookie_name):
        await logout(request)  # a login replaces the browser's previous session, never adds to it
    body = session_json(result.user, result.session)
    if payload.get("return_token") is True:  # non-browser clients: Authorization: Bearer <token>
        body["token"] = result.token
    response = web.json_response(body)
    result.set_cookie(response)
    return response


async def get_session(request: web.Request) -> web.Response:
    return web.json_response(session_json(request["user"], request["session"]))


async def delete_session(request: web.Request) -> web.Response:
    response = web.Response(status=204)
    await logout(request, response)
    return response


def add_routes(app: web.Application, add_route=None, *_ignored) -> None:
    """The ``/api/v1/session`` routes (login, who am I, logout) with their rules."""
    add_route = add_route or (lambda method, path, handler, rule: access.add(app, method, path, handler, rule))
    add_route("POST", SESSION_PATH, post_session, access.PUBLIC)
    add_route("GET", SESSION_PATH, get_session, access.ANY_USER)
    add_route("DELETE", SESSION_PATH, delete_session, access.ANY_USER)
