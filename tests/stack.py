"""The whole node in front of the PBX simulator, nothing mocked.

:class:`Stack` is the wired node (``ScreenpopService``) in front of the PBX
simulator, which speaks real AMI over TCP, with seeded demo business
databases (:func:`seed_databases`) and the demo users (password ``demo``),
plus a billing token.  A test module changes what it needs through
``configure`` (a last say on the settings) and ``auth`` (auth setting
overrides).  :class:`ThreadedStack` runs a :class:`Stack` on an event loop
of its own in a background thread, for synchronous clients (schemathesis
drives ``requests``).

The ``demo_dbs`` and ``stack`` fixtures (tests/conftest.py) are the usual
way in: a module overrides ``demo_dbs`` when it wants another size or seed,
or ``stack`` when it wants other settings."""
from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from dataclasses import replace
from pathlib import Path
from typing import Callable

import aiohttp
import websockets

from adapters.demo import demo_sources, seed_demo
from screenpop.auth.store import ensure_demo_users
from screenpop.config import Settings, load_settings
from screenpop.demo import demo_users
from screenpop.service import ScreenpopService
from telephony.simulator import PbxSimulator

BILLING_TOKEN = "hardening-billing-token-0123456789"
AMI_SECRET = "hardening-secret"
DEMO_SYSTEMS = ("sales", "billing", "support")


def seed_databases(folder: Path, customers: int = 200, seed: int = 5) -> dict[str, str]:
    """The three demo business systems as SQLite files in ``folder``; their DSNs.

    Whatever the seed, the demo personas are there (Ana Garcia on
    +34912345678 owing 125.40, Bob Smith, Carla Ruiz, Frank Moreno:
    ``adapters/demo/personas.py``); the seed and count vary the others."""
    dsns = {name: f"sqlite+aiosqlite:///{folder}/{name}.sqlite3" for name in DEMO_SYSTEMS}
    asyncio.run(seed_demo(dsns, customers=customers, seed=seed))
    return dsns


class Stack:
    """``async with Stack(dsns, tmp_path) as stack:`` or ``start``/``stop``."""

    def __init__(self, dsns: dict[str, str], tmp_path: Path, *, auth: dict | None = None,
                 configure: Callable[[Settings], Settings] | None = None,
                 simulator_seed: int = 11, secret: str = AMI_SECRET):
        """``configure``: a last say on the settings (the fault tests point
        the storage at a proxy, add a hostile source; the supervision tests
        set the wallboard token and push interval...)."""
        self.secret = secret
        self.simulator = PbxSimulator(seed=simulator_seed, secret=secret)
        self.dsns, self.tmp_path = dsns, tmp_path
        self.auth_overrides = auth or {}
        self.configure = configure
        self.service: ScreenpopService | None = None
        self.http: aiohttp.ClientSession | None = None
        self.url = ""

    async def start(self) -> str:
        port = await self.simulator.start()
        settings = load_settings(None, env={})
        settings = replace(
            settings,
            ami=replace(settings.ami, port=port, secret=self.secret, reconnect_min=0.05, reconnect_max=0.5),
            sources=demo_sources(self.dsns),
            storage=replace(settings.storage, dsn=f"sqlite+aiosqlite:///{self.tmp_path}/interactions.sqlite3"),
            lookup=replace(settings.lookup, deadline_ms=2000),
            web=replace(settings.web, host="127.0.0.1", port=0),
            billing=replace(settings.billing, token=BILLING_TOKEN),
            auth=replace(settings.auth, **self.auth_overrides),
            interactions=replace(settings.interactions, flush_interval=0.05,
                                 spill_path=str(self.tmp_path / "spill.jsonl")),
        )
        if self.configure is not None:
            settings = self.configure(settings)
        self.service = ScreenpopService(settings)
        self.url = await self.service.start()
        await ensure_demo_users(self.service.accounts, demo_users())
        await asyncio.wait_for(self.service.connection.connected_event.wait(), 5)
        self.http = aiohttp.ClientSession()
        return self.url

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.close()
        if self.service is not None:
            await self.service.stop()
        await self.simulator.stop()

    async def __aenter__(self) -> "Stack":
        try:
            await self.start()
        except BaseException:
            with contextlib.suppress(Exception):  # the start's own error is the one to see
                await self.stop()
            raise
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1) + "/ws"

    async def token(self, username: str) -> str:
        async with self.http.post(f"{self.url}/api/v1/session",
                                  json={"username": username, "password": "demo", "return_token": True}) as r:
            assert r.status == 200, await r.text()
            return (await r.json())["token"]

    async def socket(self, username: str, token: str | None = None):
        token = token or await self.token(username)
        ws = await websockets.connect(f"{self.ws_url}?token={token}", max_size=None)
        hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert hello["type"] == "hello", hello
        return ws

    async def api(self, method: str, path: str, token: str | None, *, headers: dict | None = None, **kwargs):
        """(status, JSON body) of a request with ``token`` as the bearer (none if None)."""
        auth = {"Authorization": f"Bearer {token}"} if token is not None else {}
        async with self.http.request(method, f"{self.url}{path}", headers={**auth, **(headers or {})}, **kwargs) as r:
            text = await r.text()
            assert r.content_type == "application/json", (r.status, r.content_type, text[:300])
            return r.status, json.loads(text)

    async def api_as(self, method: str, path: str, username: str | None, **kwargs):
        """:meth:`api` logged in afresh as ``username`` (anonymous if None)."""
        return await self.api(method, path, await self.token(username) if username else None, **kwargs)

    async def logged(self, call_id: str, token: str, timeout: float = 10.0) -> dict:
        """The call's interaction record once it has ended, through the API."""

        async def poll():
            while True:
                status, body = await self.api("GET", f"/api/v1/interactions/{call_id}", token)
                if status == 200 and body.get("ended_at"):
                    return body
                assert status in (200, 404), body
                await asyncio.sleep(0.05)

        return await asyncio.wait_for(poll(), timeout)


class ThreadedStack:
    """A :class:`Stack` served from a thread with its own event loop.

    schemathesis' pytest integration is synchronous (hypothesis drives
    ``requests``); calling it from inside an asyncio test would block the
    loop that serves the very requests it makes.  Here the service owns a
    loop in a daemon thread, the test thread makes blocking HTTP calls to
    it, and :meth:`run` hands a coroutine to that loop when the test needs
    the service's own objects (placing calls on the simulator)."""

    def __init__(self, dsns: dict[str, str], tmp_path: Path, **options):
        self.stack = Stack(dsns, tmp_path, **options)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="stack-service", daemon=True)

    def start(self) -> str:
        self.thread.start()
        return self.run(self.stack.start(), timeout=60)

    def run(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        try:
            self.run(self.stack.stop(), timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    @property
    def url(self) -> str:
        return self.stack.url
