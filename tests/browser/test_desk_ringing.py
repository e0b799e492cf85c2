"""The agent desktop when the phone rings while the last call still owes its
outcome, and when two calls ring at once, in a real browser (stub server).

A ringing card is never hidden: it is whole (its body on screen, the
customer's name and balance readable) and above every other pop; the
wrap-up form stays on screen beside it at a laptop's width and can be
reached below it on a phone.  Also what the agent reads on the card:
numbers as the server wrote them, the caller's name once, labelled
details, every amount with its currency.
"""
from __future__ import annotations

import pytest

from tests.browser.stub_server import now
from tests.browser.test_agent_desktop import known_card, pop, wait_status

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")]


def customer_card(name: str, number: str, display: str, balance: str = "125.40") -> dict:
    card = known_card(missing_support=False)
    card["caller_number"], card["caller_display"] = number, display
    person = card["persons"][0]
    person.update(name=name, vip=False, flags=[], history=[])
    person["billing"] = dict(person["billing"], balance=balance)
    return card


def readable_pop(call_id: str, number: str, display: str, caller_name: str | None, card: dict) -> dict:
    message = pop(call_id, number, card)
    message["caller"].update(display=display, name=caller_name)
    return message


async def box(page, selector: str) -> dict:
    return await page.locator(selector).evaluate("e => { const r = e.getBoundingClientRect(); return {x: r.x, y: r.y, w: r.width, h: r.height, bottom: r.bottom, right: r.right}; }")


async def to_wrap_up(page, stub, call_id: str) -> None:
    await stub.send(readable_pop(call_id, "0034912345679", "912 34 56 79", None, customer_card("Luis Perez", "0034912345679", "912 34 56 79")))
    await stub.send({"type": "call", "call_id": call_id, "event": "answered", "agent": "1001", "ts": now()})
    await wait_status(page, "on-call")
    await stub.send({"type": "call", "call_id": call_id, "event": "ended", "reason": "completed", "ts": now()})
    await wait_status(page, "wrap-up")


async def test_a_call_ringing_during_a_wrap_up_is_shown_whole_and_on_top(page, stub, shot):
    await page.goto("/")
    await page.wait_for_function("() => window.screenpop && window.screenpop.connected", timeout=10000)
    await to_wrap_up(page, stub, "1.1")

    await stub.send(readable_pop("2.2", "+14155550100", "+1 415-555-0100", "ANA  GARCIA", customer_card("Ana Garcia", "+14155550100", "+1 415-555-0100", "318.40")))
    ringing = page.locator(".pop[data-call-id='2.2']")
    await ringing.wait_for()
    await wait_status(page, "ringing")
    # On top: the first pop in the list and above the wrap-up's pop on screen.
    assert await page.eval_on_selector_all("#pops .pop", "ps => ps.map(p => p.dataset.callId)") == ["2.2", "1.1"]
    assert (await box(page, ".pop[data-call-id='2.2']"))["bottom"] <= (await box(page, ".pop[data-call-id='1.1']"))["y"]
    # Whole: its card body is visible, with the customer and the balance, inside the window.
    assert await ringing.locator(".pop-body").is_visible()
    assert await ringing.locator(".customer-name").text_content() == "Ana Garcia"
    balance = ringing.locator(".balance-amount")
    assert await balance.is_visible() and "318.40" in await balance.text_content()
    assert (await box(page, ".pop[data-call-id='2.2'] .balance-amount"))["bottom"] <= 768
    assert await ringing.locator(".pop-head-main").get_attribute("aria-expanded") == "true"
    # The wrap-up form is still there, beside the pops, for the call that owes it.
    assert await page.is_visible("#wrapup") and await page.evaluate("window.screenpop.wrapup") == "1.1"
    assert await page.is_visible("#outcome-submit")
    assert "912 34 56 79" in await page.text_content("#wrapup-caller")
    link = page.locator("#status-detail a.status-link")
    assert await link.text_content() == "outcome still to record" and await link.get_attribute("href") == "#wrapup"
    await shot(page, "ringing-during-wrap-up-laptop")

    # The agent can still save the outcome while it rings; the ringing card stays.
    await page.select_option("#outcome-disposition", "sale")
    await page.click("#outcome-submit")
    await page.wait_for_selector(".pop[data-call-id='1.1']", state="detached")
    assert stub.recorded("PUT", "/api/v1/interactions/1.1/outcome")
    assert await ringing.locator(".pop-body").is_visible() and await page.is_hidden("#wrapup")
    assert page.script_errors == []


async def test_on_a_phone_the_ringing_card_comes_first_and_the_form_below(browser, stub, shot):
    context = await browser.new_context(viewport={"width": 390, "height": 844}, base_url=stub.base_url)
    page = await context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        await page.goto("/")
        await page.wait_for_function("() => window.screenpop && window.screenpop.connected", timeout=10000)
        await to_wrap_up(page, stub, "1.1")
        await stub.send(readable_pop("2.2", "+14155550100", "+1 415-555-0100", None, customer_card("Ana Garcia", "+14155550100", "+1 415-555-0100")))
        await page.wait_for_selector(".pop[data-call-id='2.2'] .customer-name")
        ringing = await box(page, ".pop[data-call-id='2.2']")
        assert ringing["y"] < 844 and ringing["x"] >= 0 and ringing["right"] <= 390  # starts on the first screen, fits across
        assert await page.is_visible(".pop[data-call-id='2.2'] .pop-body")
        form = await box(page, "#wrapup")
        assert form["y"] >= (await box(page, "#pops"))["bottom"]  # below the pops, reached by scrolling
        await page.click("#status-detail a.status-link")
        await page.wait_for_function("() => document.getElementById('wrapup').getBoundingClientRect().top < innerHeight")
        await page.evaluate("scrollTo(0, 0)")
        await shot(page, "ringing-during-wrap-up-phone")
        assert errors == []
    finally:
        await context.close()


