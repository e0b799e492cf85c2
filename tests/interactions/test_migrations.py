"""Alembic migrations on both engines: the migrated schema is exactly the
models (autogenerate finds nothing to do), upgrading again does nothing,
concurrent upgrades on PostgreSQL are serialized, and the CLI prints every
revision it applies."""
from __future__ import annotations

import asyncio
import importlib
from datetime import datetime, timedelta, timezone

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from screenpop.cli import main
from screenpop.db import create_engine, metadata
from screenpop.interactions.migrate import current_revisions, head_revisions, migrate
from screenpop.interactions.models import interaction_notes, interactions
from tests.migrations import downgrade_to

OURS = {interactions.name, interaction_notes.name}


def _diff(sync_conn):
    def include(obj, name, type_, reflected, compare_to):
        table = obj if type_ == "table" else getattr(obj, "table", None)
        # Only the interaction log's tables: other packages' tables arrive
        # with their own revisions and are checked by their own tests.
        return table is None or table.name in OURS

    context = MigrationContext.configure(sync_conn, opts={"compare_type": True, "include_object": include})
    return compare_metadata(context, metadata)


async def test_migrated_schema_equals_the_models(dsn):
    lines: list[str] = []
    applied = await migrate(dsn, progress=lines.append)
    assert applied[0] == "0001_interactions"
    assert any("revision=0001_interactions" in line for line in lines)
    engine = create_engine(dsn)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            assert OURS <= tables
            fks = await conn.run_sync(lambda c: inspect(c).get_foreign_keys("interaction_notes"))
            assert fks[0]["name"] == "fk_interaction_notes_call_id_interactions"
    finally:
        await engine.dispose()
    assert await migrate(dsn) == []  # safe at every start
    assert await current_revisions(dsn) == head_revisions()


async def test_concurrent_upgrades_on_postgresql_apply_once(pg_dsn):
    results = await asyncio.gather(*(migrate(pg_dsn) for _ in range(3)))
    first, *others = sorted(results, key=len, reverse=True)
    assert first[0] == "0001_interactions" and others == [[], []]
    assert await current_revisions(pg_dsn) == head_revisions()


