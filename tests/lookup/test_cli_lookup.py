"""`screenpop lookup` and `screenpop index` as a user runs them: the installed
console script, a TOML file, real SQLite and PostgreSQL sources, real Redis."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL
from tests.lookup.worlds import BILLING_PHONES, HOSTILE_NAME, PG_BILLING_RECORD, SALES_PHONES, SALES_RECORD, PgSchema, sqlite_dsn, sqlite_world

SCREENPOP = Path(sys.executable).with_name("screenpop")


def run(*args, env: dict | None = None):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SCREENPOP_")}
    environment.update(env or {})
    return subprocess.run([str(SCREENPOP), *args], capture_output=True, timeout=60, env=environment, text=True)


def write_config(path: Path, sales: Path, billing_dsn: str, billing_record: str, deadline_ms: int = 2000) -> Path:
    path.write_text(
        f"""
[lookup]
default_region = "ES"
deadline_ms = {deadline_ms}

[storage]
dsn = "sqlite+aiosqlite:///{path.parent}/interactions.sqlite3"

[[sources]]
name = "sales"
kind = "sql"
dsn = "{sqlite_dsn(sales)}"
phones_query = "{SALES_PHONES}"
record_query = "{SALES_RECORD}"

[[sources]]
name = "billing"
kind = "sql"
dsn = "{billing_dsn}"
phones_query = "{BILLING_PHONES}"
record_query = "{billing_record}"
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
async def pg_schema():
    schema = await PgSchema().create()
    yield schema
    await schema.drop()


@pytest.fixture
def config(tmp_path, pg_schema):
    sales, _ = sqlite_world(tmp_path)
    return write_config(tmp_path / "screenpop.toml", sales, pg_schema.dsn, PG_BILLING_RECORD)


def test_lookup_json_prints_the_card(config):
    result = run("lookup", "0034 912 34 56 78", "--json", "--config", str(config))
    assert result.returncode == 0, result.stderr
    card = json.loads(result.stdout)
    assert card["status"] == "known" and card["e164"] == "+34912345678" and card["caller_number"] == "0034 912 34 56 78"
    (person,) = card["persons"]
    assert person["name"] == "Ana García" and person["keys"] == {"sales": ["1"], "billing": ["AC-001"]}
    assert person["billing"]["balance"] == "-42.10"  # numeric from PostgreSQL, as text
    assert {name: s["status"] for name, s in card["sources"].items()} == {"sales": "ok", "billing": "ok"}
    assert card["missing_sources"] == []


def test_global_config_option_works_too(config):
    result = run("--config", str(config), "lookup", "+34699999999", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["persons"][0]["name"] == HOSTILE_NAME


def test_lookup_text_shows_a_slow_source_as_a_gap(tmp_path, pg_schema):
    import asyncio

    asyncio.run(pg_schema.execute("UPDATE accounts SET delay = 3"))
    sales, _ = sqlite_world(tmp_path)
    config = write_config(tmp_path / "slow.toml", sales, pg_schema.dsn, PG_BILLING_RECORD)
    result = run("lookup", "912345678", "--config", str(config), "--deadline-ms", "200")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Known caller: +34912345678")
    assert "Ana García" in result.stdout and "source billing: timeout" in result.stdout
    assert "no answer within 200 ms" in result.stdout


def test_lookup_unknown_and_withheld(config):
    unknown = json.loads(run("lookup", "+34 987 654 321", "--json", "--config", str(config)).stdout)
    assert unknown["status"] == "unknown" and unknown["persons"] == []
    withheld = run("lookup", "anonymous", "--config", str(config))
    assert withheld.returncode == 0 and withheld.stdout.startswith("Withheld number")


def test_index_rebuild_reports_progress_in_redis(config, redis_client, clean_redis_prefix):
    env = {"SCREENPOP_BUS__REDIS_URL": REDIS_URL, "SCREENPOP_LOOKUP__REDIS_PREFIX": clean_redis_prefix}
    result = run("index", "rebuild", "--config", str(config), env=env)
    assert result.returncode == 0, result.stderr
    assert "index sales: 10 rows read" in result.stderr
    assert "index sales: done, 10 rows: 9 indexed, 1 flagged (short/invalid), 0 skipped" in result.stderr
    assert "index billing: done, 3 rows: 3 indexed" in result.stderr
    stats = json.loads(run("index", "stats", "--config", str(config), env=env).stdout)
    assert stats["sources"]["sales"]["build"]["rows"] == 10
    assert stats["stored"].startswith(f"Redis {REDIS_URL}, shared by every node")
    assert stats["sources"]["sales"]["numbers"] == 9 and stats["sources"]["sales"]["built_at"].endswith("Z")
    assert stats["sources"]["sales"]["age"].endswith("s ago") and stats["sources"]["sales"]["region"] == "ES"
    # A lookup now uses the shared index without rebuilding it.
    card = json.loads(run("lookup", "600112233", "--json", "--config", str(config), env=env).stdout)
    assert card["persons"][0]["name"] == "Ana García"


def test_index_rebuild_failure_exits_1(tmp_path):
    sales, billing = sqlite_world(tmp_path)
    config = write_config(tmp_path / "c.toml", sales, sqlite_dsn(billing), "SELECT * FROM accounts WHERE account_no = :key")
    billing.unlink()
    result = run("index", "rebuild", "--config", str(config))
    assert result.returncode == 1
    assert "index billing: FAILED: database unavailable" in result.stderr
    assert "index sales: done" in result.stderr
    assert "no [bus] redis_url" in result.stderr
    bad = run("index", "rebuild", "--source", "nope", "--config", str(config))
    assert bad.returncode == 2 and "no source named nope" in bad.stderr and "Traceback" not in bad.stderr


def test_lookup_without_sources_is_an_error_not_an_unknown_caller(tmp_path):
    empty = tmp_path / "nosources.toml"
    empty.write_text('[lookup]\ndefault_region = "ES"\n', encoding="utf-8")
    result = run("lookup", "+34912345678", "--config", str(empty))
    assert result.returncode == 2
    # The last line is the error (a line before it may say which config is used).
    assert result.stderr.strip().splitlines()[-1].startswith(f"screenpop: no sources configured in {empty}; ")
    assert "Traceback" not in result.stderr and "Unknown caller" not in result.stdout


def test_lookup_output_neutralises_control_characters(tmp_path):
    import sqlite3

    sales, billing = sqlite_world(tmp_path)
    with sqlite3.connect(sales) as db:
        db.execute("UPDATE customers SET name = ? WHERE id = 6", ("Eve\x1b]0;pwned\x07\x1b[2J\x9b1m\nsource billing: ok",))
    config = write_config(tmp_path / "c.toml", sales, sqlite_dsn(billing), "SELECT account_no, email FROM accounts WHERE account_no = :key")
    text = run("lookup", "+34699999999", "--config", str(config))
    assert text.returncode == 0, text.stderr
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in text.stdout
    assert "Eve\\x1b]0;pwned\\x07\\x1b[2J\\x9b1m\\nsource billing: ok" in text.stdout
    assert len([line for line in text.stdout.splitlines() if line.startswith("  source billing")]) == 1  # no forged line
    as_json = run("lookup", "+34699999999", "--json", "--config", str(config))
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in as_json.stdout
    assert json.loads(as_json.stdout)["persons"][0]["name"].startswith("Eve\x1b]0;pwned")  # same value for a parser
