"""The supervisor dashboard on the whole service, nothing stubbed: the PBX
simulator speaks AMI over TCP to the service (tracker, queue monitor,
supervision, interaction log, day figures, WebSocket hub), and a real
chromium logs in as the demo supervisor through the login page.

As simulated calls arrive the supervisor sees, without reloading: the
support queue fill (a caller waiting) and drain, agent 1001 go ringing →
on call (with the caller's card) → out of the call, today's answered count
and the service level move, an abandoned call in billing count as
abandoned; the wallboard (its own token, no login) shows the same queues.
Every state the page showed is recorded in the page itself (a
MutationObserver), because some last only a moment.
"""
from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from tests.stack import Stack

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")]

ANA = "+34912345678"  # demo persona: Ana Garcia
HOSTILE_CALLER_NAME = '<img src=x onerror="window.__xss=1">Ana'
WALL_TOKEN = "wired-wallboard-token-0123456789"

# What the dashboard showed, in order: support's waiting count and agent
# 1001's state (attribute changes only; the tile and row are replaced on
# every message, so the observer watches the whole main element).
RECORD = """
window.__seen = { waiting: [], agent1001: [], sl: [] };
const note = (list, value) => { if (value != null && list[list.length - 1] !== value) list.push(value); };
const look = () => {
  const tile = document.querySelector(".queue-tile[data-queue='support']");
  if (tile) {
    note(window.__seen.waiting, tile.querySelector('.waiting-count').textContent);
    note(window.__seen.sl, tile.querySelector('.sl-value').textContent);
  }
  const row = document.querySelector("#agents-body tr[data-agent-id='1001']");
  if (row) note(window.__seen.agent1001, row.dataset.state);
};
document.addEventListener('DOMContentLoaded', () => {
  const main = document.getElementById('main');
  if (!main) return;
  look();
  new MutationObserver(look).observe(main, { childList: true, subtree: true, attributes: true, attributeFilter: ['data-state'] });
});
"""


def supervised(settings):
    """The wallboard token, and pushes every 100 ms."""
    return replace(settings, supervision=replace(settings.supervision, wallboard_token=WALL_TOKEN, push_interval_seconds=0.1))


@pytest.fixture
async def stack(demo_dbs, tmp_path):
    async with Stack(demo_dbs, tmp_path, configure=supervised) as stack:
        yield stack


async def wait_js(page, expression: str, arg=None, timeout: float = 15000):
    await page.wait_for_function(expression, arg=arg, timeout=timeout)


