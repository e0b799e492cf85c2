"""The seeded demo world: untidy like a real company's, on SQLite and PostgreSQL."""
from __future__ import annotations

import re

from sqlalchemy import text

from adapters.demo import names
from adapters.demo.personas import SHARED_NUMBER, UNKNOWN_NUMBERS
from adapters.engine import make_engine
from customer_lookup.merge import SourceRecord, merge
from screenpop.demo import DEMO_CALLERS
from tests.adapters.conftest import WORLD_CUSTOMERS
from tests.adapters.helpers import e164, fetch, phone_index, phone_rows

ANA = {"sales": "101", "billing": "AC-000123", "support": "a0000000-0000-4000-8000-000000000001"}
MALLORY = {"sales": "107", "billing": "AC-000127", "support": "a0000000-0000-4000-8000-000000000004"}

# One regex per way the three systems write numbers; each must be present.
FORMATS = {
    "international with spaces": r"^\+\d{1,3} \d[\d ]+$",
    "E.164": r"^\+\d{8,15}$",
    "00 prefix": r"^00\d{9,15}$",
    "00 prefix with space": r"^00\d{1,3} \d+$",
    "national with spaces": r"^\d{3} \d{3} \d{3}$",
    "national digits only": r"^[6-9]\d{8}$",
    "dashes": r"^\d{3}-\d{2}-\d{2}-\d{2}$",
    "parentheses": r"^\(\d{2,3}\) \d{3}-\d{4}$",
    "extension": r"(ext\.? ?\d+| x\d+)$",
    "international with parentheses": r"^\+\d{1,2} \(\d+\)",
}


async def test_every_phone_format_is_present(world):
    dsns, _ = world
    rows = await phone_rows(dsns)
    phones = [phone for system_rows in rows.values() for _, phone in system_rows]
    missing = [label for label, pattern in FORMATS.items() if not any(re.search(pattern, p) for p in phones)]
    assert not missing, f"no stored phone looks like: {missing}"
    # Each system has its own habits: no format is shared by all three.
    per_system = {s: {re.sub(r"\d", "9", p) for _, p in r} for s, r in rows.items()}
    assert not (per_system["sales"] & per_system["billing"] & per_system["support"] - {"+99 999 99 99 99"})
    # Almost every stored number still means a real number once normalized.
    valid = sum(1 for p in phones if e164(p))
    assert valid / len(phones) > 0.97


async def test_personas_are_found_by_the_numbers_the_demo_dials(world):
    dsns, _ = world
    index = await phone_index(dsns)
    expected = {
        "+34912345678": {("sales", "101"), ("billing", "AC-000123"), ("support", ANA["support"])},
        "+14155550100": {("sales", "102"), ("support", "a0000000-0000-4000-8000-000000000002")},
        "0034912345679": {("billing", "AC-000124")},
        "912345680": {("sales", "105"), ("sales", "106"), ("billing", "AC-000126")},
        "+34600111222": {("sales", "103"), ("billing", "AC-000125"), ("support", "a0000000-0000-4000-8000-000000000003")},
        "+6591234567": {("sales", "104")},
    }
    dialled = {number for number, _ in DEMO_CALLERS if number}
    assert set(expected) | set(UNKNOWN_NUMBERS) == dialled
    for number, keys in expected.items():
        assert index.get(e164(number)) == keys, number
    for number in UNKNOWN_NUMBERS:
        assert e164(number) not in index
    assert e164("912345680") == SHARED_NUMBER


async def test_ana_pops_with_balance_orders_and_an_open_ticket(world):
    dsns, _ = world
    records = [SourceRecord(s, k, await fetch(dsns, s, k)) for s, k in ANA.items()]
    (ana,) = merge(records, ["sales", "billing", "support"])
    assert ana.name == "Ana Garcia"
    assert ana.billing["balance"] == "125.40" and ana.billing["currency"] == "EUR"
    assert ana.billing["balance_as_of"] == "2026-11-23T02:00:00.000000Z"
    assert [o["total"] for o in ana.sales["recent_orders"]] == ["19.98", "1119.30", "79.00", "649.00"]
    assert [t["subject"] for t in ana.support["open_tickets"]] == ["La lavadora hace ruido"]
    assert ana.keys == {s: [k] for s, k in ANA.items()}


async def test_shared_switchboard_gives_two_people(world):
    dsns, _ = world
    index = await phone_index(dsns)
    records = [SourceRecord(s, k, await fetch(dsns, s, k)) for s, k in sorted(index[SHARED_NUMBER])]
    persons = merge(records, ["sales", "billing", "support"])
    assert sorted(p.name for p in persons) == ["Irene Vidal", "Jorge Soler"]
    irene = next(p for p in persons if p.name == "Irene Vidal")
    assert irene.billing["balance"] == "1210.00"  # linked by her account number only


async def test_random_customers_share_company_numbers_and_have_two_phones(world):
    dsns, _ = world
    index = await phone_index(dsns)
    shared = [n for n, keys in index.items() if len({k for s, k in keys if s == "sales"}) > 1 and n != SHARED_NUMBER]
    assert len(shared) >= 10
    rows = (await phone_rows(dsns))["sales"]
    per_key: dict[str, int] = {}
    for key, _ in rows:
        per_key[key] = per_key.get(key, 0) + 1
    assert sum(1 for n in per_key.values() if n == 2) > WORLD_CUSTOMERS // 10


