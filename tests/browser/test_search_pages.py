"""Login, interaction search and one interaction's page in a real browser,
against the stub API (tests/browser/stub_server.py).

Support staff find calls with the filters, page through them, open one,
read it, add a note and set the outcome later; every value from the
database is shown as text, and every write carries the CSRF header.
"""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.stub_server import CSRF

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")]

HOSTILE = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


def record(i: int, **over) -> dict:
    call_id = f"1795383{i:03d}.{i}"
    base = {
        "call_id": call_id, "caller_number": f"+34 912 34 {i:02d} 00", "caller_e164": f"+34912340{i:02d}00", "caller_name": None,
        "customer_name": f"Customer {i}", "customer_keys": {}, "card_status": "known", "queue": "sales",
        "agents_rung": ["1001"], "answered_by": "1001", "transfers": [], "agents_answered": ["1001"],
        "started_at": f"2026-11-{1 + i % 28:02d}T09:{i % 60:02d}:00.000000Z", "queued_at": f"2026-11-{1 + i % 28:02d}T09:{i % 60:02d}:00.000000Z",
        "first_ring_at": None, "answered_at": None, "ended_at": None, "last_event_at": None,
        "wait_seconds": 12.0, "talk_seconds": 95.0, "end_reason": "completed",
        "ring_times": {}, "answer_times": {}, "disposition": None, "follow_up": None, "outcome_by": None, "outcome_at": None,
        "notes": [],
    }
    base.update(over)
    return base


@pytest.fixture
def seeded(stub):
    for i in range(60):
        stub.interactions[record(i)["call_id"]] = record(i)
    evil = record(99, customer_name=HOSTILE, caller_number="<b>600</b>", queued_at="2026-12-31T23:00:00.000000Z", disposition="sale",
                  notes=[{"id": 1, "call_id": "1795383099.99", "author": HOSTILE, "text": "first " + HOSTILE, "created_at": "2026-12-31T23:10:00Z"}])
    stub.interactions[evil["call_id"]] = evil
    return evil


async def test_search_pages_and_opens_a_call_to_add_a_note_and_outcome(page, stub, seeded, shot):
    await page.goto("/interactions")
    await page.wait_for_selector("#results-body tr")
    assert await page.locator("#results-body tr").count() == 50
    assert "of 61" in await page.text_content("#search-status")
    first = page.locator("#results-body tr").first
    assert await first.locator(".customer-name").text_content() == HOSTILE
    assert await first.locator(".notes").text_content() == "first " + HOSTILE
    assert await first.locator(".disposition").text_content() == "Sale"
    assert await page.evaluate("document.querySelectorAll('#results img, #results script').length") == 0
    assert await page.evaluate("window.__xss") is None
    await shot(page, "0-search")

    # -- the older page
    await page.click("#page-next")
    await page.wait_for_function("() => document.querySelectorAll('#results-body tr').length === 11")
    last = stub.recorded("GET", "/api/v1/interactions")[-1]
    assert last.query["offset"] == "50" and last.query["limit"] == "51"
    assert parse_qs(urlsplit(page.url).query)["offset"] == ["50"]
    await page.click("#page-prev")
    await page.wait_for_function("() => document.querySelectorAll('#results-body tr').length === 50")

    # -- filters go to the API and into the address bar
    await page.fill("#q-number", "912 34")
    await page.select_option("#q-disposition", "sale")
    await page.fill("#q-since", "2026-11-01")
    await page.click("#search-submit")
    await page.wait_for_function("() => window.screenpop.searches >= 4")
    query = stub.recorded("GET", "/api/v1/interactions")[-1].query
    assert query["number"] == "912 34" and query["disposition"] == "sale" and query["since"] == "2026-11-01" and "offset" not in query
    assert parse_qs(urlsplit(page.url).query)["disposition"] == ["sale"]

    # -- one call
    await page.goto("/interactions/1795383099.99")
    await page.wait_for_selector("#interaction-grid", state="visible")
    assert await page.text_content("#i-caller") == "<b>600</b>"
    assert await page.locator("#i-details .customer-name").text_content() == HOSTILE
    assert await page.locator("#notes-list .note-author").first.text_content() == HOSTILE
    assert await page.text_content("#current-disposition") == "Sale"
    assert await page.input_value("#outcome-disposition") == "sale"
    assert await page.evaluate("document.querySelectorAll('main img, main script').length") == 0
    await page.fill("#note-text", "called back <i>twice</i>")
    await page.click("#note-form button[type=submit]")
    await page.wait_for_function("() => document.querySelectorAll('#notes-list .note').length === 2")
    (post,) = stub.recorded("POST", "/api/v1/interactions/1795383099.99/notes")
    assert post.csrf == CSRF and post.body == {"text": "called back <i>twice</i>"}
    assert await page.locator("#notes-list .note-text").last.text_content() == "called back <i>twice</i>"

    await page.select_option("#outcome-disposition", "callback")
    await page.fill("#outcome-notes", "promised a refund")
    await page.fill("#outcome-follow-up", "2027-01-05")
    await page.click("#outcome-submit")
    await page.wait_for_selector("#outcome-saved", state="visible")
    (put,) = stub.recorded("PUT", "/api/v1/interactions/1795383099.99/outcome")
    assert put.csrf == CSRF and put.body == {"disposition": "callback", "notes": "promised a refund", "follow_up": "2027-01-05"}
    assert await page.text_content("#current-disposition") == "Call back"
    assert await page.locator("#notes-list .note").count() == 3  # the outcome's notes became a note
    assert await page.input_value("#outcome-notes") == ""
    await shot(page, "1-detail")
    assert await page.evaluate("window.__xss") is None
    assert page.script_errors == []


async def test_unknown_call_says_so(page, stub):
    await page.goto("/interactions/nope")
    await page.wait_for_function("() => document.getElementById('load-status').textContent.includes('No call')")
    assert await page.is_hidden("#interaction-grid")
    assert page.script_errors == []


async def test_login_goes_where_the_visitor_was_going_and_logout_returns(page, stub, shot):
    stub.user = None
    await page.goto("/interactions?number=600")
    assert urlsplit(page.url).path == "/login"  # the page redirected an anonymous visitor
    await page.fill("#login-username", "ana")
    await page.fill("#login-password", "wrong")
    await page.click("#login-submit")
    await page.wait_for_selector("#login-error", state="visible")
    assert "Wrong user name or password" in await page.text_content("#login-error")
    await shot(page, "0-login-error")
    await page.fill("#login-password", stub.password)
    await page.click("#login-submit")
    await page.wait_for_url("**/interactions?number=600")
    await page.wait_for_selector("#results")
    await page.click("#logout")
    await page.wait_for_url("**/login")
    assert stub.user is None and stub.recorded("DELETE", "/api/v1/session")[0].csrf == CSRF
    assert page.script_errors == []
