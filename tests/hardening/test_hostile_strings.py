"""Hostile strings end to end: caller ID names and numbers of every odd kind,
customer data carrying HTML/JS and SQL, notes with the same, through the
whole service (PBX simulator → AMI → tracker → lookup on the seeded demo
databases → pop over the WebSocket → interaction log → REST API).

What "inert" means here: every string arrives as the same JSON string it
started as (the pop, the log, the API); escaping is the browser's job (the
desktop renders with textContent, tested in tests/browser).  Nothing
crashes, nothing is interpreted, no SQL runs.  The only change is the
interaction log's documented column limit: a caller name is kept to its
first 255 characters there (the pop carries it whole)."""
from __future__ import annotations

import asyncio
import json
import sqlite3
from urllib.parse import quote

import pytest
from markupsafe import escape

from tests.stack import Stack, seed_databases

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'
RTL = "\u202egnp.exe\u202c Ana"  # right-to-left override: shows as "Ana exe.png"
ZERO_WIDTH = "A\u200bn\u200ca\u200d\u2060\ufeffG"  # ZWSP, ZWNJ, ZWJ, word joiner, BOM
SQL = "'; DROP TABLE interactions; --"
TEMPLATE = "{{7*7}} ${7*7} #{7*7} %s%n%x {0} \\u0041 &lt;b&gt; &amp;"
MIXED = "É名🙂 O'Brien & <Co> \"quoted\" `tick` \\ back\tslash"
LONG = ("<b>x</b>é" * 1200)[:10_240]  # 10 KB of markup-looking text
HOSTILE_NAMES = [SCRIPT, ATTRIBUTE, RTL, ZERO_WIDTH, SQL, TEMPLATE, MIXED, LONG]
LOG_NAME_LIMIT = 255  # interactions.caller_name is String(255)

# The support contact with hostile data, reached at this number.
HOSTILE_PHONE, HOSTILE_E164 = "+34 699 000 111", "+34699000111"
HOSTILE_CONTACT = {
    "full_name": SCRIPT + ATTRIBUTE,
    "organization": RTL + " " + SQL,
    "notes": TEMPLATE + ZERO_WIDTH,
    "subject": "<iframe src=javascript:alert(1)>",
    "update": "'); DELETE FROM contacts; --" + "\u202e",
}


@pytest.fixture(scope="module")
def demo_dbs(tmp_path_factory):  # the `stack` fixture (tests/conftest.py) runs on these
    """Seeded demo databases plus one support contact whose every text field is hostile."""
    folder = tmp_path_factory.mktemp("strings")
    dsns = seed_databases(folder, customers=120)
    db = sqlite3.connect(dsns["support"].split("///", 1)[1])
    with db:
        db.execute("INSERT INTO contacts (contact_id, full_name, email, phone, phone_alt, organization, sla_tier, created_at, notes)"
                   " VALUES (?, ?, ?, ?, NULL, ?, 'vip', '2026-01-02 03:04:05.000000', ?)",
                   ("hostile-1", HOSTILE_CONTACT["full_name"], "x@example.com", HOSTILE_PHONE,
                    HOSTILE_CONTACT["organization"], HOSTILE_CONTACT["notes"]))
        db.execute("INSERT INTO tickets VALUES (990001, 'hostile-1', ?, 'open', 'high', 'phone',"
                   " '2026-11-01 10:00:00.000000', '2026-11-02 10:00:00.000000')", (HOSTILE_CONTACT["subject"],))
        db.execute("INSERT INTO ticket_updates VALUES (990001, 990001, '2026-11-02 10:00:00.000000', 'agent', ?, 1)",
                   (HOSTILE_CONTACT["update"],))
    db.close()
    return dsns


async def call_and_pop(stack: Stack, ws, number, name) -> tuple[str, dict]:
    """Place a support call ringing agent 1001 only; its linkedid and pop."""
    placing = asyncio.create_task(stack.simulator.place_call(
        "queue_answered", number, name, queue="support", agents=["1001"], speed=50))

    async def pop():
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "pop":
                return message

    try:
        message = await asyncio.wait_for(pop(), 10)
    except asyncio.TimeoutError:
        raise AssertionError(f"no pop for number={number!r} name={name[:40] if name else name!r}") from None
    linkedid = await placing
    assert message["call_id"] == linkedid
    return linkedid, message


