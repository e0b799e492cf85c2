"""Without Redis the phone index is saved beside the interaction log, so
`screenpop lookup` and `screenpop index stats` read what the service (or
`index rebuild`) built instead of rebuilding it, or reporting 0, in a new
process.  Real SQLite sources, the installed console script."""
from __future__ import annotations

import json
import re
import sqlite3
import time

from customer_lookup.plugin import build_lookup
from screenpop.commands.lookup import index_report
from screenpop.config import load_settings
from tests.lookup.test_cli_lookup import run, write_config
from tests.lookup.worlds import sqlite_dsn, sqlite_world

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def make_config(tmp_path, name="c.toml"):
    sales, billing = sqlite_world(tmp_path)
    return sales, write_config(tmp_path / name, sales, sqlite_dsn(billing), "SELECT account_no, email FROM accounts WHERE account_no = :key")


def test_index_stats_after_rebuild_says_what_is_stored_where_in_human_time(tmp_path):
    _, config = make_config(tmp_path)
    before = json.loads(run("index", "stats", "--config", str(config)).stdout)
    assert before["sources"]["sales"]["numbers"] == 0 and "never built" in before["sources"]["sales"]["note"]
    rebuilt = run("index", "rebuild", "--config", str(config))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert f"saved to {tmp_path / 'phone-index.sqlite3'}" in rebuilt.stderr
    stats = json.loads(run("index", "stats", "--config", str(config)).stdout)
    assert str(tmp_path / "phone-index.sqlite3") in stats["stored"] and "running service" in stats["stored"]
    sales = stats["sources"]["sales"]
    # Dora and Eloy share a switchboard: 9 numbers, 10 entries.
    assert sales["numbers"] == 9 and sales["entries"] == 10 and sales["build"]["rows"] == 10 and sales["region"] == "ES"
    assert stats["sources"]["billing"]["numbers"] == 3 and stats["numbers"] == 12
    assert ISO_UTC.match(sales["built_at"]) and sales["age"].endswith(" s ago") and "note" not in sales
    assert re.search(r"[+-]\d\d:\d\d$", sales["built_at_local"])


def test_lookup_reads_the_saved_index_instead_of_rebuilding_it(tmp_path):
    sales, config = make_config(tmp_path)
    assert run("index", "rebuild", "--config", str(config)).returncode == 0
    # A phone changed after the build: the saved index (what the service's
    # agents are answered from until its next build) still has the old one.
    with sqlite3.connect(sales) as db:
        db.execute("UPDATE customers SET phone = '+34 911 111 111' WHERE id = 1")
    card = json.loads(run("lookup", "912345678", "--json", "--config", str(config)).stdout)
    assert card["persons"][0]["keys"]["sales"] == ["1"]
    assert json.loads(run("lookup", "911111111", "--json", "--config", str(config)).stdout)["status"] == "unknown"
    # Another source definition (here its phones query) is another index: rebuilt, and saved.
    text = config.read_text().replace("SELECT id, phone FROM customers", "SELECT customers.id, customers.phone FROM customers", 1)
    other = tmp_path / "other.toml"
    other.write_text(text, encoding="utf-8")
    card = json.loads(run("lookup", "911111111", "--json", "--config", str(other)).stdout)
    assert card["persons"][0]["keys"]["sales"] == ["1"]


def test_a_stale_saved_index_is_rebuilt(tmp_path):
    sales, config = make_config(tmp_path)
    env = {"SCREENPOP_LOOKUP__INDEX_REFRESH_SECONDS": "1"}
    assert run("index", "rebuild", "--config", str(config), env=env).returncode == 0
    with sqlite3.connect(sales) as db:
        db.execute("UPDATE customers SET phone = '+34 911 111 111' WHERE id = 1")
    time.sleep(1.2)
    card = json.loads(run("lookup", "911111111", "--json", "--config", str(config), env=env).stdout)
    assert card["persons"][0]["keys"]["sales"] == ["1"]


async def test_the_service_saves_its_index_for_the_cli(tmp_path):
    _, config = make_config(tmp_path)
    settings = load_settings(str(config))
    runtime = await build_lookup(settings)
    await runtime.start()
    await runtime.close()
    stats = json.loads(run("index", "stats", "--config", str(config)).stdout)
    assert stats["numbers"] == 12 and stats["sources"]["sales"]["entries"] == 10
    report = await index_report(runtime, now=time.time() + 3 * 3600 + 125)
    assert report["sources"]["billing"]["age"] == "3 h 2 min ago"
    assert report["sources"]["billing"]["note"].startswith("stale")  # older than index_refresh_seconds


def test_rebuilding_one_source_keeps_the_others_saved(tmp_path):
    _, config = make_config(tmp_path)
    assert run("index", "rebuild", "--config", str(config)).returncode == 0
    first = json.loads(run("index", "stats", "--config", str(config)).stdout)["sources"]
    time.sleep(1.1)
    assert run("index", "rebuild", "--source", "sales", "--config", str(config)).returncode == 0
    second = json.loads(run("index", "stats", "--config", str(config)).stdout)["sources"]
    assert second["billing"]["numbers"] == 3 and second["billing"]["built_at"] == first["billing"]["built_at"]
    assert second["sales"]["built_at"] > first["sales"]["built_at"]


def test_a_lookup_on_sqlite_sources_does_not_load_sqlalchemy(tmp_path):
    """Its start-up is most of what a one-shot lookup costs (bench/RESULTS.md)."""
    import subprocess
    import sys

    _, config = make_config(tmp_path)
    assert run("index", "rebuild", "--config", str(config)).returncode == 0
    code = ("import sys; from screenpop.cli import main; status = main(['lookup', '912345678', '--config', sys.argv[1]]); "
            "print('LOADED' if 'sqlalchemy' in sys.modules else 'NOT LOADED', status)")
    result = subprocess.run([sys.executable, "-c", code, str(config)], capture_output=True, text=True, timeout=60)
    assert "Ana García" in result.stdout and result.stdout.strip().endswith("NOT LOADED 0"), result.stdout + result.stderr
