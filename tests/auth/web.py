"""A real aiohttp server with the auth middleware and a few routes of each rule."""
from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from agent_ui import access, auth, billing, ws
from agent_ui.hub import Hub
from agent_ui.tokens import BearerTokens
from screenpop.config import AuthSettings

BILLING_TOKEN = "billing-push-token-0123456789"
PW = "s3cret-pass-for-auth"


async def whoami(request: web.Request) -> web.Response:
    user = request["user"]
    return web.json_response({"username": user.username, "role": user.role, "agent_id": user.agent_id})


async def ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def page(request: web.Request) -> web.Response:
    return web.Response(text="<h1>page</h1>", content_type="text/html")


class NullBalances:
    async def put(self, balance):
        return None


async def on_balance(balance) -> int:
    return 0


def build_app(store, settings: AuthSettings) -> tuple[web.Application, Hub]:
    app = web.Application()
    auth.setup(app, store, settings, billing_tokens=BearerTokens([BILLING_TOKEN]))
    access.add(app, "GET", "/api/v1/me", whoami, "agent")
    access.add(app, "GET", "/api/v1/calls", ok, roles={"supervisor", "admin"})
    access.add(app, "POST", "/api/v1/outcome", ok, access.ANY_USER)
    access.add(app, "POST", "/api/v1/users", ok, "admin")
    access.add(app, "GET", "/admin", page, "admin")
    access.add(app, "GET", "/healthz", ok, "public")

    @access.requires("supervisor")
    async def dashboard(request):
        return await page(request)

    app.router.add_get("/dashboard", dashboard)
    billing.setup(app, tokens=BearerTokens([BILLING_TOKEN]), balances=NullBalances(), on_balance=on_balance)
    access.declare(app, "PUT", billing.ROUTE, access.BILLING_TOKEN)
    hub = Hub()
    ws.setup(app, hub, auth.authenticate)
    access.declare(app, "GET", ws.ROUTE, access.ANY_USER)  # WebSocket handshakes take ?token= without asking
    return app, hub


@dataclass
class Running:
    server: TestServer
    hub: Hub
    app: web.Application

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    def client(self) -> aiohttp.ClientSession:
        # unsafe=True: the jar keeps cookies of an IP-address host (127.0.0.1)
        return aiohttp.ClientSession(base_url=self.url("/"), cookie_jar=aiohttp.CookieJar(unsafe=True))


async def login(client: aiohttp.ClientSession, username: str, password: str = PW, **extra) -> aiohttp.ClientResponse:
    async with client.post("/api/v1/session", json={"username": username, "password": password, **extra}) as resp:
        await resp.read()
        return resp