async def test_supervisor_watches_real_calls_arrive(browser, stack, shot):
    context = await browser.new_context(viewport={"width": 1366, "height": 900}, base_url=stack.url)
    await context.add_init_script(RECORD)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        # -- log in through the page; it sends us back to the dashboard
        await page.goto("/supervisor")
        assert "/login?next=" in page.url
        await page.fill("#login-username", "supervisor")
        await page.fill("#login-password", "demo")
        await page.click("#login-submit")
        await page.wait_for_url(stack.url + "/supervisor")  # not **/supervisor: the login page's ?next= matches that
        await wait_js(page, "() => window.screenpop && window.screenpop.connected", timeout=10000)
        await page.evaluate("window.__sameDocument = true")

        # -- the replay: the simulator's queues and agents, all idle
        await wait_js(page, "() => ['support', 'sales', 'billing'].every((q) => document.querySelector(`.queue-tile[data-queue='${q}']`))")
        await wait_js(page, "() => document.querySelector(\"#agents-body tr[data-agent-id='1001']\")")
        support = page.locator(".queue-tile[data-queue='support']")
        assert await support.locator(".waiting-count").text_content() == "0"
        answered_before = int(await support.locator(".today-answered").text_content())
        assert await page.get_attribute("#agents-body tr[data-agent-id='1001']", "data-state") == "available"
        await shot(page, "0-idle")

        # -- a caller queues for support; 1001 rings, answers after 3 s, talks 3 s
        call = asyncio.create_task(stack.simulator.place_call(
            "queue_answered", ANA, HOSTILE_CALLER_NAME, queue="support", agents=["1001"], answer_after=3.0, talk_seconds=3.0, speed=1))
        await wait_js(page, "() => document.querySelector(\".queue-tile[data-queue='support'] .waiting-count\").textContent === '1'")
        await wait_js(page, "() => document.querySelector(\"#agents-body tr[data-agent-id='1001']\").dataset.state === 'ringing'")
        waiting_row = support.locator(".longest-wait")
        assert (await waiting_row.text_content()).startswith("0:0")
        await shot(page, "1-waiting")

        await wait_js(page, "() => document.querySelector(\"#agents-body tr[data-agent-id='1001']\").dataset.state === 'on_call'")
        await wait_js(page, "() => document.querySelector(\".queue-tile[data-queue='support'] .waiting-count\").textContent === '0'")
        row = page.locator("#agents-body tr[data-agent-id='1001']")
        await wait_js(page, "() => (document.querySelector(\"#agents-body tr[data-agent-id='1001'] .call-customer\") || {}).textContent === 'Ana Garcia'")
        assert await row.locator(".call-number").text_content() == "912 34 56 78"  # +34912345678, as the supervisor in ES reads it
        await shot(page, "2-on-call")

        call_id = await call
        # after the call: out of the call (wrap-up until the outcome, or available)
        await wait_js(page, "() => !['ringing', 'on_call'].includes(document.querySelector(\"#agents-body tr[data-agent-id='1001']\").dataset.state)")
        # the day's figures are read again from the interaction log
        await wait_js(page, "n => Number(document.querySelector(\".queue-tile[data-queue='support'] .today-answered\").textContent) === n + 1", arg=answered_before)
        await wait_js(page, "() => document.querySelector(\".queue-tile[data-queue='support'] .sl-value\").textContent === '100%'")

        # -- a caller gives up waiting in billing (nobody answers): abandoned counts, the SL moves
        billing = page.locator(".queue-tile[data-queue='billing']")
        abandoned_before = int(await billing.locator(".today-abandoned").text_content())
        await stack.simulator.place_call("queue_abandoned", "+34600111222", "Frank", queue="billing", agents=["1003"], patience=2.5, speed=1)
        await wait_js(page, "n => Number(document.querySelector(\".queue-tile[data-queue='billing'] .today-abandoned\").textContent) === n + 1", arg=abandoned_before)
        await shot(page, "3-after")

        seen = await page.evaluate("window.__seen")
        assert seen["waiting"][:3] == ["0", "1", "0"], seen
        states = seen["agent1001"]
        assert states[:3] == ["available", "ringing", "on_call"], seen
        assert "100%" in seen["sl"], seen
        assert await page.evaluate("window.__sameDocument") is True  # one page, updated live
        assert await page.evaluate("window.__xss") is None
        assert await page.evaluate("document.querySelectorAll('main img').length") == 0

        # -- drill into the agent: today's call is there, linked to its record
        await row.locator("a.agent-link").click()
        await page.wait_for_url("**/supervisor/agents/1001")
        await page.wait_for_selector(f"#calls-body tr[data-call-id='{call_id}']", timeout=10000)
        href = await page.get_attribute(f"#calls-body tr[data-call-id='{call_id}'] a.call-link", "href")
        assert href == f"/interactions/{call_id}"
        await shot(page, "4-agent")
        assert errors == []
    finally:
        await context.close()

    # -- the wallboard: no login, its own token, the same queues
    tv = await browser.new_context(viewport={"width": 1920, "height": 1080}, base_url=stack.url)
    try:
        wall = await tv.new_page()
        await wall.goto(f"/wallboard?token={WALL_TOKEN}")
        await wall.wait_for_function("() => document.querySelectorAll('.wb-tile').length >= 3", timeout=10000)
        assert await wall.locator(".wb-tile[data-queue='support'] .wb-sl .wb-value").text_content() == "100%"
        await shot(wall, "5-wallboard")
        await wall.goto("/wallboard?token=wrong")
        await wall.wait_for_function("() => window.screenpop.state === 'refused'")
    finally:
        await tv.close()
