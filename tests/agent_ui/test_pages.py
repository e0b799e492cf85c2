"""The HTML pages over real HTTP: escaping, redirects, static files, JS syntax,
and (last section) the contract with the real auth middleware.

The app here is a bare aiohttp app with the pages only.  The real service
puts the logged-in user and the CSRF token on the request in its auth
middleware; this test stands in for that with a tiny middleware that reads
the stand-in user's name from a test-only header (``X-Test-User``), so each
request can be anonymous, an agent, a supervisor or a user whose display
name is an attack.  The route registrar records each route's rule so the
test can check what every page declares.
"""
from __future__ import annotations

import html
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser

import aiohttp
import markupsafe
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from agent_ui import access, auth, pages
from agent_ui.pages import PageSettings, normalize_dispositions, safe_next
from screenpop.auth.accounts import LockoutPolicy, SessionPolicy
from screenpop.auth.models import sessions, users
from screenpop.auth.store import AccountStore
from screenpop.config import AuthSettings
from screenpop.db import create_engine, metadata

# The app's contract is plain string keys request["user"] / request["csrf_token"].
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>\''
CSRF = "csrf-" + "x" * 40
EVERY_ROLE = frozenset({"agent", "supervisor", "admin", "support"})
VALID_RULES = {"public", "agent", "support", "supervisor", "admin", EVERY_ROLE}


@dataclass(frozen=True)
class StandInUser:
    username: str
    role: str
    agent_id: str | None
    display_name: str | None


USERS = {
    "agent": StandInUser("ana", "agent", "1001", "Ana Agent"),
    "supervisor": StandInUser("sam", "supervisor", None, "Sam Boss"),
    "support": StandInUser("sue", "support", None, "Sue Support"),
    "hostile": StandInUser("eve", "agent", "1002", HOSTILE),
}

DISPOSITIONS = [{"code": "sale", "label": "Sale"}, {"code": "evil", "label": HOSTILE}, "callback"]


@web.middleware
async def stand_in_auth(request: web.Request, handler):
    """Test stand-in for the app's auth middleware: request["user"] and
    request["csrf_token"] as the real one provides them."""
    name = request.headers.get("X-Test-User")
    if name:
        request["user"] = USERS[name]
        request["csrf_token"] = CSRF
    return await handler(request)


@pytest.fixture
async def client():
    rules: dict[tuple[str, str], str] = {}
    app = web.Application(middlewares=[stand_in_auth])

    def add_route(method, path, handler, rule):
        rules[(method, path)] = rule
        app.router.add_route(method, path, handler)

    pages.add_page_routes(app, add_route, settings=PageSettings(dispositions=DISPOSITIONS, create_contact_url="https://crm.example/new?phone={number}&x=" + HOSTILE))
    server = TestServer(app)
    await server.start_server()
    async with aiohttp.ClientSession(base_url=str(server.make_url("/"))) as session:
        session.rules = rules  # type: ignore[attr-defined]
        yield session
    await server.close()


async def get(client, path, user=None, **kw):
    headers = {"X-Test-User": user} if user else {}
    async with client.get(path, headers=headers, allow_redirects=False, **kw) as resp:
        return resp.status, resp.headers, await resp.text()


def assert_escaped(body: str, hostile: str = HOSTILE) -> None:
    assert "<script>alert" not in body and "<img src=x" not in body
    assert hostile not in body
    assert str(markupsafe.escape(hostile)) in body  # shown as text, in full


class Refs(HTMLParser):
    """src/href values of a page, to check that each static file exists."""

    def __init__(self):
        super().__init__()
        self.refs: list[str] = []
        self.meta: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("src", "href"):
            if a.get(key):
                self.refs.append(a[key])
        if tag == "meta" and a.get("name"):
            self.meta[a["name"]] = a.get("content") or ""


def refs_of(body: str) -> Refs:
    parser = Refs()
    parser.feed(body)
    return parser


# ------------------------------------------------------------------ routes


async def test_every_route_declares_a_known_rule(client):
    rules = client.rules
    assert rules[("GET", "/login")] == "public"
    assert rules[("GET", "/static/{path:.+}")] == "public"
    for path in ("/", "/interactions", "/interactions/{call_id}"):
        assert rules[("GET", path)] == EVERY_ROLE
    assert set(rules.values()) <= VALID_RULES


async def test_pages_need_a_user_even_without_the_apps_access_rules(client):
    for path in ("/", "/interactions", "/interactions/1795383229.38"):
        status, headers, _ = await get(client, path)
        assert status == 302 and headers["Location"].startswith("/login?next=/")


