"""The supervisor pages and the wallboard over real HTTP: rules, roles,
escaping of hostile queue names and agent ids from the address, static
references, and the JS modules (parse, imports, no markup sinks: the
generic checks of test_pages.py run over every static file, these add the
supervisor's own).

As in test_pages.py, a stand-in middleware puts the user on the request
from a test-only header; the last tests run the real auth and access
registry, so the rules the pages declare are ones the app accepts.
"""
from __future__ import annotations

import re
import shutil
from datetime import timedelta
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from agent_ui import access, auth, pages, supervisor_pages
from screenpop.auth.accounts import LockoutPolicy, SessionPolicy
from screenpop.auth.models import sessions, users
from screenpop.auth.store import AccountStore
from screenpop.config import AuthSettings
from screenpop.db import create_engine, metadata
from tests.agent_ui.test_pages import (
    CSRF, HOSTILE, USERS, StandInUser, assert_escaped, get, node_check_module, refs_of,
)

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

SUP_USERS = {**USERS, "admin": StandInUser("root", "admin", None, HOSTILE)}
PAGES = ("/supervisor", "/supervisor/queues/support", "/supervisor/agents/1001")
SUPERVISOR_JS = ("supervisor.js", "supervisor-queue.js", "supervisor-agent.js", "supervisor-calls.js", "supervisor-common.js", "supervisor-feed.js",
                 "wallboard.js")


@web.middleware
async def stand_in_auth(request: web.Request, handler):
    name = request.headers.get("X-Test-User")
    if name:
        request["user"] = SUP_USERS[name]
        request["csrf_token"] = CSRF
    return await handler(request)


@pytest.fixture
async def client():
    rules: dict[tuple[str, str], object] = {}
    app = web.Application(middlewares=[stand_in_auth])

    def add_route(method, path, handler, rule):
        rules[(method, path)] = rule
        app.router.add_route(method, path, handler)

    pages.add_page_routes(app, add_route, settings=pages.PageSettings(dispositions=[{"code": "evil", "label": HOSTILE}, "sale"]))
    supervisor_pages.add_supervisor_routes(app, add_route)
    server = TestServer(app)
    await server.start_server()
    async with aiohttp.ClientSession(base_url=str(server.make_url("/"))) as session:
        session.rules = rules  # type: ignore[attr-defined]
        yield session
    await server.close()


# ------------------------------------------------------------------ rules and roles


async def test_rules_supervisor_pages_for_supervisors_and_admins_wallboard_public(client):
    rules = client.rules
    for path in ("/supervisor", "/supervisor/queues/{queue}", "/supervisor/agents/{agent_id}"):
        assert rules[("GET", path)] == {"supervisor", "admin"}
    assert rules[("GET", "/wallboard")] == "public"


async def test_anonymous_goes_to_login_and_an_agent_is_refused(client):
    for path in PAGES:
        status, headers, _ = await get(client, path)
        assert status == 302 and headers["Location"] == "/login?next=" + path
        status, _, body = await get(client, path, "agent")
        assert status == 403 and "Ana" not in body


@pytest.mark.parametrize("user", ["supervisor", "admin"])
async def test_supervisor_and_admin_get_every_page_with_the_nav_link(client, user):
    for path in PAGES:
        status, headers, body = await get(client, path, user)
        assert status == 200, path
        assert headers["Cache-Control"] == "no-store" and headers["X-Frame-Options"] == "DENY"
        assert 'href="/supervisor" aria-current="page">Supervisor<' in body
        assert refs_of(body).meta["csrf-token"] == CSRF
        assert "script-src 'self'" in body
        if user == "admin":
            assert_escaped(body)  # the display name


async def test_agents_get_no_supervisor_link(client):
    _, _, body = await get(client, "/interactions", "agent")
    assert 'href="/supervisor"' not in body
    _, _, body = await get(client, "/interactions", "supervisor")
    assert 'href="/supervisor">Supervisor<' in body


# ------------------------------------------------------------------ hostile names from the address


async def test_hostile_queue_name_in_the_address_is_text(client):
    status, _, body = await get(client, "/supervisor/queues/" + quote(HOSTILE, safe=""), "supervisor")
    assert status == 200
    assert_escaped(body)
    assert 'data-queue="&#34;&gt;&lt;script&gt;' in body  # handed to the JS in an attribute, escaped
    assert "/static/supervisor-queue.js" in refs_of(body).refs


async def test_hostile_agent_id_in_the_address_is_text(client):
    status, _, body = await get(client, "/supervisor/agents/" + quote(HOSTILE, safe=""), "supervisor")
    assert status == 200
    assert_escaped(body)
    assert 'data-agent-id="&#34;&gt;&lt;script&gt;' in body
    assert "/static/supervisor-agent.js" in refs_of(body).refs


async def test_hostile_disposition_labels_are_escaped_on_the_drill_downs(client):
    for path in ("/supervisor/queues/support", "/supervisor/agents/1001"):
        _, _, body = await get(client, path, "supervisor")
        assert '<select id="disposition-labels"' in body
        assert_escaped(body)


@pytest.mark.parametrize("name", ["x" * 129, "a%0Ab", "a%7Fb"])
async def test_overlong_or_control_character_names_are_404(client, name):
    for prefix in ("/supervisor/queues/", "/supervisor/agents/"):
        status, _, _ = await get(client, prefix + name, "supervisor")
        assert status == 404, prefix + name


