"""Healthy means ready (issue 18, point 18): the demo's ``/healthz`` says OK
only once a login works.  The whole demo runs in this process (seeded
databases, the PBX simulator over AMI, the service on a real port), and a
client polls ``/healthz`` from the moment the demo starts, as a script or a
load balancer would, then logs in as ``agent1001`` the moment it first sees OK."""
from __future__ import annotations

import asyncio
import socket
from dataclasses import replace

import aiohttp

from adapters.demo import demo_sources
from screenpop.demo import demo_settings, run_demo


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_the_first_ok_of_the_demo_is_followed_by_a_working_login(tmp_path):
    dsns = {name: f"sqlite+aiosqlite:///{tmp_path}/{name}.sqlite3" for name in ("sales", "billing", "support")}
    settings = demo_settings(None)
    settings = replace(settings, sources=demo_sources(dsns),
                       storage=replace(settings.storage, dsn=f"sqlite+aiosqlite:///{tmp_path}/interactions.sqlite3"),
                       interactions=replace(settings.interactions, spill_path=str(tmp_path / "spill.jsonl")))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    demo = asyncio.create_task(run_demo(settings, rate=0.2, duration=60, speed=1, port=port, customers=30))
    answers = []
    try:
        async with aiohttp.ClientSession() as http:
            while True:
                assert not demo.done(), demo.exception() if demo.done() else None
                try:
                    async with http.get(f"{url}/healthz") as r:
                        health = await r.json()
                        answers.append(r.status)
                        if r.status == 200:
                            assert health["ok"] and health["parts"]["node"]["state"] == "ready", health
                            async with http.post(f"{url}/api/v1/session",
                                                 json={"username": "agent1001", "password": "demo"}) as login:
                                assert login.status == 200, (await login.text(), answers)
                            break
                        assert r.status == 503 and not health["ok"], health
                except aiohttp.ClientConnectionError:
                    answers.append("refused")
                await asyncio.sleep(0.005)
    finally:
        demo.cancel()
        await asyncio.gather(demo, return_exceptions=True)
    assert 503 in answers, answers  # it was seen starting: the poll began before the node was ready
