"""Route-rule registry: every route says who may call it, or the app does not start.

Why a registry and not a check in each handler: a handler that forgets its
check is an open door nobody notices, while a route that forgets its rule
here stops the service at start-up (:func:`check`, run on startup by
:func:`install`) and is refused at request time anyway (deny by default).

Rules, flat (no role hierarchy: reading a rule tells who gets in):

* ``"public"`` — anyone, no session looked up;
* ``"agent"`` / ``"supervisor"`` / ``"admin"`` / ``"support"`` — that role only;
* a set of roles, e.g. ``{"supervisor", "admin"}``; :data:`ANY_USER` is every
  role (the roles are :data:`screenpop.auth.accounts.ROLES`).  ``"support"``
  is the support staff's role, not "everyone": it once was, and a rule
  written that way now admits support staff alone;
* ``"billing_token"`` — an integration client with a billing bearer token.

Three ways to give a route its rule::

    access.add(app, "GET", "/api/v1/calls", handler, roles={"supervisor", "admin"})

    @access.requires("agent")              # then app.router.add_get(path, handler)
    async def handler(request): ...

    access.declare(app, "GET", "/ws", access.ANY_USER, query_token=True)   # route added by another module

This module decides nothing about sessions: :mod:`agent_ui.auth` enforces the rules.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable

from aiohttp import hdrs, web

from screenpop.auth.accounts import ADMIN, AGENT, ROLES, SUPERVISING_ROLES, SUPERVISOR, SUPPORT

log = logging.getLogger(__name__)

PUBLIC = "public"
BILLING_TOKEN = "billing_token"
ANY_USER = frozenset(ROLES)
SUPERVISORS = SUPERVISING_ROLES  # supervisors and admins: the floor's live state
_ROLE_KIND = "roles"


class AccessRuleError(RuntimeError):
    """A route has no rule, or a rule is malformed; raised at start-up, on purpose."""


@dataclass(frozen=True, slots=True)
class Rule:
    kind: str  # public | roles | billing_token
    roles: frozenset[str] = frozenset()
    # The session token may come as ?token= on this route.  WebSocket handshakes
    # always allow it (a browser cannot set headers on them); elsewhere query
    # strings end up in logs and browser history, so only when asked for.
    query_token: bool = False

    def admits(self, role: str | None) -> bool:
        return self.kind == _ROLE_KIND and role in self.roles

    def __str__(self) -> str:
        if self.kind != _ROLE_KIND:
            return self.kind
        return ",".join(r for r in ROLES if r in self.roles)


@dataclass(frozen=True, slots=True)
class RouteRule:
    method: str
    path: str
    rule: Rule


def parse_rule(spec: Any = None, *, roles: Iterable[str] | None = None, query_token: bool = False) -> Rule:
    """A :class:`Rule` from ``"public"``, a role name, ``"billing_token"`` or a set of roles."""
    if isinstance(spec, Rule):
        return spec
    if roles is not None:
        if spec is not None:
            raise AccessRuleError("give either a rule or roles=, not both")
        spec = roles
    if spec in (PUBLIC, BILLING_TOKEN):
        if query_token:
            raise AccessRuleError("query_token only makes sense for a rule naming roles")
        return Rule(spec)
    if isinstance(spec, str):
        spec = {spec}
    if not isinstance(spec, (set, frozenset, list, tuple)) or not spec:
        raise AccessRuleError(f"not an access rule: {spec!r} (public, billing_token, a role or a set of roles)")
    unknown = set(spec) - set(ROLES)
    if unknown:
        raise AccessRuleError(f"unknown role(s) {sorted(unknown)}; roles are {', '.join(ROLES)}")
    return Rule(_ROLE_KIND, frozenset(spec), query_token)


class Registry:
    """Rules by (method, path as registered); HEAD falls back to GET's rule."""

    def __init__(self) -> None:
        self._rules: dict[tuple[str, str], Rule] = {}

    def set(self, method: str, path: str, rule: Rule) -> None:
        key = (method.upper(), path)
        if key in self._rules and self._rules[key] != rule:
            raise AccessRuleError(f"{method} {path} already has rule {self._rules[key]}, not {rule}")
        self._rules[key] = rule

    def rule_for(self, route: web.AbstractRoute) -> Rule | None:
        path = _path_of(route)
        method = route.method.upper()
        rule = self._rules.get((method, path))
        if rule is None and method == hdrs.METH_HEAD:
            rule = self._rules.get((hdrs.METH_GET, path))
        if rule is None:
            rule = getattr(route.handler, "__access_rule__", None)
        return rule


