"""The agent desktop in a real browser, fed a scripted WebSocket.

One call's life as the agent sees it: the pop (with a customer name that is
an attack: it must show as text and run nothing), a second call ringing at
the same time, its retract, a late card update, answer (status and timer),
end (wrap-up), and the outcome form posting to the API with the CSRF header,
after which the agent is Ready again.
"""
from __future__ import annotations

import asyncio

import pytest

from tests.browser.stub_server import CSRF, now

# The stub stands in for the app's auth, which uses plain string request keys.
pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")]

HOSTILE_NAME = '<img src=x onerror="window.__xss=1">Ana <script>window.__xss=2</script>\u202eGarcia'
HOSTILE_TICKET = '<b onmouseover="window.__xss=3">Router</b> keeps dropping'


def known_card(missing_support: bool = True) -> dict:
    support = {"status": "timeout", "detail": "no answer in 150 ms", "elapsed_ms": 150.0, "records": 0} if missing_support else {"status": "ok", "detail": None, "elapsed_ms": 20.0, "records": 1}
    return {
        "status": "known", "caller_number": "+34 912 34 56 78", "e164": "+34912345678", "number_kind": "e164",
        "generated_at": now(), "cached": False,
        "persons": [{
            "name": HOSTILE_NAME, "company": "Garcia SL", "email": "ana@example.com", "vip": True, "flags": ["late payer"],
            "keys": {"sales": ["17"], "billing": ["AC-000017"]},
            "sales": {"lifetime_value": 1234.5, "orders": [{"id": 9, "total": 99.5, "date": "2026-11-01", "status": "shipped"}, {"id": 8, "total": "12.00", "date": "2026-10-02", "status": "delivered"}]},
            "billing": {"account": "AC-000017", "balance": "318.40", "currency": "EUR", "balance_as_of": "2026-11-23T02:00:00.000000Z", "overdue_amount": "240.00"},
            "support": None if missing_support else {"open_tickets": [{"id": 3, "subject": HOSTILE_TICKET, "status": "open", "priority": "high"}]},
            "extra": {},
            "history": [{"call_id": "1795000000.1", "started_at": "2026-11-20T10:00:00.000000Z", "queue": "support", "answered_by": "1002", "end_reason": "completed", "wait_seconds": 12.0, "talk_seconds": 200.0, "disposition": "callback", "notes": [{"author": "bob", "text": "wants a <i>discount</i>", "created_at": "2026-11-20T10:04:00Z"}], "follow_up": "2026-11-25", "outcome_by": "bob"}],
        }],
        "sources": {"sales": {"status": "ok", "detail": None, "elapsed_ms": 12.0, "records": 1}, "billing": {"status": "ok", "detail": None, "elapsed_ms": 9.0, "records": 1}, "support": support},
        "missing_sources": ["support"] if missing_support else [],
    }


MULTIPLE_CARD = {
    "status": "multiple", "caller_number": "912000111", "e164": "+34912000111", "generated_at": now(), "cached": False,
    "persons": [{"name": "Boss", "vip": True, "company": "Acme", "flags": [], "keys": {}, "extra": {}, "history": []},
                {"name": "Clerk", "vip": False, "company": "Acme", "flags": [], "keys": {}, "extra": {}, "history": []}],
    "sources": {"sales": {"status": "ok", "detail": None, "elapsed_ms": 5.0, "records": 2}}, "missing_sources": [],
}


def pop(call_id: str, number: str, card: dict, queue: str = "sales") -> dict:
    return {"type": "pop", "call_id": call_id, "queue": queue, "caller": {"number": number, "name": None, "e164": card.get("e164")}, "card": card, "state": "ringing", "transferred_from": None, "notes": [], "sent_at": now()}


async def status(page) -> str:
    return await page.evaluate("window.screenpop.status")


async def wait_status(page, expected: str) -> None:
    await page.wait_for_function("s => window.screenpop.status === s", arg=expected, timeout=5000)


