"""Every page a user reaches, on a phone: at 360 and 390 px wide nothing is
wider than the window, nothing clickable is off-screen, no two labels are
drawn over each other (tests/browser/layout.py measures it in Chromium).

The pages are filled as a working day fills them (a ringing call during a
wrap-up, a transferred call, long names, a day of calls, a busy queue), by
the stub server and the supervisor stub; a screenshot of each is kept
(var/test-artifacts/browser/)."""
from __future__ import annotations

import contextlib

import pytest

from tests.browser.layout import layout_problems
from tests.browser.stub_server import StubService, User, now, serving
from tests.browser.test_agent_desktop import known_card, pop, wait_status
from tests.browser.test_search_pages import record as interaction
from tests.browser.test_supervisor_pages import SupervisorStub, agent_msg, connected, queue_msg, record as call_record, waiter

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")]

WIDTHS = (360, 390)
LONG_NAME = "Maria de los Angeles Fernandez-Castellanos Ortega"


@contextlib.asynccontextmanager
async def phone(browser, service, width: int):
    async with serving(service):
        context = await browser.new_context(viewport={"width": width, "height": 844}, base_url=service.base_url)
        page = await context.new_page()
        page.script_errors = []
        page.on("pageerror", lambda exc: page.script_errors.append(str(exc)))
        try:
            yield page
        finally:
            await context.close()


async def check(page, shot, name: str) -> None:
    await shot(page, name)
    problems = await layout_problems(page)
    assert problems == [], "\n".join(problems)
    assert page.script_errors == []


def agent_user() -> User:
    return User("maria.fernandez", "agent", "1001", LONG_NAME)


@pytest.mark.parametrize("width", WIDTHS)
async def test_agent_desktop(browser, shot, width):
    stub = StubService(user=agent_user())
    async with phone(browser, stub, width) as page:
        await page.goto("/")
        await page.wait_for_function("() => window.screenpop && window.screenpop.connected", timeout=10000)
        await check(page, shot, f"desk-ready-{width}")
        # A call ends (wrap-up), another rings: transferred to this agent, with a note.
        card = known_card(missing_support=False)
        card["persons"][0]["name"] = LONG_NAME
        await stub.send(pop("1.1", "0034912345679", card))
        await stub.send({"type": "call", "call_id": "1.1", "event": "answered", "agent": "1001", "ts": now()})
        await wait_status(page, "on-call")
        await stub.send({"type": "call", "call_id": "1.1", "event": "ended", "reason": "completed", "ts": now()})
        await wait_status(page, "wrap-up")
        ringing = pop("2.2", "+14155550100", known_card(), queue="support-premium")
        ringing["caller"].update(display="+1 415-555-0100", name="RECEPTION DESK LONG NAME")
        ringing.update(transferred_from="1002", notes=[{"author": "bob", "text": "angry about the invoice", "created_at": now()}])
        await stub.send(ringing)
        await page.wait_for_selector(".pop[data-call-id='2.2'] .pop-transferred-from")
        await wait_status(page, "ringing")
        await check(page, shot, f"desk-ringing-during-wrap-up-{width}")


@pytest.mark.parametrize("width", WIDTHS)
async def test_login(browser, shot, width):
    stub = StubService(user=None)
    async with phone(browser, stub, width) as page:
        await page.goto("/login")
        await page.fill("#login-username", "ana")
        await page.fill("#login-password", "wrong")
        await page.click("#login-submit")
        await page.wait_for_selector("#login-error", state="visible")
        await check(page, shot, f"login-{width}")


