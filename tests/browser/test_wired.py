"""The agent desktop on the whole service, nothing stubbed: the PBX
simulator speaks AMI over TCP to the service (tracker, orchestrator, lookup
on seeded demo databases, interaction log, web app, WebSocket hub), and a
real chromium logs in as agent 1001 through the login page.

The caller ID name sent by the PBX is an attack; it travels AMI → tracker →
orchestrator → WebSocket → DOM and must arrive as text.  The call goes
ringing → on call → wrap-up; the outcome form saves into the interaction
log, and the search and detail pages then show it.
"""
from __future__ import annotations

import asyncio

import pytest

from tests.stack import Stack

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")]

ANA = "+34912345678"  # demo persona in all three systems: balance 125.40 EUR, an open ticket
HOSTILE_CALLER_NAME = '<img src=x onerror="window.__xss=1">Ana'

# Every status the bar shows, in order, recorded in the page itself: some
# last only a moment, and polling from the test could miss them.
RECORD_STATUSES = """
window.__statuses = [];
document.addEventListener('DOMContentLoaded', () => {
  const bar = document.getElementById('status');
  if (!bar) return;
  window.__statuses.push(bar.dataset.status);
  new MutationObserver(() => {
    const s = bar.dataset.status;
    if (window.__statuses[window.__statuses.length - 1] !== s) window.__statuses.push(s);
  }).observe(bar, { attributes: true, attributeFilter: ['data-status'] });
});
"""


@pytest.fixture
async def stack(demo_dbs, tmp_path):
    async with Stack(demo_dbs, tmp_path, simulator_seed=7) as stack:
        yield stack


async def test_agent_takes_a_real_call_and_records_its_outcome(browser, stack, shot):
    context = await browser.new_context(viewport={"width": 1366, "height": 768}, base_url=stack.url)
    await context.add_init_script(RECORD_STATUSES)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        # -- log in through the page; the desktop is where it sends us
        await page.goto("/")
        assert "/login?next=" in page.url
        await page.fill("#login-username", "agent1001")
        await page.fill("#login-password", "demo")
        await page.click("#login-submit")
        await page.wait_for_function("() => window.screenpop && window.screenpop.connected", timeout=10000)
        assert await page.evaluate("window.screenpop.status") == "ready"

        # -- the PBX rings 1001 from the support queue
        call = asyncio.create_task(stack.simulator.place_call(
            "queue_answered", ANA, HOSTILE_CALLER_NAME, queue="support", agents=["1001"], answer_after=2.0, talk_seconds=2.0, speed=1))
        await page.wait_for_selector(".pop .customer-name", timeout=10000)
        assert await page.text_content(".pop .pop-caller-name") == HOSTILE_CALLER_NAME
        assert await page.text_content(".pop .customer-name") == "Ana Garcia"
        assert "125.40" in await page.text_content(".pop .balance")
        assert await page.locator(".pop .tickets li").count() >= 1
        assert await page.evaluate("document.querySelectorAll('img').length") == 0
        await shot(page, "0-pop")

        await page.wait_for_function("() => window.screenpop.status === 'wrap-up'", timeout=15000)
        call_id = await call
        await shot(page, "1-wrap-up")
        assert await page.evaluate("window.__statuses") == ["ready", "ringing", "on-call", "wrap-up"]

        # -- the outcome goes into the call's record
        await page.select_option("#outcome-disposition", "resolved")
        await page.fill("#outcome-notes", "Router replaced <b>today</b>")
        await page.fill("#outcome-follow-up", "2026-12-01")
        await page.click("#outcome-submit")
        await page.wait_for_function("() => window.screenpop.status === 'ready'", timeout=5000)
        record = await stack.service.interactions.store.get(call_id)
        assert record.disposition == "resolved" and str(record.follow_up) == "2026-12-01" and record.outcome_by == "agent1001"
        assert [n.text for n in record.notes] == ["Router replaced <b>today</b>"]

        # -- and support staff find it later
        await page.goto("/interactions?number=912345678")
        row = page.locator(f"#results-body tr[data-call-id='{call_id}']")
        await row.wait_for(timeout=5000)
        assert await row.locator(".disposition").text_content() == "Resolved"
        await row.locator("a.call-link").click()
        await page.wait_for_selector("#interaction-grid", state="visible")
        assert await page.text_content("#current-disposition") == "Resolved"
        assert await page.locator("#notes-list .note-text").first.text_content() == "Router replaced <b>today</b>"
        await shot(page, "2-detail")
        assert await page.evaluate("window.__xss") is None
        assert errors == []
    finally:
        await context.close()
