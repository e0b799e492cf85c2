"""`screenpop seed` and ``seed_demo``: defaults, progress, refusing to
overwrite, PostgreSQL, determinism, and the shipped demo sources."""
from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest

from adapters.demo import SYSTEMS, SeedError, SeedExists, demo_sources, ensure_seeded, seed_demo
from screenpop.cli import main
from screenpop.commands.seed import ProgressLine
from screenpop.config import load_settings
from tests.adapters.conftest import TODAY
from tests.adapters.helpers import fetch

ROOT = Path(__file__).resolve().parents[2]


def _flags(dsns: dict[str, str]) -> list[str]:
    return [arg for system, dsn in dsns.items() for arg in (f"--{system}-dsn", dsn)]


def _dump(path: Path) -> list:
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return [(t, conn.execute(f'SELECT * FROM "{t}" ORDER BY 1').fetchall()) for t in tables]


def test_seed_defaults_to_sqlite_files_under_var_demo(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["seed", "--customers", "300", "--seed", "3"]) == 0
    for system in SYSTEMS:
        assert (tmp_path / "var" / "demo" / f"{system}.sqlite3").stat().st_size > 10_000
    err = capsys.readouterr().err
    # Not a terminal: whole lines, no carriage returns, ending at 100 %.
    assert "\r" not in err and "seed load    100% 300/300 customers" in err
    assert "seed index" in err and "seeded 300 customers" in err
    assert len(err.splitlines()) <= 16


