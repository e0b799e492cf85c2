"""The headers of the web edge on a real node (issue 18, point 16): a
Content-Security-Policy without ``unsafe-inline`` on every page, no inline
script or style in what the pages render and their JS does, ``no-store`` on
every JSON answer, no version banner, and a NUL byte in a header answered
400 with a warning, never an ERROR traceback."""
from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

from agent_ui.headers import CONTENT_SECURITY_POLICY
from tests.security.node import WALLBOARD_TOKEN

STATIC = Path(__file__).resolve().parents[2] / "agent_ui" / "static"
PAGES = {  # path -> who reads it
    "/login": None, "/": "agent", "/interactions": "supervisor",
    "/supervisor": "supervisor", "/supervisor/queues/support": "supervisor", "/supervisor/agents/1001": "admin",
    f"/wallboard?token={WALLBOARD_TOKEN}": None,
}
META = re.compile(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">')


async def get(node, path: str, role: str | None, accept: str):
    headers = {**(node.bearer(role) if role else {}), "Accept": accept}
    async with node.http.get(node.url + path, headers=headers, allow_redirects=False) as r:
        return r.status, r.headers, await r.text()


async def test_every_page_has_a_strict_policy_and_nothing_inline(node):
    for path, role in PAGES.items():
        status, headers, body = await get(node, path, role, "text/html")
        assert status == 200, (path, status)
        assert headers["Content-Type"].startswith("text/html"), (path, headers["Content-Type"])
        policy = headers["Content-Security-Policy"]
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy and "frame-ancestors 'none'" in policy
        assert "script-src 'self'" in policy and "style-src 'self'" in policy
        assert META.search(body).group(1) == CONTENT_SECURITY_POLICY, path  # the page's meta says the same
        assert headers["X-Content-Type-Options"] == "nosniff" and headers["Server"] == "screenpop"
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", body), f"inline script on {path}"
        assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=", body, re.I), f"inline style or handler on {path}"


def test_the_pages_js_never_writes_inline_style_or_markup():
    """CSSOM property sets (``el.style.setProperty``) are allowed under the
    policy; a ``style`` attribute or markup written as HTML is not."""
    for script in sorted(STATIC.glob("*.js")):
        text = script.read_text()
        for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "cssText", "document.write",
                          "setAttribute('style'", 'setAttribute("style"', "style="):
            assert forbidden not in text, f"{script.name} uses {forbidden}"


async def test_every_json_answer_is_no_store_and_no_banner(node):
    status, document = await node.call("GET", "/api/v1/openapi.json")
    assert status == 200
    paths = [p for p, ops in document["paths"].items() if "get" in ops and "{" not in p] + ["/api/v1/interactions/nope"]
    seen = 0
    for path in paths:
        for role in ("admin", "supervisor", "agent", None):
            async with node.http.get(node.url + path, headers=node.bearer(role) if role else {}) as r:
                if r.content_type == "application/json":
                    seen += 1
                    assert r.headers.get("Cache-Control") == "no-store", (path, role, r.status)
                assert r.headers["Server"] == "screenpop", (path, r.headers["Server"])
    assert seen > 20
    async with node.http.get(node.url + "/static/app.css") as r:
        assert r.status == 200 and r.headers["Server"] == "screenpop"


async def raw(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(4096), 5)
    finally:
        writer.close()


async def test_a_nul_byte_in_a_header_is_a_400_and_a_warning_not_a_traceback(node, caplog):
    caplog.set_level(logging.DEBUG)
    for header in (b"X-Note: a\x00b", b"Authorization: Bearer abc\x00def", b"Cookie: screenpop_session=\x00"):
        answer = await raw(node.url, b"GET /api/v1/session HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n\r\n")
        head = answer.split(b"\r\n\r\n")[0].decode("latin-1")
        assert head.startswith("HTTP/1.") and " 400 " in head.splitlines()[0], head
        assert "aiohttp" not in head and "Python" not in head, head
    await asyncio.sleep(0.1)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert "Traceback" not in caplog.text and "bad request refused status=400" in caplog.text
    status, _ = await node.call("GET", "/api/v1/session", "agent")
    assert status == 200  # and the node goes on serving
