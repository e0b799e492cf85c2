"""HttpSource against a real aiohttp server on a local port."""
from __future__ import annotations

import asyncio
import socket
import time

import pytest
from aiohttp import web

from adapters.base import SourceError, build_source
from adapters.http import HttpSource
from screenpop.config import SourceSettings

RECORDS = {"42": {"name": "Ana García", "balance": "125.40", "invoices": [{"number": "F-1"}]},
           "a/b?c": {"name": "slashed"}}
PHONES = [{"key": str(i), "phone": f"+34 600 00 00 {i:02d}"} for i in range(25)]


@pytest.fixture
async def server():
    seen: dict[str, list] = {"auth": [], "paths": []}
    release = asyncio.Event()  # the slow handler waits for the end of the test

    async def record(request: web.Request) -> web.Response:
        seen["auth"].append(request.headers.get("Authorization"))
        seen["paths"].append(request.raw_path)
        key = request.match_info["key"]
        if key == "boom":
            return web.Response(status=500, text="internal error")
        if key == "garbage":
            return web.Response(text="{not json", content_type="application/json")
        if key == "list":
            return web.json_response([1, 2])
        if key == "slow":
            await release.wait()
        if key not in RECORDS:
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response(RECORDS[key])

    async def phones_link(request: web.Request) -> web.Response:
        page = int(request.query.get("page", "0"))
        items = PHONES[page * 10 : page * 10 + 10]
        headers = {"Link": f'</api/phones?page={page + 1}>; rel="next"'} if page * 10 + 10 < len(PHONES) else {}
        return web.json_response(items, headers=headers)

    async def phones_items(request: web.Request) -> web.Response:
        page = int(request.query.get("page", "0"))
        following = f"/api/phones2?page={page + 1}" if page < 2 else None
        return web.json_response({"items": PHONES[page * 10 : page * 10 + 10], "next": following})

    async def phones_loop(request: web.Request) -> web.Response:
        return web.json_response({"items": [], "next": "/api/loop"})

    app = web.Application()
    app.router.add_get("/api/customers/{key}", record)
    app.router.add_get("/api/phones", phones_link)
    app.router.add_get("/api/phones2", phones_items)
    app.router.add_get("/api/loop", phones_loop)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", seen
    release.set()
    await runner.cleanup()


async def test_fetch_record_and_missing_record(server):
    base, seen = server
    source = build_source(SourceSettings(name="crm", kind="http", url=base + "/api/customers/{key}",
                                         token="s3cret", fields=["name", "balance"]))
    try:
        assert isinstance(source, HttpSource) and source.fields == {"name", "balance"}
        assert await source.fetch("42") == RECORDS["42"]
        assert await source.fetch("nobody") is None
        assert await source.fetch("a/b?c") == {"name": "slashed"}  # percent-encoded: cannot reach another path
    finally:
        await source.close()
    assert seen["auth"][0] == "Bearer s3cret"
    assert "/api/customers/a%2Fb%3Fc" in seen["paths"]


@pytest.mark.parametrize("key, reason", [("boom", "HTTP 500"), ("garbage", "invalid JSON"), ("list", "JSON object")])
async def test_server_faults_are_source_errors(server, key, reason):
    base, _ = server
    source = HttpSource("crm", base + "/api/customers/{key}")
    try:
        with pytest.raises(SourceError, match=reason) as err:
            await source.fetch(key)
        assert err.value.source == "crm"
    finally:
        await source.close()


async def test_slow_server_is_cut_by_the_timeout(server):
    base, _ = server
    source = HttpSource("crm", base + "/api/customers/{key}", timeout=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(SourceError, match="no answer within 0.3 s"):
            await source.fetch("slow")
    finally:
        await source.close()
    assert time.monotonic() - started < 1.5


async def test_refused_connection_is_a_source_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens once closed
    source = HttpSource("crm", f"http://127.0.0.1:{port}/c/{{key}}")
    try:
        with pytest.raises(SourceError, match="cannot connect"):
            await source.fetch("1")
    finally:
        await source.close()


@pytest.mark.parametrize("phones_url", ["/api/phones", "/api/phones2"])
async def test_phone_list_follows_pages(server, phones_url):
    base, _ = server
    source = HttpSource("crm", base + "/api/customers/{key}", phones_url=phones_url)
    try:
        rows = [row async for row in source.iter_phones()]
    finally:
        await source.close()
    assert rows == [(p["key"], p["phone"]) for p in PHONES]


async def test_phone_list_loop_and_missing_list_are_errors(server):
    base, _ = server
    for url, reason in (("/api/loop", "loops"), ("/api/nothing", "not found")):
        source = HttpSource("crm", base + "/api/customers/{key}", phones_url=url)
        try:
            with pytest.raises(SourceError, match=reason):
                [row async for row in source.iter_phones()]
        finally:
            await source.close()


def test_url_needs_a_key_placeholder():
    with pytest.raises(ValueError, match="key"):
        HttpSource("crm", "http://example.invalid/customers")