REGISTRY = web.AppKey("access_registry", Registry)


def registry(app: web.Application) -> Registry:
    if REGISTRY not in app:
        app[REGISTRY] = Registry()
    return app[REGISTRY]


def _path_of(route: web.AbstractRoute) -> str:
    resource = route.resource
    return resource.canonical if resource is not None else ""


def add(app: web.Application, method: str, path: str, handler, rule: Any = None, *, roles: Iterable[str] | None = None, name: str | None = None, query_token: bool = False) -> web.AbstractRoute:
    """Add a route and its rule in one step (the usual way)."""
    parsed = parse_rule(rule, roles=roles, query_token=query_token)
    route = app.router.add_route(method, path, handler, name=name)
    registry(app).set(method, route.resource.canonical, parsed)
    return route


def declare(app: web.Application, method: str, path: str, rule: Any = None, *, roles: Iterable[str] | None = None, query_token: bool = False) -> None:
    """The rule of a route another module adds itself (``ws.setup``,
    ``billing.setup``, ``add_static``: for a static folder, the prefix)."""
    registry(app).set(method, path, parse_rule(rule, roles=roles, query_token=query_token))


def requires(rule: Any = None, *, roles: Iterable[str] | None = None, query_token: bool = False):
    """Decorator form: the rule travels with the handler, whatever adds the route."""
    parsed = parse_rule(rule, roles=roles, query_token=query_token)

    def mark(handler):
        handler.__access_rule__ = parsed
        return handler

    return mark


public = requires(PUBLIC)


def listing(app: web.Application) -> list[RouteRule]:
    """(method, path, rule) of every route, rule None when missing; for tests and docs."""
    reg = registry(app)
    rows = []
    for route in app.router.routes():
        rows.append(RouteRule(route.method, _path_of(route), reg.rule_for(route)))
    return rows


def check(app: web.Application) -> None:
    """Raise :class:`AccessRuleError` naming every route that has no rule."""
    missing = sorted({f"{r.method} {r.path}" for r in listing(app) if r.rule is None})
    if missing:
        raise AccessRuleError("route(s) without an access rule (use agent_ui.access.add/declare/requires): " + "; ".join(missing))


def install(app: web.Application) -> Registry:
    """The registry of ``app``, with the start-up check hooked in."""
    reg = registry(app)

    async def check_on_startup(app: web.Application) -> None:
        check(app)
        log.info("access rules checked routes=%d", len(listing(app)))

    app.on_startup.append(check_on_startup)
    return reg


class AppAccess:
    """The registry of one app bound to it, for wiring code that passes
    ``add_route`` around: ``acc = access.setup(app, authenticator)``, then
    ``acc.add("GET", path, handler, "agent")``, ``acc.declare(...)``, and
    ``acc.authenticate`` for ``ws.setup``."""

    def __init__(self, app: web.Application, authenticator):
        self.app = app
        self.authenticator = authenticator

    def add(self, method: str, path: str, handler, rule: Any = None, **options) -> web.AbstractRoute:
        return add(self.app, method, path, handler, rule, **options)

    def declare(self, method: str, path: str, rule: Any = None, **options) -> None:
        declare(self.app, method, path, rule, **options)

    async def authenticate(self, request: web.Request):
        return await self.authenticator.authenticate(request)

    def listing(self) -> list[RouteRule]:
        return listing(self.app)


def setup(app: web.Application, authenticator) -> AppAccess:
    """Registry, start-up check and the enforcing middleware of
    ``authenticator`` (an :class:`agent_ui.auth.Authenticator`)."""
    install(app)
    authenticator.install(app)
    return AppAccess(app, authenticator)


__all__ = [
    "AppAccess", "setup",
    "ADMIN", "AGENT", "ANY_USER", "BILLING_TOKEN", "PUBLIC", "SUPERVISOR", "SUPERVISORS", "SUPPORT", "AccessRuleError", "Registry", "Rule",
    "RouteRule", "add", "check", "declare", "install", "listing", "parse_rule", "public", "registry", "requires",
]