async def test_two_calls_ringing_at_once_are_both_whole(page, stub, shot):
    await page.goto("/")
    await page.wait_for_function("() => window.screenpop && window.screenpop.connected", timeout=10000)
    await stub.send(readable_pop("3.1", "912345678", "912 34 56 78", None, customer_card("Ana Garcia", "912345678", "912 34 56 78")))
    await stub.send(readable_pop("3.2", "600111222", "600 11 12 22", None, customer_card("Luis Perez", "600111222", "600 11 12 22")))
    await page.wait_for_selector(".pop[data-call-id='3.2'] .customer-name")
    assert "2 calls ringing" in await page.text_content("#status-detail")
    for call_id, name in (("3.1", "Ana Garcia"), ("3.2", "Luis Perez")):
        assert await page.is_visible(f".pop[data-call-id='{call_id}'] .pop-body"), call_id
        assert await page.text_content(f".pop[data-call-id='{call_id}'] .customer-name") == name
    # Both headers are on the first screen of a laptop.
    assert (await box(page, ".pop[data-call-id='3.2'] .pop-header"))["bottom"] <= 768
    await shot(page, "two-ringing")
    assert page.script_errors == []


async def test_the_card_reads_like_a_person_writes(page, stub):
    await page.goto("/")
    await page.wait_for_function("() => window.screenpop && window.screenpop.connected", timeout=10000)
    card = customer_card("Ana Garcia", "0034912345679", "912 34 56 79")
    person = card["persons"][0]
    person["billing"] = {"account": "AC-1", "balance": "10.00"}  # no currency of its own
    person["sales"] = {"lifetime_value": "1847.30", "orders": [{"id": 4, "total": "19.98", "currency": "EUR", "status": "delivered"}]}
    person["extra"] = {"billing": {"account_status": "active"}}
    person["details"] = [{"source": "billing", "field": "account_status", "label": "Account status", "value": "active"}]
    await stub.send(readable_pop("4.1", "0034912345679", "912 34 56 79", "ana garcia", card))
    pop_box = page.locator(".pop[data-call-id='4.1']")
    await pop_box.locator(".customer-name").wait_for()
    # The number as the server wrote it; the caller-ID name, equal to the customer's, only once.
    assert await pop_box.locator(".pop-caller-number").text_content() == "912 34 56 79"
    assert await pop_box.locator(".pop-caller-name").count() == 0
    assert await page.evaluate("window.screenpop.pops[0].caller_number") == "0034912345679"
    # Labels, not field names.
    details = await pop_box.locator(".extra").text_content()
    assert "Account status" in details and "account_status" not in details and "billing ·" not in details
    # Every amount names its currency (the orders' EUR for the balance and lifetime value).
    for selector in (".balance-amount", ".lifetime-value", ".orders .amount"):
        shown = await pop_box.locator(selector).first.text_content()
        assert "€" in shown or "EUR" in shown, (selector, shown)

    # A caller-ID name that says something else is kept; an amount with no currency anywhere says so.
    other = customer_card("Ana Garcia", "600111222", "600 11 12 22")
    other["persons"][0]["billing"] = {"balance": "5.00"}
    other["persons"][0]["sales"] = None
    await stub.send(readable_pop("4.2", "600111222", "600 11 12 22", "RECEPTION", other))
    second = page.locator(".pop[data-call-id='4.2']")
    await second.locator(".customer-name").wait_for()
    assert await second.locator(".pop-caller-name").text_content() == "RECEPTION"
    assert "currency unknown" in await second.locator(".balance-amount").text_content()
    assert page.script_errors == []


async def test_a_possible_match_says_so_on_the_header_and_the_card(page, stub):
    """The lookup marks a person found only by the last digits of a number
    stored without its country code (person.match == 'possible')."""
    await page.goto("/")
    await page.wait_for_function("() => window.screenpop && window.screenpop.connected", timeout=10000)
    card = customer_card("Bo Smith", "+14155550100", "+1 415-555-0100")
    card["persons"][0].update(match="possible", possible={"billing": ["AC-9"]})
    await stub.send(readable_pop("5.1", "+14155550100", "+1 415-555-0100", None, card))
    shown = page.locator(".pop[data-call-id='5.1']")
    await shown.locator(".customer-name").wait_for()
    assert await shown.locator(".pop-header .badge-possible").text_content() == "possible match"
    assert await shown.locator(".customer-title .badge-possible").is_visible()
    sure = customer_card("Ana Garcia", "912345678", "912 34 56 78")
    sure["persons"][0].update(match="sure", possible={"billing": ["AC-1"]})
    await stub.send(readable_pop("5.2", "912345678", "912 34 56 78", None, sure))
    other = page.locator(".pop[data-call-id='5.2']")
    await other.locator(".customer-name").wait_for()
    assert await other.locator(".badge-possible").count() == 0
    assert "billing" in await other.locator(".possible-note").text_content()
    assert page.script_errors == []
