"""The supervisor dashboard, its drill-downs and the wallboard in a real
browser, fed a scripted supervisor feed (tests/browser/stub_server.py plus
the supervisor's REST answers).

What a supervisor must be able to trust: queue and agent names that are
attacks show as text and run nothing; numbers change in place as messages
arrive (no reload, no polling of the API); waits and times in state count
up between messages; an alert shows and colours its queue; the service
level moves; a drill-down shows the agent's call with the customer card
and today's calls with their outcomes.  The wallboard says what is wrong
when its token is missing or refused, and is readable at 1920×1080.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp import web

from agent_ui import supervisor_pages
from tests.browser.stub_server import StubService, User, now, serving
from tests.browser.test_agent_desktop import known_card

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")]

HOSTILE_QUEUE = '<img src=x onerror="window.__xss=1">sales&<b>vip</b>'
HOSTILE_AGENT = '<script>window.__xss=2</script>Bob \u202eMallory'
HOSTILE_CUSTOMER = '<img src=y onerror="window.__xss=3">Carla'
WALL_TOKEN = "wall-token-0123456789"
FULL_HD = {"width": 1920, "height": 1080}


def ago(seconds: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def queue_msg(name: str, *, waiting=(), agents=None, today=None, alerts=(), thresholds=None) -> dict[str, Any]:
    msg = {
        "type": "queue", "queue": name, "waiting": list(waiting),
        "longest_wait_seconds": None,
        "agents": {"logged_in": 3, "available": 1, "ringing": 0, "on_call": 1, "wrap_up": 0, "paused": 1, "unavailable": 0, **(agents or {})},
        "today": {"offered": 10, "answered": 9, "abandoned": 1, "avg_wait_seconds": 12.5, "avg_talk_seconds": 185.0,
                  "service_level": 0.9, "sl_threshold_seconds": 20.0, **(today or {})},
        "alerts": list(alerts), "updated_at": now(),
    }
    if thresholds is not None:
        msg["thresholds"] = thresholds
    return msg


def waiter(call_id: str, seconds: float, position: int, name: str | None = None, vip: bool = False) -> dict[str, Any]:
    return {"call_id": call_id, "caller_number": f"+3460000{position:04d}", "customer_name": name, "vip": vip, "since": ago(seconds), "position": position}


def agent_msg(agent_id: str, state: str, *, name: str | None = None, since: float = 5, queues=("support",), call=None,
              answered: int = 3, pause_reason: str | None = None) -> dict[str, Any]:
    return {"type": "agent", "agent_id": agent_id, "name": name, "state": state, "pause_reason": pause_reason, "since": ago(since),
            "queues": list(queues), "call": call, "today": {"answered": answered, "talk_seconds": 600.0}, "updated_at": now()}


def record(call_id: str, **over) -> dict[str, Any]:
    base = {"call_id": call_id, "caller_number": "+34 600 000 001", "customer_name": "Ana Garcia", "queue": "support",
            "answered_by": "1002", "queued_at": ago(600), "answered_at": ago(590), "ended_at": ago(400), "wait_seconds": 10.0,
            "talk_seconds": 190.0, "end_reason": "completed", "disposition": None, "notes": [], "follow_up": None}
    base.update(over)
    return base


@dataclass
class SupervisorStub(StubService):
    """The stub service as a supervisor sees it: the pages, the feed (the
    test sends every frame) and canned REST answers for the drill-downs
    and the wallboard, every request recorded."""

    user: User | None = field(default_factory=lambda: User("sam", "supervisor", None, "Sam Supervisor"))
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)  # what the REST API and the wallboard answer
    agents_rest: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls_today: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # "queue:NAME" / "agent:ID"

    def app(self) -> web.Application:
        app = super().app()
        supervisor_pages.add_supervisor_routes(app, lambda method, path, handler, rule: app.router.add_route(method, path, handler))
        app.router.add_get("/api/v1/queues/{queue}", self.one_queue)
        app.router.add_get("/api/v1/agents/{agent_id}", self.one_agent)
        app.router.add_get("/api/v1/wallboard", self.wallboard)
        return app

    async def one_queue(self, request: web.Request) -> web.Response:
        name = request.match_info["queue"]
        if name not in self.queues:
            return web.json_response({"error": "no such queue"}, status=404)
        return web.json_response({**self.queues[name], "calls_today": self.calls_today.get(f"queue:{name}", [])})

    async def one_agent(self, request: web.Request) -> web.Response:
        agent_id = request.match_info["agent_id"]
        if agent_id not in self.agents_rest:
            return web.json_response({"error": "no such agent"}, status=404)
        return web.json_response({**self.agents_rest[agent_id], "calls_today": self.calls_today.get(f"agent:{agent_id}", [])})

    async def wallboard(self, request: web.Request) -> web.Response:
        if request.query.get("token") != WALL_TOKEN:
            return web.json_response({"error": "a valid wallboard token is required"}, status=401)
        return web.json_response({"queues": list(self.queues.values())})

    async def push(self, *messages: dict[str, Any]) -> None:
        for message in messages:
            if message["type"] == "queue":
                self.queues[message["queue"]] = message
            await self.send(message)


@pytest.fixture
async def stub():
    async with serving(SupervisorStub()) as service:
        yield service


async def connected(page, stub, sockets: int = 1) -> None:
    await page.wait_for_function("() => window.screenpop && window.screenpop.connected", timeout=10000)
    for _ in range(100):
        if len(stub.sockets) >= sockets:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the page did not open its socket")


async def no_xss(page) -> None:
    assert await page.evaluate("window.__xss") is None
    assert await page.evaluate("document.querySelectorAll('main img, main script').length") == 0
    shown = await page.inner_text("main")
    assert "null" not in shown and "undefined" not in shown and "NaN" not in shown and "[object" not in shown


def secs(shown: str) -> int:
    """'1:05' -> 65 (a ticking time as the page shows it)."""
    parts = [int(p) for p in shown.split(":")]
    return sum(v * 60 ** i for i, v in enumerate(reversed(parts)))


def api_calls(stub, path: str) -> int:
    return len(stub.recorded("GET", path))


# ------------------------------------------------------------------ the dashboard


async def test_dashboard_follows_the_feed_live(page, stub, shot):
    await page.goto("/supervisor")
    await connected(page, stub)
    await page.evaluate("window.__sameDocument = true")  # gone if the page ever reloads
    assert await page.text_content("#live-state") == "Live"

    # -- the replay: two queues (one named as an attack) and three agents
    await stub.push(
        queue_msg("support", waiting=[waiter("c1", 12, 1, "Ana Garcia", vip=True)]),
        queue_msg(HOSTILE_QUEUE, waiting=[waiter("c2", 3, 1, HOSTILE_CUSTOMER)], today={"service_level": None, "offered": 0, "answered": 0, "abandoned": 0}),
        agent_msg("1001", "available", name=HOSTILE_AGENT, since=30),
        agent_msg("1002", "on_call", name="Carla Ruiz", since=95, call={"call_id": "c0", "queue": "support", "caller_number": "+34600999888", "customer_name": HOSTILE_CUSTOMER, "card": None}),
        agent_msg("1003", "paused", name="Dan", pause_reason="lunch <b>break</b>", queues=("support", HOSTILE_QUEUE)),
    )
    tiles = page.locator(".queue-tile")
    await page.wait_for_function("() => document.querySelectorAll('.queue-tile').length === 2 && document.querySelectorAll('#agents-body tr').length === 3")
    evil_tile = page.locator(".queue-tile").filter(has_text="sales&")
    assert await evil_tile.locator(".queue-name-text").text_content() == HOSTILE_QUEUE
    href = await evil_tile.locator("a.queue-name").get_attribute("href")
    assert href.startswith("/supervisor/queues/%3Cimg%20src%3Dx") and "<" not in href
    assert await page.locator("#agents-body tr[data-agent-id='1001'] .agent-name").text_content() == HOSTILE_AGENT
    assert await page.locator("#agents-body tr[data-agent-id='1002'] .call-customer").text_content() == HOSTILE_CUSTOMER
    assert "lunch <b>break</b>" in await page.locator("#agents-body tr[data-agent-id='1003'] .state-badge").text_content()
    await no_xss(page)

    support = tiles.and_(page.locator("[data-queue='support']"))
    assert await support.locator(".waiting-count").text_content() == "1"
    assert await support.locator(".sl-value").text_content() == "90%"
    assert await support.locator(".today-answered").text_content() == "9"
    assert await support.get_attribute("data-level") == "green"
    assert (await page.locator("#agents-summary").text_content()) == "1 available · 1 on call · 1 paused"

    # -- the longest wait and the time in state count up with no message
    first = await support.locator(".longest-wait").text_content()
    in_state = await page.locator("#agents-body tr[data-agent-id='1002'] .in-state").text_content()
    assert 12 <= secs(first) <= 15 and 95 <= secs(in_state) <= 98
    await page.wait_for_function("t => document.querySelector(\".queue-tile[data-queue='support'] .longest-wait\").textContent !== t", arg=first, timeout=3000)
    await shot(page, "0-replay")

    # -- callers queue up past the limit: the server raises an alert
    received = await page.evaluate("window.screenpop.received")
    await stub.push(queue_msg("support", waiting=[waiter("c1", 70, 1, "Ana Garcia", vip=True), waiter("c3", 20, 2), waiter("c4", 2, 3)],
                              agents={"available": 0, "on_call": 2},
                              alerts=[{"kind": "longest_wait", "message": "a caller has waited 70 s in support (limit 60 s)", "value": 70.0, "threshold": 60.0}]))
    await page.wait_for_function("() => document.querySelector(\".queue-tile[data-queue='support'] .waiting-count\").textContent === '3'")
    assert await page.evaluate("window.screenpop.received") == received + 1
    assert await support.get_attribute("data-level") == "red"
    assert await support.locator(".longest-wait").get_attribute("data-level") == "red"
    assert await page.locator("#alerts .alert").count() == 1
    assert "waited 70 s in support" in await page.locator("#alerts .alert").text_content()
    assert await page.is_visible("#alerts .alert")
    assert await support.locator(".count-available .count-value").text_content() == "0"
    assert (await page.title()).startswith("(1) ")
    await shot(page, "1-alert")

    # -- the queue drains: the alert goes, the learnt threshold (60 s) still colours an amber wait
    await stub.push(queue_msg("support", waiting=[waiter("c3", 50, 1)]))
    await page.wait_for_function("() => document.querySelector(\".queue-tile[data-queue='support'] .waiting-count\").textContent === '1'")
    assert await page.locator("#alerts .alert").count() == 0
    assert await support.locator(".longest-wait").get_attribute("data-level") == "amber"
    assert await support.get_attribute("data-level") == "amber"
    await stub.push(queue_msg("support", waiting=[]))
    await page.wait_for_function("() => document.querySelector(\".queue-tile[data-queue='support'] .waiting-count\").textContent === '0'")
    assert await support.locator(".longest-wait").text_content() == "–"

    # -- the service level drops below target
    await stub.push(queue_msg("support", today={"service_level": 0.75, "answered": 12, "offered": 16},
                              alerts=[{"kind": "service_level", "message": "service level in support is 75% (target 80%)", "value": 0.75, "threshold": 0.8}]))
    await page.wait_for_function("() => document.querySelector(\".queue-tile[data-queue='support'] .sl-value\").textContent === '75%'")
    assert await support.locator(".stat-sl").get_attribute("data-level") == "red"
    assert await support.locator(".today-answered").text_content() == "12"
    # ... and recovers to just above it: amber, from the threshold the alert taught
    await stub.push(queue_msg("support", today={"service_level": 0.82}))
    await page.wait_for_function("() => document.querySelector(\".queue-tile[data-queue='support'] .sl-value\").textContent === '82%'")
    assert await support.locator(".stat-sl").get_attribute("data-level") == "amber"

    # -- agents change state in place
    await stub.push(agent_msg("1001", "ringing", name=HOSTILE_AGENT, since=0))
    await page.wait_for_function("() => document.querySelector(\"#agents-body tr[data-agent-id='1001']\").dataset.state === 'ringing'")
    assert await page.locator("#agents-body tr[data-agent-id='1001'] .state-badge").text_content() == "Ringing"
    assert secs(await page.locator("#agents-body tr[data-agent-id='1001'] .in-state").text_content()) <= 2
    assert [await r.get_attribute("data-agent-id") for r in await page.locator("#agents-body tr").all()] == ["1001", "1002", "1003"]

    assert await page.evaluate("window.__sameDocument") is True
    assert api_calls(stub, "/api/v1/queues") == 0 and api_calls(stub, "/api/v1/agents") == 0  # pushed, never polled
    await no_xss(page)
    await shot(page, "2-live")
    assert page.script_errors == []


async def test_dashboard_says_when_it_is_not_live_and_drops_what_the_replay_forgets(page, stub):
    await page.goto("/supervisor")
    await connected(page, stub)
    await stub.push(queue_msg("support"), queue_msg("old"), agent_msg("1001", "available"), agent_msg("1009", "available"))
    await page.wait_for_function("() => document.querySelectorAll('.queue-tile').length === 2")

    for ws in list(stub.sockets):
        await ws.close()
    await page.wait_for_selector("#conn-banner:not([hidden])", timeout=5000)
    assert await page.get_attribute("#live-state", "data-live") == "lost"
    assert "frozen" in await page.text_content("#conn-banner")

    # the reconnect's replay no longer has 'old' nor agent 1009: they go
    await page.wait_for_function("() => window.screenpop.hellos === 2", timeout=10000)
    await stub.push(queue_msg("support"), agent_msg("1001", "available"))
    assert await page.is_hidden("#conn-banner")
    await page.wait_for_function("() => document.querySelectorAll('.queue-tile').length === 1", timeout=8000)
    assert await page.locator("#agents-body tr").count() == 1

    # the server loses the PBX: it says so in its messages, the page says it louder
    await stub.push({**queue_msg("support"), "link_up": False})
    await page.wait_for_selector("#pbx-banner:not([hidden])")
    assert "PBX link is down" in await page.text_content("#pbx-banner")
    assert await page.get_attribute(".queue-tile[data-queue='support']", "data-link") == "down"
    await stub.push({**queue_msg("support"), "link_up": True})
    await page.wait_for_selector("#pbx-banner", state="hidden")
    assert await page.evaluate("window.screenpop.pbxDown") is False
    assert page.script_errors == []


# ------------------------------------------------------------------ drill-downs


async def test_queue_page_shows_who_waits_its_agents_and_todays_calls(page, stub, shot):
    stub.queues["support"] = queue_msg("support")
    stub.calls_today["queue:support"] = [record("c9", customer_name=HOSTILE_CUSTOMER, disposition="sale"), record("c8", answered_by=None, end_reason="abandoned", talk_seconds=None)]
    await page.goto("/supervisor")
    await connected(page, stub)
    await stub.push(queue_msg("support"))
    await page.click(".queue-tile[data-queue='support'] a.queue-name")
    await page.wait_for_url("**/supervisor/queues/support")
    await connected(page, stub)
    await page.wait_for_selector("#calls-body tr[data-call-id='c9']")
    assert await page.locator("#calls-body tr[data-call-id='c9'] .customer-name").text_content() == HOSTILE_CUSTOMER
    assert await page.locator("#calls-body tr[data-call-id='c9'] .disposition").text_content() == "Sale"
    assert await page.locator("#calls-body tr[data-call-id='c9'] a.call-link").get_attribute("href") == "/interactions/c9"
    assert await page.locator("#calls-body tr[data-call-id='c8'] .end-reason").text_content() == "abandoned"

    loads = await page.evaluate("window.screenpop.callsLoaded")
    await stub.push(
        queue_msg("support", waiting=[waiter("w1", 40, 1, HOSTILE_CUSTOMER, vip=True), waiter("w2", 5, 2)], today={"offered": 12}),
        agent_msg("1001", "on_call", name="Ana", call={"call_id": "x", "queue": "support", "caller_number": "+34600", "customer_name": "Someone", "card": None}),
        agent_msg("1002", "available", name="Other queue", queues=("sales",)),
    )
    await page.wait_for_selector("#waiting-body tr[data-call-id='w1']")
    assert await page.locator("#waiting-body tr").count() == 2
    assert await page.locator("#waiting-body tr[data-call-id='w1'] .customer-name").text_content() == HOSTILE_CUSTOMER
    assert await page.is_visible("#waiting-body tr[data-call-id='w1'] .badge-vip")
    assert 40 <= secs(await page.locator("#waiting-body tr[data-call-id='w1'] .waited").text_content()) <= 43
    assert await page.locator("#agents-body tr").count() == 1  # 1002 serves another queue
    assert await page.text_content("#waiting-count") == "(2)"
    # the counters moved: today's calls are read again (once, not polled)
    await page.wait_for_function("n => window.screenpop.callsLoaded > n", arg=loads, timeout=5000)
    await no_xss(page)
    await shot(page, "queue")
    assert page.script_errors == []


async def test_agent_page_shows_the_call_with_its_card_and_todays_outcomes(page, stub, shot):
    card = known_card()
    on_call = agent_msg("1002", "on_call", name="Carla Ruiz", since=65,
                        call={"call_id": "1795383229.38", "queue": "support", "caller_number": "+34 912 34 56 78", "customer_name": HOSTILE_CUSTOMER, "card": card})
    stub.agents_rest["1002"] = on_call
    stub.calls_today["agent:1002"] = [record("c7", disposition="callback", notes=[{"author": "carla", "text": "call back <b>tomorrow</b>", "created_at": ago(300)}])]
    await page.goto("/supervisor/agents/1002")
    await connected(page, stub)
    await page.wait_for_selector("#calls-body tr[data-call-id='c7']")
    assert await page.locator("#calls-body tr[data-call-id='c7'] .disposition").text_content() == "Call back"
    assert await page.locator("#calls-body tr[data-call-id='c7'] .notes").text_content() == "call back <b>tomorrow</b>"
    assert await page.locator("#calls-body tr[data-call-id='c7'] a.call-link").get_attribute("href") == "/interactions/c7"

    await stub.push(on_call)
    await page.wait_for_selector("#current-card .customer-name")
    assert await page.get_attribute("#agent-status", "data-state") == "on_call"
    assert await page.text_content("#agent-state") == "On call"
    assert 65 <= secs(await page.text_content("#agent-since")) <= 68
    assert await page.text_content("#current-card .customer-name") == known_card()["persons"][0]["name"]  # the desktop's card, hostile name as text
    assert "240.00" in await page.text_content("#current-card .overdue")
    assert await page.text_content("#current-head .current-customer") == HOSTILE_CUSTOMER
    assert await page.text_content("#agent-answered") == "3"
    await no_xss(page)
    await shot(page, "on-call")

    # the call ends: wrap-up, no current call, today's list read again
    loads = await page.evaluate("window.screenpop.callsLoaded")
    stub.calls_today["agent:1002"].insert(0, record("1795383229.38", disposition="sale"))
    await stub.push(agent_msg("1002", "wrap_up", name="Carla Ruiz", since=0, answered=4))
    await page.wait_for_function("() => document.getElementById('agent-status').dataset.state === 'wrap_up'")
    assert await page.is_visible("#current-none") and await page.is_hidden("#current-box")
    assert await page.text_content("#agent-answered") == "4"
    await page.wait_for_function("n => window.screenpop.callsLoaded > n", arg=loads, timeout=5000)
    await page.wait_for_selector("#calls-body tr[data-call-id='1795383229.38']")
    assert page.script_errors == []


async def test_unknown_agent_says_so_until_the_feed_brings_it(page, stub):
    await page.goto("/supervisor/agents/9999")
    await connected(page, stub)
    await page.wait_for_function("() => document.getElementById('calls-status').textContent.includes('No such agent')")
    assert await page.is_visible("#current-none")
    # the agent logs in (the server knows it from now on): the page asks again
    stub.agents_rest["9999"] = agent_msg("9999", "available", name="New Hire", queues=())
    await stub.push(stub.agents_rest["9999"])
    await page.wait_for_function("() => document.getElementById('calls-status').textContent === 'No calls today yet.'")
    assert await page.text_content("#agent-state") == "Available"
    assert await page.text_content("#agent-queues") == "none"
    assert page.script_errors == []


# ------------------------------------------------------------------ wallboard


@pytest.fixture
async def tv(browser, stub):
    context = await browser.new_context(viewport=FULL_HD, base_url=stub.base_url)
    page = await context.new_page()
    page.script_errors = []
    page.on("pageerror", lambda exc: page.script_errors.append(str(exc)))
    yield page
    await context.close()


async def test_wallboard_without_or_with_a_wrong_token_says_so(tv, stub, shot):
    await tv.goto("/wallboard")
    await tv.wait_for_selector("#wb-message:not([hidden])")
    assert "needs its token" in await tv.text_content("#wb-message")
    assert api_calls(stub, "/api/v1/wallboard") == 0
    await shot(tv, "no-token")

    await tv.goto("/wallboard?token=wrong")
    await tv.wait_for_function("() => window.screenpop.state === 'refused'")
    assert "token refused" in await tv.text_content("#wb-message")
    assert float(await tv.evaluate("parseFloat(getComputedStyle(document.querySelector('.wb-message-title')).fontSize)")) >= 60
    await shot(tv, "refused")
    assert tv.script_errors == []


async def test_wallboard_big_numbers_colours_and_auto_refresh(tv, stub, shot):
    stub.queues = {
        "sales": queue_msg("sales", waiting=[waiter("a", 10, 1)], today={"service_level": 0.95}),
        "support": queue_msg("support", waiting=[waiter("b", 75, 1), waiter("c", 30, 2)], today={"service_level": 0.7},
                             alerts=[{"kind": "longest_wait", "message": "a caller has waited 75 s in support (limit 60 s)", "value": 75, "threshold": 60},
                                     {"kind": "service_level", "message": "service level in support is 70% (target 80%)", "value": 0.7, "threshold": 0.8}]),
        "billing": queue_msg("billing", waiting=[waiter("d", 50, 1)], today={"service_level": 0.83}, thresholds={"longest_wait_seconds": 60, "service_level": 0.8}),
        HOSTILE_QUEUE: queue_msg(HOSTILE_QUEUE, today={"service_level": None}),
    }
    await tv.goto(f"/wallboard?token={WALL_TOKEN}")
    await tv.wait_for_function("() => document.querySelectorAll('.wb-tile').length === 4")
    assert await tv.is_hidden("#wb-message")
    tile = lambda name: tv.locator(f".wb-tile[data-queue='{name}']")  # noqa: E731
    assert await tile("support").get_attribute("data-level") == "red"
    assert await tile("sales").get_attribute("data-level") == "green"
    assert await tile("billing").get_attribute("data-level") == "amber"  # wait 50 s of 60, SL 83% of 80%
    assert await tv.locator(".wb-tile").filter(has_text="sales&").locator(".wb-name-text").text_content() == HOSTILE_QUEUE
    assert await tile("support").locator(".wb-waiting .wb-value").text_content() == "2"
    assert await tile("support").locator(".wb-sl .wb-value").text_content() == "70%"
    assert "waited 75 s" in await tile("support").locator(".wb-alerts").text_content()
    await no_xss(tv)

    # readable across a room: big numbers, everything on one 1920×1080 screen
    await shot(tv, "4-queues")
    size = await tv.evaluate("Math.min(...[...document.querySelectorAll('.wb-value')].map((n) => parseFloat(getComputedStyle(n).fontSize)))")
    assert size >= 75, size  # ~4.5 cm digits on a 55-inch TV
    label = await tv.evaluate("Math.min(...[...document.querySelectorAll('.wb-label')].map((n) => parseFloat(getComputedStyle(n).fontSize)))")
    assert label >= 24, label
    fits = await tv.evaluate("document.documentElement.scrollHeight <= innerHeight && document.documentElement.scrollWidth <= innerWidth")
    assert fits
    clipped = await tv.evaluate("""[...document.querySelectorAll('.wb-value')].filter((n) => {
      const box = n.getBoundingClientRect(), tile = n.closest('.wb-tile').getBoundingClientRect();
      return n.scrollWidth > n.clientWidth + 1 || box.bottom > tile.bottom || box.right > tile.right;
    }).map((n) => [n.closest('.wb-tile').dataset.queue, n.textContent, n.scrollWidth, n.clientWidth])""")
    assert clipped == [], clipped

    # the longest wait ticks between polls; new figures arrive within a poll or two
    first = await tile("sales").locator(".wb-longest").text_content()
    await tv.wait_for_function("t => document.querySelector(\".wb-tile[data-queue='sales'] .wb-longest\").textContent !== t", arg=first, timeout=3000)
    stub.queues["sales"] = queue_msg("sales", waiting=[waiter("a", 10, 1), waiter("e", 1, 2), waiter("f", 0, 3)], today={"service_level": 0.95})
    await tv.wait_for_function("() => document.querySelector(\".wb-tile[data-queue='sales'] .wb-waiting .wb-value\").textContent === '3'", timeout=6000)

    # the server lost the PBX: the board says its numbers are the last known ones
    stub.queues["sales"] = {**stub.queues["sales"], "link_up": False}
    await tv.wait_for_selector("#wb-stale:not([hidden])", timeout=6000)
    assert "PBX link down" in await tv.text_content("#wb-stale")

    # no queues at all
    stub.queues = {}
    await tv.wait_for_function("() => document.querySelectorAll('.wb-tile').length === 0", timeout=6000)
    assert "No queues" in await tv.text_content("#wb-message")
    assert tv.script_errors == []


@pytest.mark.parametrize("count", [1, 9])
async def test_wallboard_fits_one_screen_whatever_the_number_of_queues(tv, stub, shot, count):
    stub.queues = {f"queue-{i}": queue_msg(f"queue-{i}", waiting=[waiter(f"w{i}", 600 + i, 1)], today={"service_level": 1.0})
                   for i in range(count)}
    await tv.goto(f"/wallboard?token={WALL_TOKEN}")
    await tv.wait_for_function("n => document.querySelectorAll('.wb-tile').length === n", arg=count)
    await shot(tv, f"{count}-queues")
    assert await tv.evaluate("document.documentElement.scrollHeight <= innerHeight && document.documentElement.scrollWidth <= innerWidth")
    clipped = await tv.evaluate("""[...document.querySelectorAll('.wb-value, .wb-label, .wb-minor')].filter((n) => {
      const box = n.getBoundingClientRect(), tile = n.closest('.wb-tile').getBoundingClientRect();
      return n.scrollWidth > n.clientWidth + 1 || box.bottom > tile.bottom + 1 || box.right > tile.right + 1;
    }).map((n) => n.className + ': ' + n.textContent)""")
    assert clipped == []
    size = await tv.evaluate("Math.min(...[...document.querySelectorAll('.wb-value')].map((n) => parseFloat(getComputedStyle(n).fontSize)))")
    assert size >= (45 if count > 6 else 120), size
    assert tv.script_errors == []
