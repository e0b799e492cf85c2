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
from dataclasses import replace

import pytest

from adapters.demo import demo_sources, seed_demo
from screenpop.auth.store import ensure_demo_users
from screenpop.config import load_settings
from screenpop.demo import demo_users
from screenpop.service import ScreenpopService
from telephony.simulator import PbxSimulator

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


@pytest.fixture(scope="module")
def demo_dbs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    dsns = {name: f"sqlite+aiosqlite:///{folder}/{name}.sqlite3" for name in ("sales", "billing", "support")}
    asyncio.run(seed_demo(dsns, customers=300, seed=3))
    return dsns


@pytest.fixture
async def service(demo_dbs, tmp_path):
    simulator = PbxSimulator(seed=7, secret="browser-secret")
    port = await simulator.start()
    settings = load_settings(None, env={})
    settings = replace(
        settings,
        ami=replace(settings.ami, port=port, secret="browser-secret", reconnect_min=0.05, reconnect_max=0.5),
        sources=demo_sources(demo_dbs),
        storage=replace(settings.storage, dsn=f"sqlite+aiosqlite:///{tmp_path}/interactions.sqlite3"),
        lookup=replace(settings.lookup, deadline_ms=2000),
        web=replace(settings.web, port=0),
        interactions=replace(settings.interactions, flush_interval=0.05, spill_path=str(tmp_path / "spill.jsonl")),
    )
    service = ScreenpopService(settings)
    service.base_url = await service.start()
    service.simulator = simulator
    try:
        await ensure_demo_users(service.accounts, demo_users())
        await asyncio.wait_for(service.connection.connected_event.wait(), 5)
        yield service
    finally:
        await service.stop()
        await simulator.stop()


async def test_agent_takes_a_real_call_and_records_its_outcome(browser, service, shot):
    context = await browser.new_context(viewport={"width": 1366, "height": 768}, base_url=service.base_url)
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
        call = asyncio.create_task(service.simulator.place_call(
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
        record = await service.interactions.store.get(call_id)
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
