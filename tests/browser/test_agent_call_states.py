"""What the agent's screen shows off the happy path (issue 19), in Chromium
fed a scripted WebSocket: a queue that rings the agent again and again keeps
one card (ringing -> missed -> ringing), and a caller found restricted after
the pop loses number and card on screen."""
from __future__ import annotations

import pytest

from tests.browser.stub_server import now
from tests.browser.test_agent_desktop import known_card, pop

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")]

CALL = "1796396729.58"
CARD = f".pop[data-call-id='{CALL}']"


async def ready(page):
    await page.goto("/")
    await page.wait_for_function("() => window.screenpop && window.screenpop.connected", timeout=10000)


async def test_queue_retries_keep_one_card_that_says_missed_then_rings_again(page, stub, shot):
    await ready(page)
    await stub.send(pop(CALL, "+34912345678", known_card()))
    await page.wait_for_selector(f"{CARD}[data-state='ringing'] .customer-name")
    await stub.send({"type": "call", "call_id": CALL, "event": "missed", "ts": now()})
    await page.wait_for_selector(f"{CARD}[data-state='missed']")
    assert "still waiting" in await page.text_content(f"{CARD} .pop-state")
    assert await page.is_visible(f"{CARD} .customer-name")  # the card stays readable
    assert await page.locator(".pop").count() == 1
    await shot(page, "missed-still-waiting")
    await stub.send({"type": "call", "call_id": CALL, "event": "ringing", "ts": now()})
    await page.wait_for_selector(f"{CARD}[data-state='ringing']")
    assert await page.locator(".pop").count() == 1
    await stub.send({"type": "call", "call_id": CALL, "event": "missed", "ts": now()})
    await page.wait_for_selector(f"{CARD}[data-state='missed']")
    await stub.send({"type": "retract", "call_id": CALL, "reason": "answered elsewhere"})
    await page.wait_for_selector(CARD, state="detached")
    assert "answered elsewhere" in await page.text_content("#notices")


async def test_a_restricted_repop_replaces_number_and_card(page, stub):
    await ready(page)
    await stub.send(pop(CALL, "+34912345678", known_card()))
    await page.wait_for_selector(f"{CARD} .customer-name")
    withheld = {"status": "withheld", "caller_number": None, "e164": None, "generated_at": now(), "cached": False,
                "persons": [], "sources": {}, "missing_sources": []}
    repop = {**pop(CALL, "", withheld), "caller": {"number": None, "name": None, "e164": None}}
    await stub.send(repop)
    await page.wait_for_function("s => document.querySelector(s).textContent === 'Withheld number'", arg=f"{CARD} .customer-name", timeout=5000)
    text = await page.text_content("#pops")
    assert "912" not in text and "Garcia" not in text
    assert await page.locator(".pop").count() == 1


async def test_the_pbx_link_down_shows_a_banner_until_it_is_back(page, stub, shot):
    await ready(page)
    assert await page.is_hidden("#pbx-banner")
    await stub.send({"type": "pbx", "state": "down", "since": now(), "outage_seconds": 0.0})
    await page.wait_for_selector("#pbx-banner", state="visible")
    text = await page.text_content("#pbx-banner")
    assert text.startswith("PBX link down since ") and "calls are not shown" in text
    await shot(page, "pbx-link-down")
    await stub.send({"type": "pbx", "state": "up"})
    await page.wait_for_selector("#pbx-banner", state="hidden")


async def test_earlier_calls_link_only_to_the_calls_this_agent_may_open(page, stub):
    """An agent reads the calls offered to them (issue 18, 15): the card's
    earlier calls of other agents are listed, not linked to a page that
    would answer 404."""
    card = known_card()
    mine = {**card["persons"][0]["history"][0], "call_id": "1795000000.1", "offered_to": ["1001", "1002"]}
    theirs = {**card["persons"][0]["history"][0], "call_id": "1795000000.2", "offered_to": ["1003"]}
    card["persons"][0]["history"] = [mine, theirs]
    await ready(page)
    await stub.send(pop(CALL, "+34912345678", card))
    await page.wait_for_selector(f"{CARD} .history")
    links = await page.eval_on_selector_all(f"{CARD} .history a", "els => els.map(e => e.getAttribute('href'))")
    assert links == ["/interactions/1795000000.1"]
    assert await page.locator(f"{CARD} .history-call").count() == 2
