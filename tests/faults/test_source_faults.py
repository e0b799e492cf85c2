"""Business systems misbehaving behind a live node (tests/stack.py:
PBX simulator over AMI, the whole service, agents on WebSockets).

The promise under test: whatever a source does (answers garbage, hangs,
disappears), the pop reaches the ringing agent within the lookup deadline
(plus delivery), carries what the healthy sources said, and names the
source that is missing and why."""
from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import replace

from aiohttp import web

from adapters.demo import demo_sources
from screenpop.config import SourceSettings
from tests.stack import Stack

from .harness import EventTap, Inbox, eventually, start_call

DEADLINE_MS = 300
POP_BUDGET = DEADLINE_MS / 1000 + 0.5  # the deadline, plus AMI-to-socket delivery on a loaded test machine
ANA, BOB, FRANK, HECTOR = "+34912345678", "+14155550100", "+34600111222", "+6591234567"
CRM_ONLY = "+34911000004"  # a number only the hostile source knows
DEEP = "[" * 100_000 + "]" * 100_000  # nesting no JSON parser in Python survives
HUGE = "x" * 3_000_000


def garbage_crm(path) -> SourceSettings:
    """A SQLite "crm" whose rows are wrong in every way a real one can be:
    numbers where text belongs and back, NaN and 1e308, a 3 MB value,
    invalid UTF-8 bytes, JSON columns holding broken or absurdly nested
    JSON, and phone rows with no key, no phone, or junk."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE c (id, phone, name, email, vip, balance, notes, recent_orders, extra_json, photo)")
    rows = [
        ("1", ANA, 12345, ["not", "an", "email"], "maybe", "abc", HUGE, "[{\"id\": 1", None, None),
        ("2", BOB, "Bob S.", None, 2, float("inf"), None, DEEP, None, None),
        ("3", FRANK, "Frank M.", None, None, 1e308, None, None, "{not json", None),
        ("4", CRM_ONLY, "Only In CRM", "crm@example.com", None, float("nan"), None, None, None, b"\xff\xfe\x00\x81"),
        ("5", HECTOR, "Hector L.", None, None, None, None, None, DEEP, None),
        ("6", None, "no phone", None, None, None, None, None, None, None),
        (None, "+34911000007", "no key", None, None, None, None, None, None, None),
        ("8", "x" * 5000, "junk phone", None, None, None, None, None, None, None),
        ("9", 34911000009, "phone stored as a number", None, None, None, None, None, None, None),
    ]
    for row in rows:
        db.execute("INSERT INTO c VALUES (?,?,?,?,?,?,?,?,?,?)",
                   tuple(json.dumps(v) if isinstance(v, list) else v for v in row))
    db.commit()
    db.close()
    return SourceSettings(name="crm", kind="sql", dsn=f"sqlite+aiosqlite:///{path}",
                          phones_query="SELECT id, phone FROM c",
                          record_query="SELECT name, email, vip, balance, notes, recent_orders, extra_json, photo FROM c WHERE id = :key",
                          fields=["name", "email", "vip", "balance", "notes", "recent_orders", "extra", "photo"])


def fast_lookup(settings, sources):
    return replace(settings, sources=sources,
                   lookup=replace(settings.lookup, deadline_ms=DEADLINE_MS, late_ms=400, breaker_failures=3,
                                  breaker_cooldown_seconds=60))


async def call_and_pop(stack, inbox: Inbox, tap: EventTap, number: str, agent: str = "1004") -> dict:
    """A direct call to ``agent``; its pop, checked to be on time."""
    call_id, _ = start_call(stack.simulator, "direct", number, None, agents=[agent], answer_after=0.3, talk_seconds=0.3)
    await eventually(lambda: inbox.of(call_id, "pop"), timeout=5, what=f"the pop of {number}")
    delays = dict(tap.pop_delays(agent, inbox))
    assert delays[call_id] < POP_BUDGET, (number, delays[call_id])
    await eventually(lambda: inbox.of(call_id, "call", "ended"), timeout=5, what=f"the end of {number}")
    return inbox.of(call_id, "pop")[0]


async def test_a_source_answering_garbage_never_costs_the_pop_or_the_other_sources(demo_dbs, tmp_path):
    """Proves: rows with wrong types, NaN and infinities, a 3 MB value,
    invalid UTF-8 and broken or pathologically nested JSON from one source
    (and junk in its phone list) neither delay nor lose a pop: each pop
    arrives within the deadline, carries the healthy sources' data (the
    demo persona's name and balance), and a record the source cannot
    deliver is marked as that source's error with a reason.  Every call is
    logged with the customer the healthy sources named."""
    crm = garbage_crm(tmp_path / "crm.sqlite3")
    stack = Stack(demo_dbs, tmp_path, configure=lambda s: fast_lookup(s, [*demo_sources(demo_dbs), crm]))
    await stack.start()
    try:
        tap = EventTap(stack.service)
        dave = Inbox(await stack.socket("agent1004"))

        ana = (await call_and_pop(stack, dave, tap, ANA))["card"]  # wrong types and a 3 MB value: shown as text
        assert ana["status"] == "known" and ana["persons"][0]["billing"]["balance"] == "125.40"
        assert ana["sources"]["crm"]["status"] == "ok" and ana["missing_sources"] == []
        assert ana["persons"][0]["name"].startswith("Ana")  # the sales name, not the crm's 12345

        bob = (await call_and_pop(stack, dave, tap, BOB))["card"]  # DEEP in a column the merge decodes
        assert bob["status"] == "known" and bob["persons"][0]["name"].startswith("Bob")
        assert bob["sources"]["sales"]["status"] == "ok" and bob["sources"]["support"]["status"] == "ok"

        frank = (await call_and_pop(stack, dave, tap, FRANK))["card"]  # broken JSON: the crm's error, the rest intact
        assert frank["sources"]["crm"]["status"] == "error" and "not valid JSON" in frank["sources"]["crm"]["detail"]
        assert frank["missing_sources"] == ["crm"] and frank["persons"][0]["name"] == "Frank Moreno"

        hector = (await call_and_pop(stack, dave, tap, HECTOR))["card"]  # DEEP in a *_json column
        assert hector["sources"]["crm"]["status"] == "error" and hector["missing_sources"] == ["crm"]
        assert hector["persons"][0]["name"] == "Hector Lim"

        only = (await call_and_pop(stack, dave, tap, CRM_ONLY))["card"]  # NaN -> null, bytes -> hex
        person = only["persons"][0]
        assert only["status"] == "known" and person["name"] == "Only In CRM"
        assert person["billing"] == {"balance": None, "account": None} or person["billing"] is None
        assert person["extra"]["crm"]["photo"] == "fffe0081"

        token = await stack.token("supervisor")
        names = {}
        for call_id in tap.ended():
            names[tap.by_call[call_id][0].caller_number] = (await stack.logged(call_id, token))["customer_name"]
        assert names == {ANA: "Ana Garcia", BOB: "Bob Smith", FRANK: "Frank Moreno", HECTOR: "Hector Lim", CRM_ONLY: "Only In CRM"}
        assert dave.closed is None
        await dave.close()
    finally:
        await stack.stop()


class HangingCrm:
    """An HTTP business system that accepts the request and never answers
    (a hung application server), with a phone list that does answer."""

    def __init__(self):
        self.requests = 0
        self.release = asyncio.Event()
        app = web.Application()
        app.router.add_get("/phones", self.phones)
        app.router.add_get("/customers/{key}", self.customer)
        self.runner = web.AppRunner(app)
        self.url = ""

    async def start(self) -> str:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        return self.url

    async def phones(self, request):
        return web.json_response({"items": [{"key": f"k{n}", "phone": number} for n, number in enumerate((ANA, BOB, FRANK, HECTOR))]})

    async def customer(self, request):
        self.requests += 1
        await self.release.wait()
        return web.json_response({"name": "never shown"})

    async def stop(self):
        self.release.set()
        await self.runner.cleanup()


async def test_a_hanging_source_and_a_vanished_database_leave_pops_on_time_with_the_gap_named(demo_dbs, tmp_path):
    """Proves: a source that accepts requests and never answers does not
    hold the pop past the deadline; the card says it is pending, then a
    card update says it timed out; after ``breaker_failures`` such calls
    the source is skipped outright (the card says so, and it is not even
    asked).  A SQLite source whose file disappears under the running node
    gives an error naming the database as unavailable, and the pops go on
    with the other sources' data."""
    hanging = HangingCrm()
    url = await hanging.start()
    crm = SourceSettings(name="crm", kind="http", url=url + "/customers/{key}", phones_query=url + "/phones")
    copies = tmp_path / "own"  # the support database, copied so this test may delete it
    copies.mkdir()
    support_path = copies / "support.sqlite3"
    support_path.write_bytes(open(demo_dbs["support"].split("///", 1)[1], "rb").read())
    own = {**demo_dbs, "support": f"sqlite+aiosqlite:///{support_path}"}
    stack = Stack(own, tmp_path, configure=lambda s: fast_lookup(s, [*demo_sources(own), crm]))
    await stack.start()
    try:
        tap = EventTap(stack.service)
        dave = Inbox(await stack.socket("agent1004"))
        for number in (ANA, BOB, FRANK):
            pop = await call_and_pop(stack, dave, tap, number)
            card = pop["card"]
            assert card["sources"]["crm"]["status"] == "pending" and card["missing_sources"] == ["crm"]
            assert card["status"] == "known" and card["sources"]["sales"]["status"] == "ok"
            update = await eventually(lambda: dave.of(pop["call_id"], "card"), what="the late card update")
            assert update[-1]["card"]["sources"]["crm"]["status"] == "timeout"
        assert hanging.requests == 3
        pop = await call_and_pop(stack, dave, tap, HECTOR)  # the circuit is open: not asked, no wait
        assert pop["card"]["sources"]["crm"]["status"] == "skipped" and "retry in" in pop["card"]["sources"]["crm"]["detail"]
        assert hanging.requests == 3 and pop["card"]["persons"][0]["name"] == "Hector Lim"

        support_path.unlink()  # the support database is gone from under the node
        pop = await call_and_pop(stack, dave, tap, "+34913000333")  # Frank's landline: not cached yet
        card = pop["card"]
        assert card["sources"]["support"]["status"] == "error", card["sources"]
        assert "unavailable" in card["sources"]["support"]["detail"]
        assert card["persons"][0]["name"] == "Frank Moreno" and card["sources"]["sales"]["status"] == "ok"
        assert card["missing_sources"] == ["support"]  # the crm does not know the landline: no-match, not a gap
        assert dave.closed is None
        await dave.close()
    finally:
        await stack.stop()
        await hanging.stop()