# ------------------------------------------------------------------ wallboard


async def test_wallboard_is_public_and_holds_no_data_nor_token(client):
    status, headers, body = await get(client, "/wallboard", params={"token": HOSTILE})
    assert status == 200 and headers["Cache-Control"] == "no-store"
    assert HOSTILE not in body and "&lt;script&gt;" not in body  # the token is read by JS, never echoed
    refs = refs_of(body)
    assert "/static/wallboard.js" in refs.refs and "/static/supervisor.css" in refs.refs
    assert "/static/session.js" not in refs.refs and refs.meta["csrf-token"] == ""
    for element_id in ("wallboard", "wb-queues", "wb-message", "wb-stale", "wb-clock"):
        assert f'id="{element_id}"' in body
    assert 'class="page-wallboard"' in body


# ------------------------------------------------------------------ static files and JS


async def test_every_static_file_the_pages_reference_is_served(client):
    seen: set[str] = set()
    for path, user in ((p, "supervisor") for p in PAGES):
        _, _, body = await get(client, path, user)
        seen.update(ref for ref in refs_of(body).refs if ref.startswith("/static/"))
    _, _, body = await get(client, "/wallboard")
    seen.update(ref for ref in refs_of(body).refs if ref.startswith("/static/"))
    assert {"/static/supervisor.css", "/static/supervisor.js", "/static/supervisor-queue.js", "/static/supervisor-agent.js", "/static/wallboard.js"} <= seen
    for ref in sorted(seen):
        status, headers, _ = await get(client, ref)
        assert status == 200, ref
        assert headers["Content-Type"].startswith("text/javascript" if ref.endswith(".js") else "text/css")


IMPORT = re.compile(r"""^\s*(?:import|export)\b[^'"]*?\bfrom\s+['"]([^'"]+)['"]""", re.M)
IMPORTED_NAMES = re.compile(r"""^\s*import\s*\{([^}]*)\}\s*from\s*['"]\./([^'"]+)['"]""", re.M)


def test_supervisor_modules_import_only_names_that_exist():
    """A misspelt imported name is a SyntaxError in the browser that
    node --check does not see (it does not link modules)."""
    for name in SUPERVISOR_JS:
        source = (pages.STATIC_DIR / name).read_text()
        for match in IMPORTED_NAMES.finditer(source):
            target = (pages.STATIC_DIR / match.group(2)).read_text()
            for imported in (n.strip().split(" as ")[0] for n in match.group(1).split(",") if n.strip()):
                assert re.search(rf"^export\s+(?:async\s+)?(?:function|class|const|let)\s+{re.escape(imported)}\b", target, re.M), f"{name}: {imported} from {match.group(2)}"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_supervisor_modules_parse():
    for name in SUPERVISOR_JS:
        result = node_check_module((pages.STATIC_DIR / name).read_text())
        assert result.returncode == 0, f"{name}: {result.stderr}"


def test_supervisor_js_never_writes_markup():
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\s*\(|new\s+Function\s*\(|createContextualFragment")
    for name in SUPERVISOR_JS:
        for number, line in enumerate((pages.STATIC_DIR / name).read_text().splitlines(), 1):
            assert not sinks.search(line), f"{name}:{number}: {line.strip()}"


# ------------------------------------------------------------------ with the real auth and access registry

PW = "s3cret-pass-for-supervisor-pages"


@pytest.fixture
async def site(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/sup.sqlite3")
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: metadata.create_all(c, tables=[users, sessions]))
    store = AccountStore(engine, lockout=LockoutPolicy(max_failures=5, lock_seconds=300),
                         sessions=SessionPolicy(idle=timedelta(hours=1), absolute=timedelta(hours=8), touch_every=timedelta(seconds=60)),
                         scrypt_n=2**4)
    await store.create_user("ana", PW, "agent", "1001", "Ana")
    await store.create_user("sam", PW, "supervisor", None, "Sam")
    app = web.Application()
    auth.setup(app, store, AuthSettings())
    add = lambda m, p, h, r: access.add(app, m, p, h, r)  # noqa: E731
    pages.add_page_routes(app, add)
    supervisor_pages.add_supervisor_routes(app, add)
    server = TestServer(app)
    await server.start_server()  # access.check refuses an app with a route the registry rejects
    yield server
    await server.close()
    await engine.dispose()


async def test_real_auth_roles_and_the_public_wallboard(site):
    html = {"Accept": "text/html"}
    async with aiohttp.ClientSession(base_url=str(site.make_url("/")), cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        async with s.get("/wallboard", params={"token": "x"}, headers=html, allow_redirects=False) as resp:
            assert resp.status == 200
        async with s.get("/supervisor", headers=html, allow_redirects=False) as resp:
            assert resp.status == 302 and resp.headers["Location"] == "/login?next=/supervisor"
        async with s.post("/api/v1/session", json={"username": "ana", "password": PW}) as resp:
            assert resp.status == 200
        async with s.get("/supervisor", headers=html, allow_redirects=False) as resp:
            assert resp.status == 403
    async with aiohttp.ClientSession(base_url=str(site.make_url("/")), cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        async with s.post("/api/v1/session", json={"username": "sam", "password": PW}) as resp:
            assert resp.status == 200
        for path in PAGES:
            async with s.get(path, headers=html, allow_redirects=False) as resp:
                assert resp.status == 200, path