@pytest.mark.parametrize("width", WIDTHS)
async def test_interaction_search_and_one_call(browser, shot, width):
    stub = StubService(user=agent_user())
    for i in range(12):
        item = interaction(i, customer_name=LONG_NAME if i % 3 == 0 else f"Customer {i}", disposition="callback" if i % 2 else None,
                           notes=[{"id": 1, "call_id": "x", "author": "bob", "text": "promised a refund before Friday", "created_at": "2026-11-20T10:04:00Z"}])
        stub.interactions[item["call_id"]] = item
    async with phone(browser, stub, width) as page:
        await page.goto("/interactions")
        await page.wait_for_selector("#results-body tr")
        await check(page, shot, f"interactions-{width}")
        call_id = interaction(3)["call_id"]
        await page.goto(f"/interactions/{call_id}")
        await page.wait_for_selector("#interaction-grid", state="visible")
        await check(page, shot, f"interaction-{width}")


def supervisor() -> SupervisorStub:
    return SupervisorStub(user=User("sam.supervisor", "supervisor", None, "Samantha Supervisor-Longname"))


BUSY_QUEUE = dict(waiting=[waiter("w1", 75, 1, LONG_NAME, vip=True), waiter("w2", 12, 2)],
                  alerts=[{"kind": "longest_wait", "message": "a caller has waited 75 s in support (limit 60 s)", "value": 75.0, "threshold": 60.0}])


async def busy_day(stub: SupervisorStub) -> None:
    await stub.push(
        queue_msg("support", **BUSY_QUEUE),
        queue_msg("sales-international", today={"service_level": 0.62}),
        agent_msg("1001", "available", name=LONG_NAME, since=30),
        agent_msg("1002", "on_call", name="Carla Ruiz", since=95,
                  call={"call_id": "c0", "queue": "support", "caller_number": "+34600999888", "customer_name": LONG_NAME, "card": known_card()}),
        agent_msg("1003", "paused", name="Dan", pause_reason="lunch break", queues=("support", "sales-international")),
    )


@pytest.mark.parametrize("width", WIDTHS)
async def test_supervisor_dashboard(browser, shot, width):
    stub = supervisor()
    async with phone(browser, stub, width) as page:
        await page.goto("/supervisor")
        await connected(page, stub)
        await busy_day(stub)
        await page.wait_for_function("() => document.querySelectorAll('#agents-body tr').length === 3 && document.querySelectorAll('#alerts .alert').length === 1")
        await check(page, shot, f"supervisor-{width}")


@pytest.mark.parametrize("width", WIDTHS)
async def test_supervisor_queue_page(browser, shot, width):
    stub = supervisor()
    stub.queues["support"] = queue_msg("support", **BUSY_QUEUE)
    stub.calls_today["queue:support"] = [call_record("c9", customer_name=LONG_NAME, disposition="sale"),
                                         call_record("c8", answered_by=None, end_reason="abandoned", talk_seconds=None)]
    async with phone(browser, stub, width) as page:
        await page.goto("/supervisor/queues/support")
        await connected(page, stub)
        await busy_day(stub)
        await page.wait_for_selector("#waiting-body tr[data-call-id='w1']")
        await page.wait_for_selector("#calls-body tr[data-call-id='c9']")
        await check(page, shot, f"supervisor-queue-{width}")


@pytest.mark.parametrize("width", WIDTHS)
async def test_supervisor_agent_page(browser, shot, width):
    stub = supervisor()
    on_call = agent_msg("1002", "on_call", name=LONG_NAME, since=65,
                        call={"call_id": "c0", "queue": "support", "caller_number": "+34 912 34 56 78", "customer_name": LONG_NAME, "card": known_card()})
    stub.agents_rest["1002"] = on_call
    stub.calls_today["agent:1002"] = [call_record("c7", disposition="callback", customer_name=LONG_NAME,
                                                  notes=[{"author": "carla", "text": "call back tomorrow morning", "created_at": now()}])]
    async with phone(browser, stub, width) as page:
        await page.goto("/supervisor/agents/1002")
        await connected(page, stub)
        await page.wait_for_selector("#calls-body tr[data-call-id='c7']")
        await stub.push(on_call)
        await page.wait_for_selector("#current-card .customer-name")
        await check(page, shot, f"supervisor-agent-{width}")