async def test_one_call_from_pop_to_outcome(page, stub, shot):
    await page.goto("/")
    await page.wait_for_function("() => window.screenpop && window.screenpop.connected", timeout=10000)
    assert await status(page) == "ready"
    assert (await page.text_content("#status-label")).strip() == "Ready"
    await shot(page, "0-ready")

    # -- the phone rings: the card is on screen, the hostile name as text
    await stub.send(pop("1795383229.38", "+34 912 34 56 78", known_card()))
    await page.wait_for_selector(".pop[data-call-id='1795383229.38'] .customer-name")
    await wait_status(page, "ringing")
    assert await page.text_content(".pop.is-focused .customer-name") == HOSTILE_NAME
    assert await page.evaluate("document.querySelectorAll('img').length") == 0
    assert await page.evaluate("document.querySelectorAll('#pops script').length") == 0
    assert await page.evaluate("window.__xss") is None
    assert await page.is_visible(".pop.is-focused .badge-vip")
    overdue = page.locator(".pop.is-focused .overdue")
    assert "240.00" in await overdue.text_content()
    color = await overdue.evaluate("e => getComputedStyle(e).color")
    red, green, blue = (int(c) for c in color[color.index("(") + 1:color.index(")")].split(",")[:3])
    assert red > 150 and green < 80 and blue < 80, color  # overdue is red
    missing = page.locator(".pop.is-focused .missing-source")
    assert await missing.count() == 1 and "support: timeout" in await missing.text_content()
    assert await missing.is_visible()
    assert "support missing" in await page.text_content(".pop.is-focused .pop-header .badge-missing")
    pops_text = await page.text_content("#pops")
    assert "null" not in pops_text and "undefined" not in pops_text and "NaN" not in pops_text
    assert "#9" in await page.text_content(".pop.is-focused .orders")
    history = await page.text_content(".pop.is-focused .history")
    assert "Call back" in history and "wants a <i>discount</i>" in history  # disposition label, note as text
    assert await page.evaluate("window.screenpop.pops.length") == 1
    await asyncio.sleep(0.1)
    assert {"type": "ack", "call_id": "1795383229.38"} in stub.client_frames
    await shot(page, "1-ringing-hostile-name")

    # -- a second call rings at the same time: both are listed, the chooser works
    await stub.send(pop("1795383230.40", "912000111", MULTIPLE_CARD))
    await page.wait_for_selector(".pop[data-call-id='1795383230.40']")
    assert await page.locator(".pop").count() == 2
    assert "2 calls ringing" in await page.text_content("#status-detail")
    await page.click(".pop[data-call-id='1795383230.40'] .pop-head-main")
    await page.click(".pop[data-call-id='1795383230.40'] .candidate[data-index='1']")
    assert await page.text_content(".pop[data-call-id='1795383230.40'] .pop-summary") == "Clerk"
    await shot(page, "2-two-calls-chooser")

    # -- it is answered elsewhere: retracted, a notice says why
    await stub.send({"type": "retract", "call_id": "1795383230.40", "reason": "answered elsewhere"})
    await page.wait_for_selector(".pop[data-call-id='1795383230.40']", state="detached")
    assert "answered elsewhere" in await page.text_content("#notices")
    assert await page.locator(".pop").count() == 1

    # -- a slow source arrives late: the card is replaced, the missing badge goes
    await stub.send({"type": "card", "call_id": "1795383229.38", "card": known_card(missing_support=False)})
    await page.wait_for_selector(".pop.is-focused .tickets")
    assert await page.locator(".pop.is-focused .missing-source").count() == 0
    assert HOSTILE_TICKET in await page.text_content(".pop.is-focused .tickets")
    assert await page.evaluate("window.__xss") is None

    # -- answered: On call, the timer runs
    await stub.send({"type": "call", "call_id": "1795383229.38", "event": "answered", "agent": "1001", "ts": now()})
    await wait_status(page, "on-call")
    assert (await page.text_content("#status-label")).strip() == "On call"
    assert await page.is_visible("#call-timer")
    first = await page.text_content("#call-timer")
    await page.wait_for_function("t => document.getElementById('call-timer').textContent !== t", arg=first, timeout=3000)
    await shot(page, "3-on-call")

    # -- ended: wrap-up until the outcome is saved
    await stub.send({"type": "call", "call_id": "1795383229.38", "event": "ended", "reason": "completed", "ts": now()})
    await wait_status(page, "wrap-up")
    assert await page.is_visible("#wrapup") and not await page.is_visible("#call-timer")
    await page.click("#outcome-submit")  # no disposition chosen yet
    assert "Choose an outcome" in await page.text_content("#outcome-error")
    assert stub.recorded("PUT", "/api/v1/interactions/") == []
    await shot(page, "4-wrap-up")

    await page.select_option("#outcome-disposition", "sale")
    await page.fill("#outcome-notes", "Sold the <b>upgrade</b>")
    await page.fill("#outcome-follow-up", "2026-12-01")
    await page.click("#outcome-submit")
    await wait_status(page, "ready")
    (put,) = stub.recorded("PUT", "/api/v1/interactions/")
    assert put.path == "/api/v1/interactions/1795383229.38/outcome"
    assert put.csrf == CSRF
    assert put.body == {"disposition": "sale", "notes": "Sold the <b>upgrade</b>", "follow_up": "2026-12-01"}
    assert await page.is_hidden("#wrapup") and await page.locator(".pop").count() == 0
    assert "Outcome saved" in await page.text_content("#notices")
    await shot(page, "5-ready-again")
    assert page.script_errors == []