async def test_hostile_caller_names_pop_and_are_logged_verbatim(stack):
    """Caller ID names with <script>, attribute breakers, RTL override,
    zero-width characters, SQL, template syntax, emoji and a 10 KB name:
    each pops on the agent's screen as exactly that string, the interaction
    log keeps it verbatim (the 10 KB one cut to the column's 255 characters),
    the API returns it as a JSON string, and the interactions table is intact;
    a supervisor's socket following the queues meanwhile stays served."""
    ws = await stack.socket("agent1001")
    token = await stack.token("supervisor")
    watcher = await stack.socket("supervisor", token)  # queue and agent states name the callers too
    for i, name in enumerate(HOSTILE_NAMES):
        number = f"+3491000{i:04d}"
        linkedid, pop = await call_and_pop(stack, ws, number, name)
        assert pop["caller"]["name"] == name and pop["caller"]["number"] == number, pop["caller"]
        record = await stack.logged(linkedid, token)
        assert record["caller_name"] == name[:LOG_NAME_LIMIT], (name[:40], record["caller_name"][:40])
        assert record["caller_number"] == number
        status, found = await stack.api("GET", f"/api/v1/interactions?number={number[1:]}", token)
        assert status == 200 and [r["call_id"] for r in found["items"]] == [linkedid]
    status, everything = await stack.api("GET", "/api/v1/interactions?limit=200", token)
    assert status == 200 and everything["total"] == len(HOSTILE_NAMES)  # DROP TABLE did not run
    await watcher.send(json.dumps({"type": "ping", "id": "after"}))
    seen = []
    while True:  # every message the supervisor got parses, and its socket is still served
        message = json.loads(await asyncio.wait_for(watcher.recv(), 5))
        seen.append(message)
        if message["type"] == "pong":
            break
    assert message["id"] == "after" and not [m for m in seen if m["type"] == "error"], seen[-3:]
    named = [w["caller_name"] for m in seen if m["type"] == "queue" for w in m.get("waiting", []) if w.get("caller_name")]
    assert set(named) <= set(HOSTILE_NAMES), named  # whole and verbatim where a waiting caller is shown
    await watcher.close()
    await ws.close()


ODD_NUMBERS = [
    # (as the PBX sends it, what the log and the pop keep: None = withheld)
    ("", None),
    ("anonymous", None),
    ("<unknown>", None),
    ("Restricted", None),
    ("ABCDEF", "ABCDEF"),
    ("1" * 40, "1" * 40),
    ("+", "+"),
    ("00", "00"),
    ("0", "0"),
    ("*31#600111222", "*31#600111222"),
    ("sip:bob@evil.example", "sip:bob@evil.example"),
    ("+34 912 345 678;ext=99", "+34 912 345 678;ext=99"),
    ("٩١٢٣٤٥٦٧٨", "٩١٢٣٤٥٦٧٨"),  # Arabic-Indic digits
    ("９１２３４５６７８", "９１２３４５６７８"),  # full-width digits
    ("<script>1</script>", "<script>1</script>"),
    ("' OR 1=1 --", "' OR 1=1 --"),
]

SAME_AS_ANA = {"+34 912 345 678;ext=99", "٩١٢٣٤٥٦٧٨", "９１２３４５６７８"}  # a demo persona


async def test_odd_caller_numbers_pop_a_clear_card_and_are_logged(stack):
    """Caller numbers of every odd kind: empty, anonymous, <unknown>,
    letters, 40 digits, a lone +, 00, star codes, SIP URIs, extensions,
    Arabic-Indic and full-width digits, markup and SQL.  Each call pops
    (withheld ones as a "withheld" card with no number, the others as the
    number received; a number without a digit gets the withheld card, as
    nothing can be looked up), is logged with the number
    as received, and the API serves it back and searches it without a 5xx."""
    ws = await stack.socket("agent1001")
    token = await stack.token("supervisor")
    for number, kept in ODD_NUMBERS:
        linkedid, pop = await call_and_pop(stack, ws, number, "Odd Number")
        assert pop["caller"]["number"] == kept, (number, pop["caller"])
        card = pop["card"]
        if not any(c.isdigit() for c in number):  # nothing to look up: the withheld card
            assert card["status"] == "withheld" and card["number_kind"] in ("withheld", "empty"), (number, card)
            assert card["persons"] == []
        elif number in SAME_AS_ANA:  # other digits, an extension: still Ana's number
            assert card["status"] == "known" and card["e164"] == "+34912345678", (number, card)
        else:
            assert card["status"] == "unknown" and card["persons"] == [], (number, card)
        record = await stack.logged(linkedid, token)
        assert record["caller_number"] == kept, (number, record["caller_number"])
        assert record["caller_name"] == "Odd Number"
        # Searching by the number as received: some digits find the call, no
        # digits at all is a 400 that says so, blank is no filter.
        status, found = await stack.api("GET", f"/api/v1/interactions?number={quote(number)}", token)
        if not number.strip():
            assert status == 200, found
        elif not any(c.isdigit() for c in number):
            assert status == 400 and "digits" in found["error"], (number, status, found)
        else:
            assert status == 200 and linkedid in [r["call_id"] for r in found["items"]], (number, status, found)
    await ws.close()