async def test_concurrent_upgrades_from_separate_processes(pg_dsn):
    import sys

    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "screenpop.cli", "db", "upgrade", "--dsn", pg_dsn,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(3)
    ]
    outputs = [await p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    applied = [out.decode() for out, _ in outputs if b"revision=0001_interactions doc=" in out]
    assert len(applied) == 1  # one process migrated, the others found it done
    assert await current_revisions(pg_dsn) == head_revisions()


def test_cli_db_upgrade_prints_each_revision(tmp_path, capsys):
    config = tmp_path / "screenpop.toml"
    config.write_text(f'[storage]\ndsn = "sqlite+aiosqlite:///{tmp_path}/log.sqlite3"\n')
    assert main(["db", "upgrade", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "migration applied step=upgrade revision=0001_interactions" in out
    assert "database at head, 0 revision(s)" not in out
    assert main(["db", "upgrade", "--config", str(config)]) == 0
    assert "0 revision(s) applied" in capsys.readouterr().out
    assert main(["db", "current", "--config", str(config)]) == 0
    assert "up to date" in capsys.readouterr().out


def test_cli_db_upgrade_reports_an_unreachable_database(capsys):
    assert main(["db", "upgrade", "--dsn", "postgresql+asyncpg://root@127.0.0.1:1/nowhere"]) == 1
    assert "migration failed" in capsys.readouterr().err


def _indexes(sync_conn) -> dict[str, list[str]]:
    return {ix["name"]: ix["column_names"] for ix in inspect(sync_conn).get_indexes("interactions")}


def _columns(sync_conn) -> set[str]:
    return {column["name"] for column in inspect(sync_conn).get_columns("interactions")}


async def test_0004_adds_the_recent_calls_index_and_takes_only_it_away(dsn):
    module = importlib.import_module("screenpop.migrations.versions.0004_recent_calls_index")
    assert (module.revision, module.down_revision) == ("0004_recent_calls_index", "0003_security")
    await migrate(dsn)
    await downgrade_to(dsn, "0004_recent_calls_index")
    engine = create_engine(dsn)
    try:
        async with engine.connect() as conn:
            at_0004 = await conn.run_sync(_indexes)
        assert at_0004["ix_interactions_last_event_at"] == ["last_event_at", "call_id"]
        await downgrade_to(dsn, "0003_security")
        async with engine.connect() as conn:
            assert await conn.run_sync(_indexes) == {k: v for k, v in at_0004.items() if k != "ix_interactions_last_event_at"}
    finally:
        await engine.dispose()


async def test_0005_stamps_the_recent_calls_and_moves_the_recent_changes_index(dsn):
    """0005 adds ``events_written_at`` to a log that already holds calls: the
    calls of the last two days take their ``last_event_at`` as a first write
    time (so the figures can settle them), older calls none; the index of
    recent changes moves from ``last_event_at`` to it; a downgrade gives back
    0004's schema."""
    module = importlib.import_module("screenpop.migrations.versions.0005_events_written_at")
    assert (module.revision, module.down_revision) == ("0005_events_written_at", "0004_recent_calls_index")
    await migrate(dsn)
    engine = create_engine(dsn)
    try:
        async with engine.connect() as conn:
            at_head = await conn.run_sync(_indexes)
        assert at_head["ix_interactions_events_written_at"] == ["events_written_at", "call_id"]
        assert "ix_interactions_last_event_at" not in at_head

        await downgrade_to(dsn, "0004_recent_calls_index")
        async with engine.connect() as conn:
            at_0004, columns = await conn.run_sync(_indexes), await conn.run_sync(_columns)
        assert "events_written_at" not in columns and "ix_interactions_events_written_at" not in at_0004
        assert at_0004["ix_interactions_last_event_at"] == ["last_event_at", "call_id"]
        now = datetime.now(timezone.utc).replace(microsecond=0)
        calls = {"today.1": now - timedelta(hours=3), "last-week.1": now - timedelta(days=7)}
        empty = {"customer_keys": {}, "agents_rung": [], "ring_times": {}, "answer_times": {}, "transfers": []}
        async with engine.begin() as conn:  # only 0004's columns: the table as it was
            await conn.execute(interactions.insert(), [{"call_id": cid, "last_event_at": at, **empty} for cid, at in calls.items()])

        assert (await migrate(dsn))[0] == "0005_events_written_at"
        async with engine.connect() as conn:
            assert await conn.run_sync(_indexes) == at_head
            stamped = dict((await conn.execute(select(interactions.c.call_id, interactions.c.events_written_at))).all())
        assert stamped == {"today.1": calls["today.1"], "last-week.1": None}
    finally:
        await engine.dispose()


async def test_0006_admits_the_support_role_and_fills_in_the_agents_each_call_was_offered_to(dsn):
    """0006 on a log that already holds calls: every call gets the agents it
    was offered to (rung, answered, in a transfer), so an agent's search
    finds their old calls too; the users' role check admits ``support``; a
    downgrade gives back 0005's schema (and its check refuses support)."""
    from screenpop.auth.models import users

    module = importlib.import_module("screenpop.migrations.versions.0006_support_role")
    assert (module.revision, module.down_revision) == ("0006_support_role", "0005_events_written_at")
    await migrate(dsn)
    await downgrade_to(dsn, "0005_events_written_at")
    engine = create_engine(dsn)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    user = {"username": "sue", "role": "support", "agent_id": None, "password_hash": "x", "disabled": False,
            "failed_logins": 0, "created_at": now, "password_changed_at": now}
    try:
        async with engine.connect() as conn:
            assert "offered_agents" not in await conn.run_sync(_columns)
        try:
            async with engine.begin() as conn:
                await conn.execute(users.insert(), [user])
        except Exception as exc:  # 0005's check: no support role yet
            assert "CHECK" in str(exc).upper() or "check" in str(exc)
        else:
            raise AssertionError("0005's role check admitted a support account")
        empty = {"customer_keys": {}, "agents_rung": [], "ring_times": {}, "answer_times": {}, "transfers": []}
        calls = {
            "rung.1": {**empty, "agents_rung": ["1001", "1002"], "answer_times": {"1002": "x"}, "answered_by": "1002"},
            "moved.1": {**empty, "agents_rung": ["1003"], "answered_by": "1003",
                        "transfers": [{"from_agent": "1003", "to_agent": "1004", "to_queue": None}]},
            "abandoned.1": {**empty, "answered_by": None},
        }
        async with engine.begin() as conn:  # 0005's columns only
            await conn.execute(interactions.insert(), [{"call_id": cid, **row} for cid, row in calls.items()])

        assert await migrate(dsn) == ["0006_support_role", "0007_call_truth"]
        async with engine.connect() as conn:
            offered = dict((await conn.execute(select(interactions.c.call_id, interactions.c.offered_agents))).all())
        assert offered == {"rung.1": "|1001|1002|", "moved.1": "|1003|1004|", "abandoned.1": None}
        async with engine.begin() as conn:
            await conn.execute(users.insert(), [user])
            assert (await conn.execute(select(users.c.role).where(users.c.username == "sue"))).scalar_one() == "support"
        await downgrade_to(dsn, "0005_events_written_at")
        async with engine.connect() as conn:
            assert "offered_agents" not in await conn.run_sync(_columns)
            assert (await conn.execute(select(users.c.username))).all() == []
    finally:
        await engine.dispose()


async def test_0007_adds_presentation_unreached_and_reconciled_and_drops_them_again(dsn):
    module = importlib.import_module("screenpop.migrations.versions.0007_call_truth")
    assert (module.revision, module.down_revision) == ("0007_call_truth", "0006_support_role")
    await migrate(dsn)
    engine = create_engine(dsn)
    new = {"presentation", "hidden_number", "hidden_name", "unreached", "reconciled", "reconciled_at"}
    try:
        async with engine.connect() as conn:
            assert new <= set(await conn.run_sync(_columns))
        await downgrade_to(dsn, "0006_support_role")
        async with engine.connect() as conn:
            assert not new & set(await conn.run_sync(_columns))
        assert await migrate(dsn) == ["0007_call_truth"]
    finally:
        await engine.dispose()
