"""One real screenpop node for the security tests: ``ScreenpopService`` with
its whole web app (every route, the socket), its database (SQLite or a
scratch PostgreSQL), no PBX (the routes do not need calls), and one account
per role."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import aiohttp

from screenpop.config import load_settings
from screenpop.service import ScreenpopService

PASSWORD = "correct horse battery"
CONFIG_BILLING_TOKEN = "config-file-billing-token-0123456789"
WALLBOARD_TOKEN = "wallboard-token-for-the-tv-0123456789"
ACCOUNTS = {"agent": ("alice", "1001"), "supervisor": ("sam", None), "admin": ("ada", None), "support": ("sue", None)}


@dataclass
class Node:
    service: ScreenpopService
    url: str
    http: aiohttp.ClientSession
    tokens: dict[str, str] = field(default_factory=dict)  # role -> session bearer token

    @property
    def app(self):
        return self.service.app

    async def login(self, username: str, password: str = PASSWORD) -> str:
        async with self.http.post(f"{self.url}/api/v1/session",
                                  json={"username": username, "password": password, "return_token": True}) as r:
            assert r.status == 200, await r.text()
            return (await r.json())["token"]

    def bearer(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}", "Accept": "application/json"}

    async def call(self, method: str, path: str, role: str | None = None, **kwargs) -> tuple[int, object]:
        headers = {**(self.bearer(role) if role else {"Accept": "application/json"}), **kwargs.pop("headers", {})}
        async with self.http.request(method, self.url + path, headers=headers, allow_redirects=False, **kwargs) as r:
            body = await r.json() if r.content_type == "application/json" else await r.text()
            return r.status, body


def settings_for(dsn: str, tmp_path: Path, **sections):
    s = load_settings(None, env={})
    s = replace(s, storage=replace(s.storage, dsn=dsn), web=replace(s.web, host="127.0.0.1", port=0),
                billing=replace(s.billing, token=CONFIG_BILLING_TOKEN),
                supervision=replace(s.supervision, wallboard_token=WALLBOARD_TOKEN),
                interactions=replace(s.interactions, flush_interval=0.05, spill_path=str(tmp_path / "spill.jsonl")),
                security=replace(s.security, token_cache_seconds=0.2, audit_flush_interval=0.05))
    for name, values in sections.items():
        s = replace(s, **{name: replace(getattr(s, name), **values)})
    return s


@contextlib.asynccontextmanager
async def running_node(dsn: str, tmp_path: Path, *, connect_pbx: bool = False, **sections):
    """``connect_pbx=True``: connect to the PBX of ``ami={...}`` (a simulator)."""
    service = ScreenpopService(settings_for(dsn, tmp_path, **sections), ami=connect_pbx)
    url = await service.start()
    http = aiohttp.ClientSession()
    try:
        node = Node(service, url, http)
        for role, (username, agent_id) in ACCOUNTS.items():
            await service.accounts.create_user(username, PASSWORD, role, agent_id)
            node.tokens[role] = await node.login(username)
        yield node
    finally:
        await http.close()
        await service.stop()
