"""The aiohttp application of one node: pages, REST API, WebSocket, billing
push, health and metrics, on one port and one session.

Every route goes through the access registry with its rule (public, a role,
or the billing token); the registry refuses to start an app with a route
that has none.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from agent_ui import access, api, audit_api, auth, billing, headers, jsonio, openapi, pages, supervisor_pages, ws
from customer_lookup.balances import find_account
from customer_lookup.display import CardDisplay
from screenpop.metrics import CONTENT_TYPE_LATEST
from screenpop.security.plugin import SECURITY, Security
from screenpop.supervision import http as supervision_http
from screenpop.supervision import openapi as supervision_openapi

if TYPE_CHECKING:
    from screenpop.service import ScreenpopService


def build_app(service: ScreenpopService) -> web.Application:
    s = service.settings
    app = web.Application(client_max_size=256 * 1024, middlewares=[jsonio.json_http_errors])
    headers.setup(app)  # CSP on pages, no-store on JSON, no version banner, protocol errors as warnings
    # Billing tokens: the config file's and the database's (revocable, reloaded
    # every [security] token_cache_seconds); audit trail; [privacy] masking.
    security = Security.build(s, getattr(service.interactions, "engine", None))
    security.attach(app)
    app[SECURITY] = security
    tokens = security.billing_tokens
    authenticator = auth.Authenticator(service.accounts, s.auth, tokens)

    def remote(request: web.Request) -> str:
        return auth.client_address(request, s.auth)

    registry = access.setup(app, authenticator)
    add_route = registry.add
    auth.add_routes(app, add_route)
    dispositions = list(s.interactions.dispositions)
    contact_url = s.web.create_contact_url or None
    pages.add_page_routes(app, add_route, settings=pages.PageSettings(dispositions, contact_url))
    supervisor_pages.add_supervisor_routes(app, add_route)
    api.setup(app, add_route, interactions=service.interactions, orchestrator=service.live,
              ui=api.UiConfig(dispositions=dispositions, create_contact_url=contact_url or ""),
              on_note=service.live.add_note, privacy=security.privacy, audit=security.audit, remote=remote,
              phone=CardDisplay.from_settings(s).phone)
    audit_api.setup(add_route, security.audit_store, security.audit, remote=remote)

    billing.setup(app, tokens=tokens, balances=service.lookup.balances,
                  on_balance=lambda balance: service.lookup.on_balance(balance, service.live.card_changed),
                  find_account=lambda account: find_account(account, service.lookup.sources, service.lookup.balances))
    registry.declare("PUT", billing.ROUTE, access.BILLING_TOKEN)
    supervision_http.setup(app, add_route, service.live, store=service.interactions.store,
                           wallboard_token=s.supervision.wallboard_token, tz=s.supervision.timezone,
                           privacy=security.privacy)
    # The supervisors' feed and watchers' copies are masked for each reader's
    # role at the socket edge (agent_ui.hub); agents' pops before the bus.
    service.hub.privacy = security.privacy
    ws.setup(app, service.hub, registry.authenticate)
    registry.declare("GET", ws.ROUTE, access.ANY_USER)

    async def healthz(request: web.Request) -> web.Response:
        health = await service.health()
        return web.json_response({"ok": health.ok, "parts": health.parts}, status=200 if health.ok else 503)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=service.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    document = openapi.spec(dispositions)
    document["paths"].update(supervision_openapi.paths())
    document["components"]["schemas"].update(supervision_openapi.schemas())
    document["paths"].update(audit_api.openapi_paths())

    async def openapi_json(request: web.Request) -> web.Response:
        return web.json_response(document)

    add_route("GET", "/healthz", healthz, access.PUBLIC)
    add_route("GET", "/metrics", metrics, access.PUBLIC)
    add_route("GET", "/api/v1/openapi.json", openapi_json, access.PUBLIC)
    return app
