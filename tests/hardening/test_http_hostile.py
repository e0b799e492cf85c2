"""Hostile HTTP bodies and headers against the wired service, where
schemathesis does not go: bodies nested thousands deep, invalid UTF-8,
megabytes, the wrong media type, JSON that is not an object, NaN, and
oversized or odd headers.  Each is a 4xx that says why (JSON ``error`` on
the API), never a 5xx and never a traceback; the server keeps serving."""
from __future__ import annotations

import json

import pytest

from tests.stack import BILLING_TOKEN, seed_databases

TRACEBACK_MARKERS = ("Traceback", 'File "', "Error:", "Internal Server Error")


@pytest.fixture(scope="module")
def demo_dbs(tmp_path_factory):  # the `stack` fixture (tests/conftest.py) runs on these
    return seed_databases(tmp_path_factory.mktemp("http"), customers=60)


BODIES = [
    # (body bytes, expected status, a word the error must contain)
    (b"[" * 7000, 400, "nested"),
    (b'{"a":' * 2000 + b"1" + b"}" * 2000, 400, "nested"),
    (b"\xff\xfe{\x00", 400, "JSON"),
    (b"", 400, "JSON"),
    (b"[1, 2, 3]", 400, "object"),
    (b'"just a string"', 400, "object"),
    (b"null", 400, "object"),
    (b"x" * (1024 * 1024), 413, "larger"),
]


async def test_hostile_bodies_are_4xx_with_a_reason(stack):
    """Every JSON-accepting API route (outcome, notes, billing push) refuses
    nested, undecodable, non-object and oversized bodies with the documented
    4xx and a JSON reason, and refuses a form post with 415."""
    agent = await stack.token("agent1001")
    routes = [
        ("PUT", "/api/v1/interactions/some-call/outcome", agent),
        ("POST", "/api/v1/interactions/some-call/notes", agent),
        ("PUT", "/api/v1/billing/balances/ACC-1", BILLING_TOKEN),
    ]
    for method, path, token in routes:
        for body, expected, word in BODIES:
            status, answer = await stack.api(method, path, token, data=body, headers={"Content-Type": "application/json"})
            assert status == expected and word.lower() in answer["error"].lower(), (path, body[:20], status, answer)
        status, answer = await stack.api(method, path, token, data=b"text=hi", headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 415 and answer["error"], (path, status, answer)


async def test_nan_and_wrong_types_in_bodies_are_400(stack):
    """JSON's non-standard NaN / Infinity and values of the wrong type
    ({} for a date, 0 for notes, a list for a disposition) are refused with
    the field named, on a call that exists."""
    agent = await stack.token("agent1001")
    linkedid = await stack.simulator.place_call("queue_answered", "+34910000001", "Type Test", queue="support",
                                                agents=["1001"], speed=50)
    await stack.logged(linkedid, agent)
    outcome = f"/api/v1/interactions/{linkedid}/outcome"
    for body, field in [('{"disposition": NaN}', "disposition"), ('{"disposition": ["resolved"]}', "disposition"),
                        ('{"disposition": "resolved", "follow_up": {}}', "follow_up"),
                        ('{"disposition": "resolved", "follow_up": 0}', "follow_up"),
                        ('{"disposition": "resolved", "notes": 0}', "notes"),
                        ('{"disposition": "resolved", "notes": false}', "notes"),
                        ('{"disposition": "resolved", "follow_up": "2026-02-30"}', "follow_up")]:
        status, answer = await stack.api("PUT", outcome, agent, data=body, headers={"Content-Type": "application/json"})
        assert status == 400 and field in answer["error"], (body, status, answer)
    status, record = await stack.api("GET", f"/api/v1/interactions/{linkedid}", agent)
    assert status == 200 and record["disposition"] is None and record["notes"] == []  # nothing half-written
    for body in ('{"balance": NaN, "currency": "EUR"}', '{"balance": Infinity, "currency": "EUR"}',
                 '{"balance": "1e400", "currency": "EUR"}', '{"balance": true, "currency": "EUR"}'):
        status, answer = await stack.api("PUT", "/api/v1/billing/balances/ACC-1", BILLING_TOKEN, data=body,
                                         headers={"Content-Type": "application/json"})
        assert status == 400 and "balance" in answer["error"], (body, status, answer)


async def test_hostile_headers_never_5xx(stack):
    """Oversized and odd credentials: a 6 KB bearer token, a bearer token of
    Latin-1 bytes, an empty scheme, a forged cookie, 100 cookies, a header
    over aiohttp's 8 KB line limit.  Each is refused with a 4xx (401 JSON
    where the app answers; the HTTP parser's own 400 for the oversized line)
    and the server answers the next request normally."""
    url = f"{stack.url}/api/v1/interactions"
    cases = [
        {"Authorization": "Bearer " + "A" * 6000},
        {"Authorization": "Bearer \xe9\xff\xfe".encode("latin-1").decode("latin-1")},
        {"Authorization": " "},
        {"Authorization": "Basic YWRtaW46ZGVtbw=="},
        {"Cookie": "screenpop_session=" + "B" * 4000},
        {"Cookie": "; ".join(f"c{i}=v{i}" for i in range(100))},
    ]
    for headers in cases:
        async with stack.http.get(url, headers=headers) as r:
            body = await r.text()
            assert r.status == 401 and json.loads(body)["error"], (list(headers), r.status, body[:100])
    async with stack.http.get(url, headers={"X-Huge": "C" * 20_000}) as r:
        body = await r.text()
        assert 400 <= r.status < 500 and not any(m in body for m in TRACEBACK_MARKERS[:2]), (r.status, body[:200])
    for headers in ({"Authorization": "Bearer wrong"}, {}):
        status, answer = await stack.api("PUT", "/api/v1/billing/balances/ACC-1", "wrong", data=b"{}",
                                         headers={"Content-Type": "application/json", **headers})
        assert status == 401 and answer["error"], answer
    token = await stack.token("supervisor")
    status, answer = await stack.api("GET", "/api/v1/interactions", token)
    assert status == 200 and answer["items"] == []