async def test_a_call_that_ends_while_ringing_needs_no_outcome(page, stub):
    await page.goto("/")
    await page.wait_for_function("() => window.screenpop && window.screenpop.connected", timeout=10000)
    await stub.send(pop("9.1", "600111222", known_card()))
    await wait_status(page, "ringing")
    await stub.send({"type": "call", "call_id": "9.1", "event": "ended", "reason": "abandoned", "ts": now()})
    await wait_status(page, "ready")
    assert await page.is_hidden("#wrapup")
    assert page.script_errors == []


async def test_unknown_caller_gets_a_create_contact_link_and_withheld_has_none(page, stub):
    await page.goto("/")
    await page.wait_for_function("() => window.screenpop && window.screenpop.connected", timeout=10000)
    unknown = {"status": "unknown", "caller_number": "+1 (415) 555-0100", "e164": "+14155550100", "persons": [], "sources": {"sales": {"status": "no-match", "detail": None, "elapsed_ms": 3.0, "records": 0}}, "missing_sources": []}
    await stub.send(pop("7.1", "+1 (415) 555-0100", unknown))
    link = page.locator(".pop.is-focused a.create-contact")
    await link.wait_for()
    assert await link.get_attribute("href") == "https://crm.example/contacts/new?phone=%2B14155550100"
    assert await link.get_attribute("rel") == "noopener noreferrer"
    await stub.send({"type": "retract", "call_id": "7.1", "reason": "abandoned"})
    withheld = {"status": "withheld", "caller_number": None, "e164": None, "persons": [], "sources": {}, "missing_sources": []}
    await stub.send(pop("7.2", None, withheld))
    await page.wait_for_selector(".pop[data-call-id='7.2'] .withheld")
    assert await page.locator(".pop a.create-contact").count() == 0
    assert page.script_errors == []


async def test_connection_loss_shows_a_banner_and_reconnects(page, stub):
    await page.goto("/")
    await page.wait_for_function("() => window.screenpop && window.screenpop.hellos === 1", timeout=10000)
    for ws in list(stub.sockets):
        await ws.close()
    await page.wait_for_selector("#conn-banner", state="visible", timeout=5000)
    assert "Connection lost" in await page.text_content("#conn-banner")
    await page.wait_for_function("() => window.screenpop.hellos === 2", timeout=10000)
    await page.wait_for_selector("#conn-banner", state="hidden")
    assert page.script_errors == []


async def test_refused_handshakes_are_retried_until_the_store_is_back(page, stub):
    """503 (the session store is down) is not a logout: the desktop keeps
    retrying with backoff, past the three attempts a script might give up
    after, stays on its page, and is live again once the store answers."""
    await page.goto("/")
    await page.wait_for_function("() => window.screenpop && window.screenpop.hellos === 1", timeout=10000)
    stub.store_down = True
    for ws in list(stub.sockets):
        await ws.close()
    deadline = asyncio.get_running_loop().time() + 15
    while stub.refused_sockets < 3 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    assert stub.refused_sockets >= 3 and stub.session_checks >= 1  # it asked whether the session holds: 503, so it does
    assert "Connection lost" in await page.text_content("#conn-banner")
    stub.store_down = False
    await page.wait_for_function("() => window.screenpop.hellos === 2", timeout=15000)
    await page.wait_for_selector("#conn-banner", state="hidden")
    assert "/login" not in page.url
    assert page.script_errors == []


async def answered_then_ended(page, stub, call_id: str) -> None:
    await stub.send(pop(call_id, "+34 912 34 56 78", known_card()))
    await stub.send({"type": "call", "call_id": call_id, "event": "answered", "agent": "1001", "ts": now()})
    await wait_status(page, "on-call")
    await stub.send({"type": "call", "call_id": call_id, "event": "ended", "reason": "completed", "ts": now()})
    await wait_status(page, "wrap-up")


async def test_wrap_up_survives_a_reload_until_the_outcome_is_saved(page, stub):
    await page.goto("/")
    await page.wait_for_function("() => window.screenpop && window.screenpop.connected", timeout=10000)
    await answered_then_ended(page, stub, "5.5")
    await page.reload()
    await page.wait_for_function("() => window.screenpop && window.screenpop.connected", timeout=10000)
    assert await status(page) == "wrap-up"
    assert await page.is_visible("#wrapup")
    assert await page.text_content(".pop[data-call-id='5.5'] .customer-name") == HOSTILE_NAME
    await page.select_option("#outcome-disposition", "complaint")
    await page.click("#outcome-submit")
    await wait_status(page, "ready")
    assert stub.recorded("PUT", "/api/v1/interactions/5.5/outcome")[0].body["disposition"] == "complaint"
    await page.reload()
    await page.wait_for_function("() => window.screenpop && window.screenpop.connected", timeout=10000)
    assert await status(page) == "ready" and await page.locator(".pop").count() == 0
    assert page.script_errors == []


