"""Support staff and agents in a real chromium, on the whole service
(tests.stack: the demo's logins, a real interaction log): support logs in
through the login page and lands on the interaction search, without the
supervisor's or the agent's links, finds a call and records its outcome;
an agent the call was not offered to neither finds it nor opens its page."""
from __future__ import annotations

import pytest

from telephony.events import CallAnswered, CallEnded, CallQueued, CallRinging
from tests.browser.conftest import browser  # noqa: F401  (the fixture: Debian's chromium)
from tests.stack import Stack

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")]

CALL = "1795383300.77"
TS = "2026-11-23T10:00:00.000000Z"


@pytest.fixture
async def stack(demo_dbs, tmp_path):
    async with Stack(demo_dbs, tmp_path, simulator_seed=7) as stack:
        writer = stack.service.interactions.writer
        for event in (CallQueued(CALL, TS, "support", "+34912345678", "Ana", 1),
                      CallRinging(CALL, TS, "1001", "support", "+34912345678", "Ana"),
                      CallAnswered(CALL, TS, "1001", "support", 3.0), CallEnded(CALL, TS, "1001", "completed", 60.0)):
            writer.submit(event)
        assert await writer.flush()
        yield stack


async def log_in(browser, stack, username: str):  # noqa: F811
    context = await browser.new_context(viewport={"width": 1366, "height": 768}, base_url=stack.url)
    page = await context.new_page()
    await page.goto("/")
    await page.fill("#login-username", username)
    await page.fill("#login-password", "demo")
    await page.click("#login-submit")
    return context, page


async def test_support_lands_on_the_search_and_records_an_outcome(browser, stack):  # noqa: F811
    context, page = await log_in(browser, stack, "support")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        await page.wait_for_url("**/interactions", timeout=10000)
        links = await page.eval_on_selector_all("nav.nav a", "links => links.map(a => a.getAttribute('href'))")
        assert links == ["/interactions"]  # no /supervisor, no desktop
        row = page.locator(f"#results-body tr[data-call-id='{CALL}']")
        await row.wait_for(timeout=5000)
        await row.locator("a.call-link").click()
        await page.wait_for_selector("#interaction-grid", state="visible")
        await page.select_option("#outcome-disposition", "callback")
        await page.fill("#outcome-notes", "customer asks for a call back")
        await page.click("#outcome-submit")
        await page.wait_for_selector("#outcome-saved", state="visible", timeout=5000)
        record = await stack.service.interactions.store.get(CALL)
        assert record.disposition == "callback" and record.outcome_by == "support"
        response = await page.goto("/supervisor")
        assert response.status == 403
        assert errors == []
    finally:
        await context.close()


async def test_an_agent_not_offered_the_call_neither_finds_nor_opens_it(browser, stack):  # noqa: F811
    context, page = await log_in(browser, stack, "agent1002")
    try:
        await page.wait_for_function("() => window.screenpop && window.screenpop.connected", timeout=10000)
        await page.goto("/interactions")
        await page.wait_for_function("() => /\\b0\\b|no call/i.test(document.getElementById('search-status').textContent)", timeout=5000)
        assert await page.locator("#results-body tr").count() == 0
        response = await page.goto(f"/interactions/{CALL}")
        assert response.status == 404
    finally:
        await context.close()