async def test_supervisor_is_sent_from_the_desktop_to_the_dashboard(client):
    status, headers, _ = await get(client, "/", "supervisor")
    assert status == 302 and headers["Location"] == "/supervisor"


async def test_support_is_sent_from_the_desktop_to_the_interaction_search(client):
    status, headers, _ = await get(client, "/", "support")
    assert status == 302 and headers["Location"] == "/interactions"
    status, _, body = await get(client, "/interactions", "support")
    assert status == 200 and 'href="/interactions"' in body
    assert 'href="/supervisor"' not in body and ">Desktop<" not in body  # neither supervises nor takes calls


# ------------------------------------------------------------------ login


async def test_login_page_is_public_and_posts_through_login_js(client):
    status, headers, body = await get(client, "/login")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    refs = refs_of(body)
    assert "/static/login.js" in refs.refs and "/static/app.css" in refs.refs
    assert 'id="login-form"' in body and 'data-next="/"' in body
    assert "/static/session.js" not in body  # no logout button without a user


@pytest.mark.parametrize("target, expected", [
    ("/interactions?number=1", "/interactions?number=1"),
    ("//evil.example/x", "/"),
    ("/\\evil.example", "/"),
    ("https://evil.example/", "/"),
    ("javascript:alert(1)", "/"),
    ("", "/"),
])
async def test_login_next_is_a_local_path_only(client, target, expected):
    status, _, body = await get(client, "/login", params={"next": target})
    assert status == 200
    assert f'data-next="{html.escape(expected)}"' in body


async def test_login_page_sends_a_logged_in_user_on(client):
    status, headers, _ = await get(client, "/login", "agent", params={"next": "//evil.example"})
    assert status == 302 and headers["Location"] == "/"


@pytest.mark.parametrize("value, expected", [
    ("/a?b=c", "/a?b=c"), (None, "/"), ("//x", "/"), ("/\\x", "/"), ("x", "/"), ("/a\nb", "/"), ("/" + "a" * 3000, "/"),
])
def test_safe_next(value, expected):
    assert safe_next(value) == expected


# ------------------------------------------------------------------ desktop


async def test_desktop_renders_user_csrf_and_dispositions_escaped(client):
    status, headers, body = await get(client, "/", "hostile")
    assert status == 200
    assert headers["Cache-Control"] == "no-store" and headers["X-Frame-Options"] == "DENY"
    assert_escaped(body)
    refs = refs_of(body)
    assert refs.meta["csrf-token"] == CSRF
    assert "Content-Security-Policy" in body and "script-src 'self'" in body
    assert "/static/agent.js" in refs.refs and "/static/session.js" in refs.refs
    assert '<option value="sale">Sale</option>' in body and '<option value="callback">Callback</option>' in body
    # The create-contact template is data in an attribute: escaped, not broken out of.
    assert 'data-create-contact-url="https://crm.example/new?phone={number}&amp;x=&#34;&gt;&lt;script&gt;' in body
    for element_id in ("status", "status-label", "call-timer", "pops", "wrapup", "outcome-form", "outcome-disposition", "outcome-notes", "outcome-follow-up"):
        assert f'id="{element_id}"' in body


async def test_dispositions_from_the_request_override_the_settings(client):
    app_request_dispositions = {"sold": "Sold it"}

    # The real app may put per-request dispositions on the request; emulate it.
    @web.middleware
    async def override(request, handler):
        request["dispositions"] = app_request_dispositions
        return await handler(request)

    app = web.Application(middlewares=[stand_in_auth, override])
    pages.add_page_routes(app, lambda m, p, h, r: app.router.add_route(m, p, h))
    server = TestServer(app)
    await server.start_server()
    try:
        async with aiohttp.ClientSession(base_url=str(server.make_url("/"))) as session:
            status, _, body = await get(session, "/", "agent")
    finally:
        await server.close()
    assert status == 200 and '<option value="sold">Sold it</option>' in body
    assert 'data-create-contact-url=""' in body  # no settings: no link, and JS asks /api/v1/config/ui


def test_normalize_dispositions_accepts_every_config_shape():
    @dataclass
    class D:
        code: str
        label: str | None

    assert normalize_dispositions(["sale", "wrong_number"]) == [("sale", "Sale"), ("wrong_number", "Wrong number")]
    assert normalize_dispositions([{"code": "a", "label": "A"}, {"code": "b"}]) == [("a", "A"), ("b", "B")]
    assert normalize_dispositions([("a", "A"), ["b", "B"]]) == [("a", "A"), ("b", "B")]
    assert normalize_dispositions({"a": "A"}) == [("a", "A")]
    assert normalize_dispositions([D("a", "A"), D("no-action", None)]) == [("a", "A"), ("no-action", "No action")]
    assert normalize_dispositions([{"label": "no code"}, 42, "", None]) == []
    assert normalize_dispositions(None) == []