async def _column(dsn: str, sql: str) -> list:
    engine = make_engine(dsn)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql))).scalars())
    finally:
        await engine.dispose()


async def test_systems_link_only_by_email_or_account_and_some_know_one_system(world):
    dsns, _ = world
    sales_accounts = await _column(dsns["sales"], "SELECT billing_account FROM customers WHERE billing_account IS NOT NULL")
    accounts = set(await _column(dsns["billing"], "SELECT account_no FROM accounts"))
    tidy = [a for a in sales_accounts if a in accounts]
    untidy = [a for a in sales_accounts if a not in accounts and a.strip().upper() in accounts]
    dangling = [a for a in sales_accounts if a.strip().upper() not in accounts]
    assert len(tidy) > 200 and untidy and dangling
    sales_mail = await _column(dsns["sales"], "SELECT email FROM customers WHERE email IS NOT NULL")
    support_mail = await _column(dsns["support"], "SELECT email FROM contacts WHERE email IS NOT NULL")
    exact = set(sales_mail) & set(support_mail)
    folded = {m.strip().lower() for m in sales_mail} & {m.strip().lower() for m in support_mail}
    assert len(exact) > 100 and len(folded) > len(exact)  # same person, other case
    # Keys differ per system: integers, AC-numbers, uuids.
    assert all(re.fullmatch(r"AC-\d{6}", a) for a in accounts)
    sales_ids = {int(k) for k in await _column(dsns["sales"], "SELECT customer_id FROM customers")}
    only_sales = [k for k in sales_ids if k >= 1000 and f"AC-{k:06d}" not in accounts]
    only_billing = [a for a in accounts if int(a[3:]) >= 1000 and int(a[3:]) not in sales_ids]
    assert only_sales and only_billing


async def test_hostile_strings_come_back_byte_for_byte(world):
    dsns, _ = world
    sales = await fetch(dsns, "sales", MALLORY["sales"])
    billing = await fetch(dsns, "billing", MALLORY["billing"])
    support = await fetch(dsns, "support", MALLORY["support"])
    assert sales["first_name"] == names.SCRIPT
    assert sales["last_name"] == names.HOSTILE_NAMES[1] and sales["company"] == names.HOSTILE_NAMES[2]
    assert sales["notes"] == names.HOSTILE_NOTE  # tabs, CRLF, RTL override, emoji, 2 KB
    assert billing["name"] == names.HOSTILE_NAMES[5]
    assert support["name"] == names.HOSTILE_NAMES[3] and "\u202e" in support["name"]
    assert support["company"] == names.HOSTILE_NAMES[6]
    assert support["open_tickets"][0]["subject"] == names.SCRIPT + " no funciona"
    assert support["open_tickets"][0]["last_update"] == names.HOSTILE_NOTE
    # Random customers carry hostile names too, now and then.
    hostile = await _column(dsns["sales"], "SELECT first_name FROM customers WHERE customer_id >= 1000")
    assert set(hostile) & set(names.HOSTILE_NAMES)


async def test_row_counts_match_the_plan(world):
    dsns, result = world
    for name, count in result.rows.items():
        system, table = name.split(".")
        (actual,) = await _column(dsns[system], f"SELECT count(*) FROM {table}")
        assert actual == count, name
    assert result.customers == WORLD_CUSTOMERS


async def test_frank_has_two_numbers_and_each_finds_him_everywhere(world):
    dsns, _ = world
    index = await phone_index(dsns)
    frank = {("sales", "103"), ("billing", "AC-000125"), ("support", "a0000000-0000-4000-8000-000000000003")}
    assert index[e164("+34600111222")] == frank
    assert index[e164("+34913000333")] == frank  # landline, stored with "ext 12" in support
    records = [SourceRecord(s, k, await fetch(dsns, s, k)) for s, k in sorted(frank)]
    (person,) = merge(records, ["sales", "billing", "support"])
    assert person.vip and person.name == "Frank Moreno" and person.billing["balance"] == "0.00"
    assert [t["priority"] for t in person.support["open_tickets"]] == ["urgent"]


async def test_single_system_personas(world):
    dsns, _ = world
    carla = await fetch(dsns, "billing", "AC-000124")
    assert carla["name"] == "Carla Ruiz" and carla["overdue_amount"] == "240.00" and carla["balance"] == "359.90"
    assert [i["status"] for i in carla["invoices"]] == ["open", "overdue", "overdue", "paid"]
    hector = await fetch(dsns, "sales", "104")
    assert (hector["first_name"], hector["company"]) == ("Hector", "Lim Trading Pte Ltd")
    for system, key in (("sales", "AC-000124"), ("billing", "104"), ("support", "104")):
        assert await fetch(dsns, system, key) is None


async def test_every_balance_comes_from_one_nightly_snapshot_or_an_older_one(world):
    """The personas' accounts and the generated ones are stamped with the same
    snapshot time, read once per seed; none is newer (a balance pushed later
    must always win over the seeded one)."""
    dsns, _ = world
    stamps = [str(s)[:19] for s in await _column(dsns["billing"], "SELECT balance_as_of FROM accounts")]
    assert max(stamps) == "2026-11-23 02:00:00"
    assert stamps.count(max(stamps)) > len(stamps) * 0.9  # all but the few whose nightly run failed
