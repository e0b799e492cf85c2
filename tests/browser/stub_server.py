"""A small aiohttp server for browser tests of the pages alone.

It serves the real pages and static files (agent_ui.pages) and stands in for
everything else: the auth middleware (one logged-in user, a fixed CSRF
token), the WebSocket hub (the test scripts every frame the browser gets and
sees every frame it sends) and the REST API (canned answers; every request is
recorded with its headers and body).  So a browser test can prove what the
page does with exactly the messages the contracts allow, without a PBX, a
database or timing luck.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from agent_ui import pages

CSRF = "test-csrf-token-0123456789abcdef"
DISPOSITIONS = [{"code": "sale", "label": "Sale"}, {"code": "callback", "label": "Call back"}, {"code": "complaint", "label": "Complaint"}]


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class User:
    username: str = "ana"
    role: str = "agent"
    agent_id: str | None = "1001"
    display_name: str | None = "Ana Agent"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    csrf: str | None
    body: Any


@dataclass
class StubService:
    user: User | None = field(default_factory=User)  # None: nobody logged in yet
    password: str = "correct horse"
    # Set: override what the pages render ([] / "": rendered without, as an app without PageSettings does).
    page_dispositions: list | None = None
    page_create_contact_url: str | None = None
    outcome_error: str | None = None  # set: PUT .../outcome answers 503 with this reason
    store_down: bool = False  # the session store is unreachable: handshakes and GET /api/v1/session answer 503
    refused_sockets: int = 0  # handshakes answered 503 while store_down
    session_checks: int = 0  # GET /api/v1/session requests
    interactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    client_frames: list[dict[str, Any]] = field(default_factory=list)
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, message: dict[str, Any]) -> None:
        """One server → browser frame to every open socket."""
        for ws in list(self.sockets):
            await ws.send_str(json.dumps(message))

    def recorded(self, method: str, path_start: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_start)]

    # ------------------------------------------------------------ app

    def app(self) -> web.Application:
        @web.middleware
        async def stand_in_auth(request: web.Request, handler):
            if self.page_dispositions is not None:
                request["dispositions"] = self.page_dispositions
            if self.page_create_contact_url is not None:
                request["create_contact_url"] = self.page_create_contact_url
            if self.user is not None:
                request["user"] = self.user
                request["csrf_token"] = CSRF
            if request.path.startswith("/api/"):
                body = None
                if request.can_read_body:
                    raw = await request.read()
                    body = json.loads(raw) if raw else None
                request["body"] = body
                self.requests.append(Recorded(request.method, request.path, dict(request.query), request.headers.get("X-CSRF-Token"), body))
                if self.user is None and (request.method, request.path) != ("POST", "/api/v1/session"):
                    return web.json_response({"error": "log in first"}, status=401)
                if self.user is not None and request.method not in ("GET", "HEAD") and request.headers.get("X-CSRF-Token") != CSRF:
                    return web.json_response({"error": "missing or wrong CSRF token"}, status=403)
            return await handler(request)

        app = web.Application(middlewares=[stand_in_auth])
        pages.add_page_routes(
            app, lambda method, path, handler, rule: app.router.add_route(method, path, handler),
            settings=pages.PageSettings(dispositions=DISPOSITIONS, create_contact_url="https://crm.example/contacts/new?phone={number}"),
        )
        app.router.add_get("/ws", self.websocket)
        app.router.add_get("/api/v1/pops", self.pops)
        app.router.add_get("/api/v1/config/ui", self.ui_config)
        app.router.add_post("/api/v1/session", self.login)
        app.router.add_get("/api/v1/session", self.session)
        app.router.add_delete("/api/v1/session", self.logout)
        app.router.add_get("/api/v1/interactions", self.search)
        app.router.add_get("/api/v1/interactions/{call_id}", self.get_one)
        app.router.add_put("/api/v1/interactions/{call_id}/outcome", self.set_outcome)
        app.router.add_post("/api/v1/interactions/{call_id}/notes", self.add_note)
        return app

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        if self.store_down:
            self.refused_sockets += 1
            return web.json_response({"error": "session store unavailable, retry shortly"}, status=503, headers={"Retry-After": "5"})
        if self.user is None:
            return web.json_response({"error": "log in first"}, status=401)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps({"type": "hello", "user": {"username": self.user.username, "role": self.user.role, "agent_id": self.user.agent_id}, "server_time": now(), "protocol": 1}))
        self.sockets.append(ws)
        self.connected.set()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self.client_frames.append(json.loads(msg.data))
        finally:
            self.sockets.remove(ws)
        return ws

    async def login(self, request: web.Request) -> web.Response:
        body = request["body"] or {}
        if body.get("username") != "ana" or body.get("password") != self.password:
            return web.json_response({"error": "wrong user name or password"}, status=401)
        self.user = User()
        return web.json_response({"user": {"username": "ana", "role": "agent", "agent_id": "1001", "display_name": "Ana Agent"}, "csrf_token": CSRF})

    async def session(self, request: web.Request) -> web.Response:
        self.session_checks += 1
        if self.store_down:
            return web.json_response({"error": "session store unavailable, retry shortly"}, status=503, headers={"Retry-After": "5"})
        return web.json_response({"user": {"username": self.user.username}, "csrf_token": CSRF})

    async def logout(self, request: web.Request) -> web.Response:
        self.user = None
        return web.Response(status=204)

    async def pops(self, request: web.Request) -> web.Response:
        return web.json_response({"items": []})

    async def ui_config(self, request: web.Request) -> web.Response:
        return web.json_response({"dispositions": [d["code"] for d in DISPOSITIONS] + ["wrong_number"], "create_contact_url": "https://crm.example/from-config?n={number}", "agent_id": self.user.agent_id, "role": self.user.role, "display_name": self.user.display_name})

    async def search(self, request: web.Request) -> web.Response:
        items = sorted(self.interactions.values(), key=lambda r: r.get("queued_at") or "", reverse=True)
        limit, offset = int(request.query.get("limit", 50)), int(request.query.get("offset", 0))
        return web.json_response({"items": items[offset:offset + limit], "total": len(items)})

    async def get_one(self, request: web.Request) -> web.Response:
        record = self.interactions.get(request.match_info["call_id"])
        return web.json_response(record) if record else web.json_response({"error": "no such call"}, status=404)

    async def set_outcome(self, request: web.Request) -> web.Response:
        call_id = request.match_info["call_id"]
        if self.outcome_error:
            return web.json_response({"error": self.outcome_error}, status=503)
        body = request["body"]
        record = self.interactions.setdefault(call_id, {"call_id": call_id, "notes": []})
        record.update(disposition=body["disposition"], follow_up=body.get("follow_up"), outcome_by=self.user.username, outcome_at=now())
        if body.get("notes"):
            record["notes"].append({"id": len(record["notes"]) + 1, "call_id": call_id, "author": self.user.username, "text": body["notes"], "created_at": now()})
        return web.json_response(record)

    async def add_note(self, request: web.Request) -> web.Response:
        call_id = request.match_info["call_id"]
        record = self.interactions.get(call_id)
        if record is None:
            return web.json_response({"error": "no such call"}, status=404)
        note = {"id": len(record["notes"]) + 1, "call_id": call_id, "author": self.user.username, "text": request["body"]["text"], "created_at": now()}
        record["notes"].append(note)
        return web.json_response(note, status=201)


async def start(service: StubService) -> TestServer:
    server = TestServer(service.app())
    await server.start_server()
    return server


@contextlib.asynccontextmanager
async def serving(service: StubService):
    """``service`` served on loopback (its ``base_url`` set) until the block ends."""
    server = await start(service)
    service.base_url = str(server.make_url("/")).rstrip("/")
    try:
        yield service
    finally:
        await server.close()
