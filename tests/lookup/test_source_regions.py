"""One number, one answer: each source's stored numbers are read in its own
region, and a stored number invalid there is still found, as a *possible*
match, when the caller's national number ends with its digits.  Real SQLite
sources, the in-process, Redis and saved (CLI) indexes."""
from __future__ import annotations

import json
import sqlite3

import pytest

from customer_lookup.phones import normalize, possible_keys
from customer_lookup.plugin import build_lookup
from screenpop.config import LookupSettings, Settings, SourceSettings, StorageSettings
from tests.lookup.test_cli_lookup import run
from tests.lookup.worlds import BILLING_PHONES, SALES_PHONES, SALES_RECORD, sqlite_dsn, sqlite_world

BILLING_RECORD = "SELECT account_no, email, balance, currency FROM accounts WHERE account_no = :key"
CRM_PHONES = "SELECT id, phone FROM contacts"
CRM_RECORD = "SELECT name, email FROM contacts WHERE id = :key"


def world(tmp_path):
    sales, billing = sqlite_world(tmp_path)
    with sqlite3.connect(billing) as db:
        db.executemany("INSERT INTO accounts VALUES (?, ?, ?, ?, ?)", [
            ("AC-008", "fay@example.com", "4155550100", "3.00", "USD"),  # Fay's, typed without +1 in a Spanish system
            ("AC-099", "gus@example.com", "4155550199", "9.00", "USD"),  # nobody else has this number
            ("AC-100", "hal@example.com", "415555", "1.00", "USD"),  # too short to match anything
        ])
    crm = tmp_path / "crm.sqlite3"
    with sqlite3.connect(crm) as db:
        db.execute("CREATE TABLE contacts (id TEXT, name TEXT, email TEXT, phone TEXT)")
        db.execute("INSERT INTO contacts VALUES ('C1', 'Ivy Chen', 'ivy@example.com', '415 555 0123')")  # a US CRM: no +1
    return sales, billing, crm


def settings(tmp_path, sales, billing, crm) -> Settings:
    return Settings(
        lookup=LookupSettings(default_region="ES", deadline_ms=3000),
        storage=StorageSettings(dsn=f"sqlite+aiosqlite:///{tmp_path}/interactions.sqlite3"),
        sources=[
            SourceSettings(name="sales", kind="sql", dsn=sqlite_dsn(sales), phones_query=SALES_PHONES, record_query=SALES_RECORD),
            SourceSettings(name="billing", kind="sql", dsn=sqlite_dsn(billing), phones_query=BILLING_PHONES, record_query=BILLING_RECORD),
            SourceSettings(name="crm", kind="sql", dsn=sqlite_dsn(crm), phones_query=CRM_PHONES, record_query=CRM_RECORD,
                           default_region="US"),
        ],
    )


def test_possible_keys_are_the_tails_of_the_callers_national_number():
    keys = possible_keys(normalize("+1 415 555 0100", "ES"), {"ES", "us"})
    assert ("ES", "invalid:ES:4155550100") in keys and ("US", "invalid:US:5550100") in keys
    assert ("ES", "invalid:ES:155550100") in keys and not any(key.endswith(":550100") for _, key in keys)  # 6 digits: never
    assert possible_keys(normalize("12345", "ES"), {"ES"}) == [] and possible_keys(normalize("anonymous", "ES"), {"ES"}) == []


@pytest.fixture(params=["memory", "redis"])
async def runtime(request, tmp_path, redis_client, clean_redis_prefix):
    sales, billing, crm = world(tmp_path)
    if request.param == "redis":
        runtime = await build_lookup(settings(tmp_path, sales, billing, crm), redis=redis_client, prefix=clean_redis_prefix)
    else:
        runtime = await build_lookup(settings(tmp_path, sales, billing, crm))
    await runtime.start()
    yield runtime
    await runtime.close()


async def test_a_source_reads_its_numbers_in_its_own_region(runtime):
    card = await runtime.service.lookup("+14155550123", use_cache=False)
    assert card.status == "known" and card.person.name == "Ivy Chen"
    assert card.person.match == "sure" and card.person.possible == {}
    stats = await runtime.index.stats()
    assert stats["sources"]["crm"]["region"] == "US" and stats["sources"]["sales"]["region"] == "ES"


async def test_an_invalid_stored_number_is_a_possible_part_of_the_card(runtime):
    card = await runtime.service.lookup("+1 415 555 0100", use_cache=False)
    # Sales has Fay's number in full (sure); billing only its last ten digits: the same
    # person by email, so one person, sure, with the billing record flagged as possible.
    assert card.status == "known"
    assert card.person.name == "Fay Long" and card.person.keys == {"sales": ["8"], "billing": ["AC-008"]}
    assert card.person.match == "sure" and card.person.possible == {"billing": ["AC-008"]}
    assert card.person.billing["balance"] == "3.00"
    assert card.to_dict()["persons"][0]["possible"] == {"billing": ["AC-008"]}


async def test_a_card_found_only_on_the_last_digits_is_a_possible_match(runtime):
    card = await runtime.service.lookup("+14155550199", use_cache=False)
    assert card.status == "known" and card.person.keys == {"billing": ["AC-099"]}
    assert card.person.match == "possible"
    assert (await runtime.service.lookup("+34 91 541 55 55", use_cache=False)).status == "unknown"  # ends in 415555, too short


def test_the_cli_shows_the_possible_match(tmp_path):
    sales, billing, crm = world(tmp_path)
    config = tmp_path / "c.toml"
    config.write_text(f"""
[lookup]
default_region = "ES"
deadline_ms = 3000

[storage]
dsn = "sqlite+aiosqlite:///{tmp_path}/interactions.sqlite3"

[[sources]]
name = "billing"
kind = "sql"
dsn = "{sqlite_dsn(billing)}"
phones_query = "{BILLING_PHONES}"
record_query = "{BILLING_RECORD}"

[[sources]]
name = "crm"
kind = "sql"
default_region = "US"
dsn = "{sqlite_dsn(crm)}"
phones_query = "{CRM_PHONES}"
record_query = "{CRM_RECORD}"
""", encoding="utf-8")
    assert run("index", "rebuild", "--config", str(config)).returncode == 0  # the saved index answers the lookups below
    card = json.loads(run("lookup", "+14155550199", "--json", "--config", str(config)).stdout)
    assert card["persons"][0]["match"] == "possible" and card["persons"][0]["possible"] == {"billing": ["AC-099"]}
    text = run("lookup", "+14155550199", "--config", str(config)).stdout
    assert "possible match" in text
    assert json.loads(run("lookup", "+14155550123", "--json", "--config", str(config)).stdout)["persons"][0]["name"] == "Ivy Chen"


async def test_a_shared_index_read_under_another_region_is_rebuilt(tmp_path, redis_client, clean_redis_prefix):
    sales, billing, crm = world(tmp_path)
    before = settings(tmp_path, sales, billing, crm)
    before.sources[2].default_region = ""  # first read as Spanish numbers, as before the source said otherwise
    first = await build_lookup(before, redis=redis_client, prefix=clean_redis_prefix)
    await first.start()
    assert (await first.service.lookup("+14155550123", use_cache=False)).person.match == "possible"  # ES: invalid there
    await first.close()
    # Another node starts with the source's own region: "built recently" is not enough.
    second = await build_lookup(settings(tmp_path, sales, billing, crm), redis=redis_client, prefix=clean_redis_prefix)
    await second.start()
    try:
        card = await second.service.lookup("+14155550123", use_cache=False)
        assert card.person.name == "Ivy Chen" and card.person.match == "sure"
    finally:
        await second.close()