async def test_an_expired_session_sends_the_agent_to_the_login_page(page, stub):
    await page.goto("/")
    await page.wait_for_function("() => window.screenpop && window.screenpop.connected", timeout=10000)
    stub.user = None  # the session ends on the server: sockets are refused from now on
    for ws in list(stub.sockets):
        await ws.close(code=4401, message=b"session ended")
    await page.wait_for_url("**/login?next=%2F", timeout=3000)  # at once, not after two failed retries
    assert page.script_errors == []


async def test_config_the_page_was_rendered_without_comes_from_the_api(page, stub):
    """The app may render pages without dispositions or a create-contact
    address; the desktop then takes both from GET /api/v1/config/ui."""
    stub.page_dispositions, stub.page_create_contact_url = [], ""
    await page.goto("/")
    await page.wait_for_function("() => document.querySelectorAll('#outcome-disposition option').length > 1")
    options = await page.eval_on_selector_all("#outcome-disposition option", "os => os.map(o => [o.value, o.textContent])")
    assert options == [["", "Choose…"], ["sale", "Sale"], ["callback", "Callback"], ["complaint", "Complaint"], ["wrong_number", "Wrong number"]]
    await page.wait_for_function("() => window.screenpop && window.screenpop.connected", timeout=10000)
    unknown = {"status": "unknown", "caller_number": "600111222", "e164": "+34600111222", "persons": [], "sources": {}, "missing_sources": []}
    await stub.send(pop("8.1", "600111222", unknown))
    link = page.locator(".pop.is-focused a.create-contact")
    await link.wait_for()
    assert await link.get_attribute("href") == "https://crm.example/from-config?n=%2B34600111222"
    assert page.script_errors == []


async def test_a_failed_save_keeps_the_agent_in_wrap_up_with_the_servers_reason(page, stub):
    await page.goto("/")
    await page.wait_for_function("() => window.screenpop && window.screenpop.connected", timeout=10000)
    await answered_then_ended(page, stub, "6.6")
    stub.outcome_error = "storage unavailable, retry later"
    await page.select_option("#outcome-disposition", "sale")
    await page.fill("#outcome-notes", "keep me")
    await page.click("#outcome-submit")
    await page.wait_for_selector("#outcome-error", state="visible")
    assert "storage unavailable" in await page.text_content("#outcome-error")
    assert await status(page) == "wrap-up" and await page.input_value("#outcome-notes") == "keep me"
    stub.outcome_error = None
    await page.click("#outcome-submit")
    await wait_status(page, "ready")
    assert len(stub.recorded("PUT", "/api/v1/interactions/6.6/outcome")) == 2
    assert page.script_errors == []


async def test_transfers_show_who_from_and_to(page, stub):
    await page.goto("/")
    await page.wait_for_function("() => window.screenpop && window.screenpop.connected", timeout=10000)
    # A call transferred to this agent, with the first agent's note.
    transferred_in = pop("4.4", "+34 912 34 56 78", known_card())
    transferred_in.update(transferred_from="1002", notes=[{"author": "bob", "text": "<u>angry</u> about invoice", "created_at": now()}])
    await stub.send(transferred_in)
    await page.wait_for_selector(".pop[data-call-id='4.4'] .pop-transferred-from")
    assert "1002" in await page.text_content(".pop[data-call-id='4.4'] .pop-transferred-from")
    assert "<u>angry</u> about invoice" in await page.text_content(".pop[data-call-id='4.4'] .pop-notes")
    # This agent answers and transfers it on: the pop stays, marked, until closed; no wrap-up.
    await stub.send({"type": "call", "call_id": "4.4", "event": "answered", "agent": "1001", "ts": now()})
    await wait_status(page, "on-call")
    await stub.send({"type": "call", "call_id": "4.4", "event": "transferred", "to": "1003", "ts": now()})
    await wait_status(page, "ready")
    assert "Transferred to 1003" in await page.text_content(".pop[data-call-id='4.4'] .pop-state")
    await stub.send({"type": "call", "call_id": "4.4", "event": "ended", "reason": "completed", "ts": now()})
    await page.click(".pop[data-call-id='4.4'] .pop-close")
    assert await page.locator(".pop").count() == 0 and await status(page) == "ready"
    assert page.script_errors == []