async def test_hostile_customer_data_reaches_the_card_as_plain_strings(stack):
    """A support contact whose name, organization, notes, ticket subject and
    last update carry <script>, attribute breakers, RTL overrides, zero-width
    characters and SQL: the pop's card carries each field as that exact
    string, the log stores the customer name verbatim, and search by the
    hostile customer name finds the call (the SQL is only ever a value)."""
    ws = await stack.socket("agent1001")
    token = await stack.token("supervisor")
    linkedid, pop = await call_and_pop(stack, ws, HOSTILE_PHONE, SQL)
    card = pop["card"]
    assert card["status"] == "known" and card["e164"] == HOSTILE_E164, card
    text = json.dumps(card, ensure_ascii=False)
    for value in HOSTILE_CONTACT.values():
        assert json.dumps(value, ensure_ascii=False)[1:-1] in text, value
    person = card["persons"][0]
    assert person["name"] == HOSTILE_CONTACT["full_name"], person
    record = await stack.logged(linkedid, token)
    assert record["customer_name"] == HOSTILE_CONTACT["full_name"]
    status, found = await stack.api("GET", f"/api/v1/interactions?customer={quote(SCRIPT)}", token)
    assert status == 200 and [r["call_id"] for r in found["items"]] == [linkedid], found
    status, found = await stack.api("GET", f"/api/v1/interactions?customer={quote('%')}", token)
    assert status == 200 and found["items"] == []  # LIKE wildcards are literal: no name has a '%'
    await ws.close()


async def test_hostile_notes_and_outcomes_round_trip(stack):
    """Notes and outcome notes carrying every hostile string (a 10,000
    character one included) are stored and served back verbatim, oldest
    first; a note with a NUL or over 10,000 characters is a 400 with a
    reason, never a 5xx; the call's other fields are untouched."""
    ws = await stack.socket("agent1001")
    agent = await stack.token("agent1001")
    linkedid, _ = await call_and_pop(stack, ws, "+34910009999", "Notes Test")
    await stack.logged(linkedid, agent)
    texts = [*HOSTILE_NAMES[:-1], LONG[:10_000], "line one\r\nline two\n\nthree", "  leading and trailing  "]
    for text in texts:
        status, note = await stack.api("POST", f"/api/v1/interactions/{linkedid}/notes", agent, json={"text": text})
        assert status == 201 and note["text"] == text and note["author"] == "agent1001", (status, note)
    status, record = await stack.api("PUT", f"/api/v1/interactions/{linkedid}/outcome", agent,
                                     json={"disposition": "resolved", "notes": SCRIPT + SQL + RTL, "follow_up": None})
    assert status == 200, record
    status, record = await stack.api("GET", f"/api/v1/interactions/{linkedid}", agent)
    assert status == 200
    assert [n["text"] for n in record["notes"]] == [*texts, SCRIPT + SQL + RTL]
    assert record["disposition"] == "resolved" and record["caller_name"] == "Notes Test"
    for bad in ("nul \x00 inside", "x" * 10_001, " \t\r\n ", "\ud800 lone surrogate"):
        status, body = await stack.api("POST", f"/api/v1/interactions/{linkedid}/notes", agent,
                                       data=json.dumps({"text": bad}), headers={"Content-Type": "application/json"})
        assert status == 400 and "text" in body["error"], (bad[:20], status, body)
    await ws.close()


async def test_hostile_call_ids_in_page_addresses_are_escaped(stack):
    """The only server-rendered place a hostile string can reach is the
    interaction page's call id, taken from the address: it is HTML-escaped
    (Jinja2 autoescape), never echoed raw; the same call id through the API
    is a JSON 404 that does not echo it either."""
    token = await stack.token("supervisor")
    for call_id in (SCRIPT, ATTRIBUTE, "x' onmouseover='alert(1)", RTL, SQL):
        path = "/interactions/" + quote(call_id, safe="")
        async with stack.http.get(stack.url + path, headers={"Authorization": f"Bearer {token}"}) as r:
            html = await r.text()
            assert r.status == 200 and r.content_type == "text/html", (call_id, r.status)
        assert "<script>alert" not in html and "<img src=x" not in html and "' onmouseover='" not in html, call_id
        assert str(escape(call_id)) in html, call_id  # it is on the page, escaped
        status, body = await stack.api("GET", "/api/v1" + path, token)
        assert status == 404 and body == {"error": "no such call"}, (call_id, status, body)