def test_seed_refuses_to_overwrite_without_force(sqlite_dsns, capsys):
    assert main(["seed", "--customers", "50", *_flags(sqlite_dsns)]) == 0
    before = _dump(Path(sqlite_dsns["sales"].split("///", 1)[1]))
    capsys.readouterr()
    assert main(["seed", "--customers", "80", "--quiet", *_flags(sqlite_dsns)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("screenpop: sales database ")
    assert "already has demo tables" in err and "--force" in err
    assert _dump(Path(sqlite_dsns["sales"].split("///", 1)[1])) == before  # untouched
    assert main(["seed", "--customers", "80", "--seed", "9", "--force", "--quiet", *_flags(sqlite_dsns)]) == 0
    assert _dump(Path(sqlite_dsns["sales"].split("///", 1)[1])) != before


def test_seed_keeps_other_tables_of_a_shared_database(tmp_path):
    path = tmp_path / "company.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO employees VALUES (1, 'Marta')")
    dsn = f"sqlite+aiosqlite:///{path}"
    assert main(["seed", "--customers", "20", "--quiet", "--sales-dsn", dsn, "--billing-dsn", dsn, "--support-dsn", dsn]) == 0
    assert main(["seed", "--customers", "20", "--quiet", "--force", "--sales-dsn", dsn, "--billing-dsn", dsn, "--support-dsn", dsn]) == 0
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT name FROM employees").fetchall() == [("Marta",)]
        assert conn.execute("SELECT count(*) FROM accounts").fetchone()[0] > 5


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["seed", "--customers", "many"])
    assert exit_.value.code == 2 and "not a whole number" in capsys.readouterr().err
    assert main(["seed", "--customers", "1", "--quiet", "--sales-dsn", "postgresql+asyncpg://root@127.0.0.1:1/x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot connect" in err


def test_progress_redraws_one_line_on_a_terminal(sqlite_dsns):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    import asyncio

    asyncio.run(seed_demo(sqlite_dsns, 3000, 1, ProgressLine(screen), today=TODAY))
    out = screen.getvalue()
    assert out.count("\r") >= 2 and out.count("\n") == 1 and out.endswith("\n")
    assert "[" + "#" * 30 + "] seed done    100%" in out


async def test_seed_into_postgresql_through_the_cli(pg_dsns, capsys):
    import asyncio

    code = await asyncio.to_thread(main, ["seed", "--customers", "400", *_flags(pg_dsns)])
    assert code == 0 and "seeded 400 customers" in capsys.readouterr().err
    record = await fetch(pg_dsns, "billing", "AC-000124")
    assert record["name"] == "Carla Ruiz" and record["overdue_amount"] == "240.00"
    with pytest.raises(SeedError, match="already has demo tables"):
        await seed_demo(pg_dsns, 10, 1)
    await seed_demo(pg_dsns, 10, 1, force=True)


async def test_seed_creates_a_missing_postgresql_database_and_a_schema():
    from tests.adapters.conftest import create_pg_database, drop_pg_database
    from sqlalchemy.engine import make_url

    base = await create_pg_database("sp_schema")
    missing = make_url(base).set(database=make_url(base).database + "_new").render_as_string(hide_password=False)
    dsns = {"sales": base + "?search_path=sales", "billing": base + "?search_path=billing", "support": missing}
    try:
        await seed_demo(dsns, 50, 1, today=TODAY)
        assert (await fetch(dsns, "sales", "104"))["last_name"] == "Lim"
        assert (await fetch(dsns, "billing", "AC-000123"))["balance"] == "125.40"
        assert (await fetch(dsns, "support", "a0000000-0000-4000-8000-000000000002"))["name"] == "Bob Smith"
    finally:
        await drop_pg_database(base)
        await drop_pg_database(missing)


async def test_same_seed_same_data_other_seed_other_data(tmp_path):
    def dsns(name):
        return {s: f"sqlite+aiosqlite:///{tmp_path}/{name}-{s}.sqlite3" for s in SYSTEMS}

    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        await seed_demo(dsns(name), 400, seed, today=TODAY)
    for system in SYSTEMS:
        a, b, c = (_dump(tmp_path / f"{n}-{system}.sqlite3") for n in "abc")
        assert a == b and a != c


async def test_bad_seed_arguments():
    with pytest.raises(SeedError, match="between 0"):
        await seed_demo({}, -1, 1)
    with pytest.raises(SeedError, match="unknown system"):
        await seed_demo({"crm": "sqlite+aiosqlite:///x"}, 1, 1)


def test_demo_config_carries_the_demo_sources():
    settings = load_settings(ROOT / "config" / "demo.toml", env={})
    assert settings.sources == demo_sources()
    assert [s.dsn for s in settings.sources] == [f"sqlite+aiosqlite:///var/demo/{s}.sqlite3" for s in SYSTEMS]


async def test_a_failed_seed_leaves_nothing_behind(engine_dsns):
    dsns = engine_dsns

    def explode(progress):
        if progress.customers_done >= 2000:
            raise RuntimeError("disk on fire")

    with pytest.raises(SeedError, match="disk on fire"):
        await seed_demo(dsns, 5000, 1, explode, today=TODAY)
    await seed_demo(dsns, 10, 1, today=TODAY)  # no --force needed: nothing was kept


async def test_ensure_seeded_keeps_complete_data_and_repairs_partial_data(sqlite_dsns, tmp_path):
    first = await ensure_seeded(sqlite_dsns, 30, 1)
    assert first is not None and first.customers == 30
    before = _dump(tmp_path / "sales.sqlite3")
    assert await ensure_seeded(sqlite_dsns, 500, 1) is None
    assert _dump(tmp_path / "sales.sqlite3") == before  # kept as it was
    with sqlite3.connect(tmp_path / "support.sqlite3") as conn:
        conn.execute("DROP TABLE tickets")
    again = await ensure_seeded(sqlite_dsns, 40, 1)
    assert again is not None and again.customers == 40
    with pytest.raises(SeedExists) as exists:
        await seed_demo(sqlite_dsns, 40, 1)
    assert exists.value.complete


async def test_dsns_without_an_async_driver_get_one(tmp_path):
    from tests.conftest import POSTGRES_DSN
    from adapters.engine import async_url

    assert async_url("postgresql://u@h/db").drivername == "postgresql+asyncpg"
    assert async_url("postgres://u@h/db").drivername == "postgresql+asyncpg"
    assert async_url(POSTGRES_DSN).drivername == "postgresql+asyncpg"
    dsns = {s: f"sqlite:///{tmp_path}/{s}.db" for s in SYSTEMS}
    await seed_demo(dsns, 5, 1, today=TODAY)
    assert (await fetch(dsns, "billing", "AC-000123"))["balance"] == "125.40"