# ------------------------------------------------------------------ search and detail


async def test_search_page_renders_filters_and_pager(client):
    status, _, body = await get(client, "/interactions", "agent", params={"number": HOSTILE})
    assert status == 200 and HOSTILE not in body  # the query is read by JS, never echoed by the server
    for name in ("number", "customer", "agent", "since", "until", "disposition", "offset"):
        assert f'name="{name}"' in body
    assert 'id="page-prev"' in body and 'id="page-next"' in body
    assert "/static/search.js" in refs_of(body).refs
    assert_escaped(body)  # the hostile disposition label


async def test_interaction_page_escapes_the_call_id_from_the_address(client):
    status, _, body = await get(client, "/interactions/" + aiohttp.helpers.quote(HOSTILE, safe=""), "supervisor")
    assert status == 200
    assert_escaped(body)
    assert "/static/interaction.js" in refs_of(body).refs
    assert 'id="notes-list"' in body and 'id="note-form"' in body and 'id="outcome-form"' in body


async def test_interaction_page_refuses_an_overlong_call_id(client):
    status, _, _ = await get(client, "/interactions/" + "9" * 129, "agent")
    assert status == 404


async def test_no_template_disables_escaping():
    for path in pages.TEMPLATES_DIR.glob("*.html"):
        source = re.sub(r"\{#.*?#\}", "", path.read_text(), flags=re.S)  # comments may mention |safe
        assert "|safe" not in source.replace(" ", "") and "autoescape false" not in source, path.name
    assert pages.make_environment().autoescape is True


# ------------------------------------------------------------------ static files


async def test_every_static_file_a_page_references_is_served(client):
    seen: set[str] = set()
    for path, user in (("/login", None), ("/", "agent"), ("/interactions", "agent"), ("/interactions/1.2", "agent")):
        _, _, body = await get(client, path, user)
        seen.update(ref for ref in refs_of(body).refs if ref.startswith("/static/"))
    assert {"/static/app.css", "/static/agent.js", "/static/login.js", "/static/search.js", "/static/interaction.js", "/static/session.js"} <= seen
    for ref in sorted(seen):
        assert (pages.STATIC_DIR / ref.removeprefix("/static/")).is_file(), ref
        status, headers, _ = await get(client, ref)
        assert status == 200, ref
        expected = "text/javascript" if ref.endswith(".js") else "text/css"
        assert headers["Content-Type"].startswith(expected) and headers["Cache-Control"] == "no-cache"


IMPORT = re.compile(r"""^\s*(?:import|export)\b[^'"]*?\bfrom\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]""", re.M)


def test_every_module_import_resolves_to_a_static_file():
    """A typo in an import path kills the whole page in the browser; catch it here."""
    for path in pages.STATIC_DIR.glob("*.js"):
        for match in IMPORT.finditer(path.read_text()):
            target = match.group(1) or match.group(2)
            assert target.startswith("./"), f"{path.name}: {target} (no bare or absolute imports without a build step)"
            assert (pages.STATIC_DIR / target[2:]).is_file(), f"{path.name} imports missing {target}"


@pytest.mark.parametrize("path", ["/static/../pages.py", "/static/%2e%2e/pages.py", "/static/..%2fpages.py", "/static/nope.js", "/static/app.css.bak", "/static/"])
async def test_static_serves_nothing_outside_its_folder_or_of_unknown_type(client, path):
    async with client.get(path, allow_redirects=False) as resp:
        assert resp.status == 404, path


def node_check_module(source: str) -> subprocess.CompletedProcess:
    # `node --check file.js` does NOT report syntax errors in a .js file that
    # uses import/export on node 20 (it exits 0); reading the source as
    # --input-type=module from stdin parses it as the browser will.
    return subprocess.run(["node", "--input-type=module", "--check"], input=source, capture_output=True, text=True, timeout=30)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_js_files_parse_as_es_modules():
    assert node_check_module("export const broken = ;\n").returncode != 0  # the check can fail
    files = sorted(pages.STATIC_DIR.glob("*.js"))
    assert files
    for path in files:
        result = node_check_module(path.read_text())
        assert result.returncode == 0, f"{path.name}: {result.stderr}"


