"""Several real `screenpop serve` processes on loopback, sharing one Redis and
one PostgreSQL, fed by the PBX simulator over real AMI TCP.

Nothing is mocked: each node is the installed console script in its own
process with its own config file; the tests see them only through HTTP,
WebSocket, Redis and PostgreSQL, as a load balancer and its users would.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import websockets

from tests.wsclient import collect, drain  # noqa: F401  (the cluster tests' helpers, re-exported)

SCREENPOP = str(Path(sys.executable).with_name("screenpop"))
SECRET = "cluster-secret"
BILLING_TOKEN = "cluster-billing-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a TOML basic string: JSON's escapes are TOML's


def write_config(path: Path, *, ami_port: int, storage_dsn: str, redis_url: str, prefix: str, sources, lease_seconds=2.0,
                 index_check_seconds=30.0, overrides: dict[str, dict] | None = None) -> Path:
    """A node's TOML: test-friendly timings, unless ``overrides`` (section -> keys) says otherwise."""
    sections: dict[str, dict] = {
        "ami": {"host": "127.0.0.1", "port": ami_port, "username": "screenpop", "reconnect_min": 0.05,
                "reconnect_max": 0.5, "ping_interval": 2.0, "ping_timeout": 2.0},
        "agents": {"patterns": [r"^Local/(?P<agent>\d+)@agents\b", r"^(?:PJSIP|SIP)/(?P<agent>\d{2,8})(?:-[0-9a-fA-F]+)?$"]},
        "lookup": {"deadline_ms": 2000, "redis_prefix": prefix, "index_check_seconds": index_check_seconds},
        "storage": {"dsn": storage_dsn},
        "interactions": {"flush_interval": 0.05},
        "bus": {"redis_url": redis_url, "lease_seconds": lease_seconds, "ami_grace_seconds": 30},
        "auth": {"socket_recheck_seconds": 5},
        "web": {"host": "127.0.0.1", "port": 0},
    }
    for section, keys in (overrides or {}).items():
        sections.setdefault(section, {}).update(keys)
    lines = []
    for section, keys in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in keys.items()]
    for source in sources:
        lines.append("[[sources]]")
        for key in ("name", "kind", "dsn", "phones_query", "record_query", "fields"):
            value = getattr(source, key)
            if value not in ("", None, []):
                lines.append(f"{key} = {toml_value(value)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class Node:
    name: str
    port: int
    process: subprocess.Popen
    log: Path
    http: aiohttp.ClientSession = field(repr=False, default=None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def health(self) -> dict | None:
        try:
            async with self.http.get(f"{self.url}/healthz", timeout=aiohttp.ClientTimeout(total=3)) as r:
                return await r.json()
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            return None

    async def ingesting(self) -> bool:
        health = await self.health()
        return bool(health and health["parts"].get("cluster", {}).get("ingesting"))

    async def token(self, username: str) -> str:
        async with self.http.post(f"{self.url}/api/v1/session",
                                  json={"username": username, "password": "demo", "return_token": True}) as r:
            assert r.status == 200, await r.text()
            return (await r.json())["token"]

    async def socket(self, username: str):
        token = await self.token(username)
        ws = await websockets.connect(f"ws://127.0.0.1:{self.port}/ws?token={token}")
        hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert hello["type"] == "hello", hello
        return ws

    async def api(self, method: str, path: str, username: str, **kwargs):
        headers = {"Authorization": f"Bearer {await self.token(username)}"}
        async with self.http.request(method, f"{self.url}{path}", headers=headers, **kwargs) as r:
            return r.status, await r.json()

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Cluster:
    def __init__(self, config: Path, folder: Path, *, secret: str = SECRET):
        self.config = config
        self.folder = folder
        self.secret = secret
        self.nodes: dict[str, Node] = {}
        self.http = aiohttp.ClientSession()

    def start(self, name: str) -> Node:
        port = free_port()
        log = self.folder / f"{name}.log"
        env = {**os.environ, "SCREENPOP_AMI__SECRET": self.secret, "SCREENPOP_BUS__NODE_ID": name,
               "SCREENPOP_BILLING__TOKEN": BILLING_TOKEN}
        process = subprocess.Popen([SCREENPOP, "--config", str(self.config), "--log-level", "info", "serve", "--port", str(port)],
                                   stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env, cwd=self.folder)
        node = self.nodes[name] = Node(name, port, process, log, self.http)
        return node

    async def wait_up(self, *nodes: Node, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        for node in nodes:
            while await node.health() is None:
                if not node.alive():
                    raise AssertionError(f"node {node.name} exited:\n{node.tail()}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"node {node.name} not up in {timeout}s:\n{node.tail()}")
                await asyncio.sleep(0.1)

    async def ingester(self, *, timeout: float = 15.0, among: list[Node] | None = None) -> Node:
        """The one node that says it ingests, once exactly one does."""
        deadline = time.monotonic() + timeout
        while True:
            candidates = [n for n in (among or self.nodes.values()) if n.alive()]
            leading = [n for n in candidates if await n.ingesting()]
            if len(leading) == 1:
                health = await leading[0].health()
                if health["parts"].get("ami", {}).get("ok"):
                    return leading[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no single connected ingester after {timeout}s: {[n.name for n in leading]}")
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        for node in self.nodes.values():
            if node.alive():
                node.process.send_signal(signal.SIGTERM)
        for node in self.nodes.values():
            try:
                node.process.wait(15)
            except subprocess.TimeoutExpired:
                node.kill()
        await self.http.close()


class PrivateRedis:
    """A redis-server of the test's own on a free port, so it can be stopped
    and restarted without touching the machine's shared one.  Like a Redis
    run as a cache, it keeps nothing on disk: a restart starts it empty."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)], stdout=(self.folder / "redis.log").open("ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