UNSAFE_SINKS = re.compile(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|\beval\s*\(|new\s+Function\s*\(|createContextualFragment")


def test_js_never_turns_data_into_markup():
    for path in pages.STATIC_DIR.glob("*.js"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not UNSAFE_SINKS.search(line), f"{path.name}:{number}: {line.strip()}"


# ------------------------------------------------------------------ with the real auth
#
# The contract with agent_ui.auth/access: every page route carries a rule the
# registry accepts (the app refuses to start otherwise), an anonymous browser
# is sent to the login page, the CSRF token in the page is the session's own
# and works for a state-changing call, and roles land on the right page.
# Accounts live in a real SQLite file (screenpop.auth.store).

PW = "s3cret-pass-for-pages"


@pytest.fixture
async def site(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/pages.sqlite3")
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: metadata.create_all(c, tables=[users, sessions]))
    store = AccountStore(engine, lockout=LockoutPolicy(max_failures=5, lock_seconds=300),
                         sessions=SessionPolicy(idle=timedelta(hours=1), absolute=timedelta(hours=8), touch_every=timedelta(seconds=60)),
                         scrypt_n=2**4)
    await store.create_user("ana", PW, "agent", "1001", HOSTILE)  # display name is an attack
    await store.create_user("sam", PW, "supervisor", None, "Sam")
    app = web.Application()
    auth.setup(app, store, AuthSettings())
    pages.add_page_routes(app, lambda m, p, h, r: access.add(app, m, p, h, r),
                          settings=pages.PageSettings(dispositions=["sale", "callback"]))

    async def touch(request):  # a state-changing API call, to prove the page's token works
        return web.json_response({"ok": True})

    access.add(app, "POST", "/api/v1/touch", touch, access.ANY_USER)
    server = TestServer(app)
    await server.start_server()  # runs access.check: a page without a rule would fail here
    yield server
    await server.close()
    await engine.dispose()


def browser_like(server) -> aiohttp.ClientSession:
    # unsafe=True: keep the cookies of an IP-address host (127.0.0.1)
    return aiohttp.ClientSession(base_url=str(server.make_url("/")), cookie_jar=aiohttp.CookieJar(unsafe=True))


HTML = {"Accept": "text/html,application/xhtml+xml"}


async def login(session, username):
    async with session.post("/api/v1/session", json={"username": username, "password": PW}) as resp:
        assert resp.status == 200
        return await resp.json()


def meta_csrf(body: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]*)">', body).group(1)


async def test_auth_anonymous_browser_is_sent_to_login_and_login_assets_are_public(site):
    async with browser_like(site) as s:
        for path in ("/", "/interactions", "/interactions/1.2"):
            async with s.get(path, headers=HTML, allow_redirects=False) as resp:
                assert resp.status == 302 and resp.headers["Location"] == "/login?next=" + path
        for path in ("/login", "/static/login.js", "/static/app.css", "/static/api.js"):
            async with s.get(path) as resp:
                assert resp.status == 200, path


async def test_auth_agent_gets_the_desktop_with_the_sessions_csrf_token(site):
    async with browser_like(site) as s:
        session_json = await login(s, "ana")
        async with s.get("/", headers=HTML, allow_redirects=False) as resp:
            assert resp.status == 200
            body = await resp.text()
        token = meta_csrf(body)
        assert token and token == session_json["csrf_token"]
        assert HOSTILE not in body and str(markupsafe.escape(HOSTILE)) in body  # the display name
        assert 'data-agent-id="1001"' in body
        async with s.post("/api/v1/touch", json={}) as resp:
            assert resp.status == 403  # no token: refused
        async with s.post("/api/v1/touch", json={}, headers={"X-CSRF-Token": token}) as resp:
            assert resp.status == 200
        async with s.delete("/api/v1/session", headers={"X-CSRF-Token": token}) as resp:
            assert resp.status == 204
        async with s.get("/", headers=HTML, allow_redirects=False) as resp:
            assert resp.status == 302 and resp.headers["Location"].startswith("/login")


async def test_auth_supervisor_lands_on_the_dashboard(site):
    async with browser_like(site) as s:
        await login(s, "sam")
        async with s.get("/", headers=HTML, allow_redirects=False) as resp:
            assert resp.status == 302 and resp.headers["Location"] == "/supervisor"
        async with s.get("/interactions", headers=HTML) as resp:
            body = await resp.text()
            assert resp.status == 200 and meta_csrf(body)
            assert 'href="/"' in body and ">Desktop<" not in body  # no desktop link for a supervisor
