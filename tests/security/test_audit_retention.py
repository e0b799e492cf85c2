"""Audit log retention, on SQLite and PostgreSQL: ``AuditStore.purge``
deletes only the entries older than the cut-off, a batch per statement and
per write turn; ``[security] audit_retention_days`` runs it on a real node
(at start, then hourly) and logs it; ``screenpop audit purge --before``
through the real CLI, audited; the setting's validation."""
from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from screenpop.config import ConfigError, load_settings
from screenpop.db import create_engine, writing
from screenpop.interactions.migrate import migrate
from screenpop.security.audit import (
    AUDIT_PURGED, CARD_VIEWED, POP_DELIVERED, RETENTION_ACTOR, AuditEvent, AuditQuery, AuditRetention, AuditStore,
)
from screenpop.security.plugin import SECURITY, Security
from tests.security.node import running_node
from tests.security.test_cli_audit import cli

NOW = datetime.now(timezone.utc)


def entries(at: datetime, count: int, prefix: str) -> list[AuditEvent]:
    return [AuditEvent(f"agent:{i}", POP_DELIVERED, "call", f"{prefix}-{i}", "agent", "sales:c-1", at=at)
            for i in range(count)]


async def targets(engine) -> list[str]:
    async with engine.connect() as conn:
        return sorted((await conn.execute(sa.text("SELECT target_id FROM audit_log"))).scalars())


class Statements:
    """The SQL the engine really sends (DELETE and INSERT), in order."""

    def __init__(self, engine):
        self.seen: list[str] = []
        self.engine = engine
        event.listen(engine.sync_engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb in ("DELETE", "INSERT"):
            self.seen.append(verb)

    def close(self):
        event.remove(self.engine.sync_engine, "before_cursor_execute", self._record)


async def test_purge_deletes_only_older_entries_a_batch_per_statement(engine):
    store = AuditStore(engine)
    cutoff = NOW - timedelta(days=30)
    await store.write(entries(cutoff - timedelta(days=10), 7, "old") + entries(cutoff - timedelta(microseconds=1), 1, "edge-old")
                      + entries(cutoff, 1, "at-cutoff") + entries(NOW - timedelta(days=1), 3, "new"))
    statements = Statements(engine)
    try:
        assert await store.purge(cutoff, batch_size=3) == 8
    finally:
        statements.close()
    assert statements.seen == ["DELETE"] * 3  # 3 + 3 + 2 rows
    assert await targets(engine) == ["at-cutoff-0", "new-0", "new-1", "new-2"]  # strictly older only
    assert await store.purge(cutoff, batch_size=3) == 0  # nothing left to delete
    assert (await store.search(AuditQuery())).total == 4
    with pytest.raises(ValueError):
        await store.purge(cutoff, batch_size=0)


async def test_purge_batches_take_turns_with_the_other_writers_on_sqlite(tmp_path):
    """Each batch is a write turn of its own (screenpop.db.writing): a writer
    that queued while the purge waited gets its turn after the first batch,
    not after the whole purge; and a purge waits for a held turn instead of
    failing with "database is locked"."""
    dsn = f"sqlite+aiosqlite:///{tmp_path}/turns.sqlite3"
    await migrate(dsn)
    engine = create_engine(dsn)
    try:
        store = AuditStore(engine)
        await store.write(entries(NOW - timedelta(days=90), 3, "old"))
        statements = Statements(engine)
        async with writing(engine):  # another writer holds the turn
            purge = asyncio.create_task(store.purge(NOW - timedelta(days=30), batch_size=2))
            await asyncio.sleep(0.1)
            assert not purge.done()
            insert = asyncio.create_task(store.write(entries(NOW, 1, "meanwhile")))
            await asyncio.sleep(0.05)
        assert await purge == 3
        await insert
        statements.close()
        assert statements.seen == ["DELETE", "INSERT", "DELETE"]  # 2 rows, the other writer, 1 row
        assert await targets(engine) == ["meanwhile-0"]
    finally:
        await engine.dispose()


async def test_retention_runs_and_logs_and_is_audited_but_only_when_configured(dsn, tmp_path, caplog):
    await migrate(dsn)
    engine = create_engine(dsn)
    try:
        await AuditStore(engine).write(entries(NOW - timedelta(days=45), 5, "old") + entries(NOW - timedelta(days=5), 2, "recent"))
    finally:
        await engine.dispose()

    engine = create_engine(dsn)
    try:  # the default keeps entries forever: no task
        assert Security.build(load_settings(None, env={}), engine).retention is None
    finally:
        await engine.dispose()

    caplog.set_level(logging.INFO, logger="screenpop.security")
    async with running_node(dsn, tmp_path, security={"audit_retention_days": 30}) as node:
        retention = node.app[SECURITY].retention
        assert retention is not None and retention.days == 30 and retention.interval == 3600.0
        for _ in range(200):  # the first run is at start
            if retention.runs:
                break
            await asyncio.sleep(0.025)
        assert retention.runs == 1 and retention.purged == 5
        left = [t for t in await targets(node.service.interactions.engine) if t.startswith(("old", "recent"))]
        assert left == ["recent-0", "recent-1"]
        (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("audit entries purged")]
        assert line.startswith("audit entries purged count=5 before=") and "retention_days=30" in line
        status, body = await node.call("GET", f"/api/v1/audit?action={AUDIT_PURGED}", "admin")
        assert status == 200, body
        (entry,) = body["items"]
        assert entry["actor"] == RETENTION_ACTOR and entry["detail"]["deleted"] == 5 and entry["detail"]["retention_days"] == 30
        cutoff = datetime.fromisoformat(entry["detail"]["before"])
        assert timedelta(days=30) - timedelta(minutes=1) < datetime.now(timezone.utc) - cutoff < timedelta(days=30, minutes=1)


async def test_retention_task_purges_every_interval_and_survives_a_failed_run(tmp_path, caplog):
    dsn = f"sqlite+aiosqlite:///{tmp_path}/task.sqlite3"
    await migrate(dsn)
    engine = create_engine(dsn)
    clock = [NOW]
    try:
        store = AuditStore(engine)
        retention = AuditRetention(store, 7, interval=0.05, batch_size=2, clock=lambda: clock[0])
        await store.write(entries(NOW - timedelta(days=8), 3, "a") + entries(NOW - timedelta(days=3), 2, "b"))
        caplog.set_level(logging.INFO, logger="screenpop.security")
        task = asyncio.create_task(retention.run())
        try:
            for _ in range(200):
                if retention.purged == 3:
                    break
                await asyncio.sleep(0.01)
            assert retention.purged == 3
            runs = retention.runs
            clock[0] = NOW + timedelta(days=5)  # the "b" entries are 8 days old now
            for _ in range(200):
                if retention.purged == 5:
                    break
                await asyncio.sleep(0.01)
            assert retention.purged == 5 and retention.runs > runs
            await engine.dispose()  # the file goes away for a while: a run fails, the task goes on
            (tmp_path / "task.sqlite3").rename(tmp_path / "away.sqlite3")
            (tmp_path / "task.sqlite3").mkdir()  # not a database: every connection fails
            for _ in range(200):
                if any(r.getMessage().startswith("audit purge failed") for r in caplog.records):
                    break
                await asyncio.sleep(0.01)
            assert any(r.getMessage().startswith("audit purge failed reason=") for r in caplog.records)
            assert not task.done()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        counts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("audit entries purged count=")]
        assert counts[0].startswith("audit entries purged count=3 before=") and any("count=2 " in c for c in counts)
    finally:
        await engine.dispose()
    with pytest.raises(ValueError):
        AuditRetention(store, 0)


async def test_cli_purge_deletes_older_entries_and_is_audited(dsn, monkeypatch, capsys):
    assert (await cli(monkeypatch, capsys, dsn, "audit"))[0] == 0  # migrates the empty database
    engine = create_engine(dsn)
    try:
        await AuditStore(engine).write(entries(datetime(2026, 1, 10, tzinfo=timezone.utc), 4, "jan")
                                       + entries(datetime(2026, 1, 31, 23, 59, tzinfo=timezone.utc), 1, "jan31")
                                       + entries(datetime(2026, 2, 1, tzinfo=timezone.utc), 2, "feb"))
    finally:
        await engine.dispose()

    code, out, err = await cli(monkeypatch, capsys, dsn, "audit", "purge", "--before", "2026-02-01")
    assert code == 0, err
    assert out.strip() == "audit entries purged count=5 before=2026-02-01T00:00:00+00:00"
    code, out, _ = await cli(monkeypatch, capsys, dsn, "audit", "--json")
    listed = [json.loads(line) for line in out.splitlines()]
    assert [(e["action"], e["target_id"]) for e in listed] == [
        (AUDIT_PURGED, "2026-02-01T00:00:00+00:00"), (POP_DELIVERED, "feb-1"), (POP_DELIVERED, "feb-0")]
    purged = listed[0]
    assert purged["actor"].startswith("cli:") and purged["detail"] == {"before": "2026-02-01T00:00:00+00:00", "deleted": 5}

    code, out, _ = await cli(monkeypatch, capsys, dsn, "audit", "purge", "--before", "2026-02-01T12:00:00Z")
    assert code == 0 and "count=2 " in out  # an ISO time works too
    code, out, _ = await cli(monkeypatch, capsys, dsn, "audit", "--action", AUDIT_PURGED)
    assert code == 0 and out.splitlines()[-1] == "-- 2 of 2 entries"  # the purges are never purged by their own run


@pytest.mark.parametrize(("before", "reason"), [
    ("yesterday", "is not a date like 2026-11-23 or an ISO time"),
    ("2026-02-30", "is not a date like 2026-11-23 or an ISO time"),
    ("31/01/2026", "is not a date like 2026-11-23 or an ISO time"),
    ("", "is not a date like 2026-11-23 or an ISO time"),
    ("2999-01-01", "is in the future"),
])
async def test_cli_purge_refuses_bad_dates_and_deletes_nothing(tmp_path, monkeypatch, capsys, before, reason):
    dsn = f"sqlite+aiosqlite:///{tmp_path}/bad.sqlite3"
    assert (await cli(monkeypatch, capsys, dsn, "audit"))[0] == 0
    engine = create_engine(dsn)
    try:
        await AuditStore(engine).write([AuditEvent("alice", CARD_VIEWED, "call", "c-1", at=NOW - timedelta(days=400))])
        code, out, err = await cli(monkeypatch, capsys, dsn, "audit", "purge", "--before", before)
        assert code == 2 and out == "" and reason in err and err.startswith("screenpop: --before"), err
        assert await targets(engine) == ["c-1"]
    finally:
        await engine.dispose()


def test_audit_retention_days_setting(tmp_path):
    assert load_settings(None, env={}).security.audit_retention_days == 0  # kept forever by default
    path = tmp_path / "c.toml"
    path.write_text("[security]\naudit_retention_days = 400\n")
    assert load_settings(path, env={}).security.audit_retention_days == 400
    assert load_settings(None, env={"SCREENPOP_SECURITY__AUDIT_RETENTION_DAYS": "90"}).security.audit_retention_days == 90
    for bad in ("-1", "36501", "ninety", "1.5", ""):
        with pytest.raises(ConfigError, match="audit_retention_days"):
            load_settings(None, env={"SCREENPOP_SECURITY__AUDIT_RETENTION_DAYS": bad})
    path.write_text('[security]\naudit_retention_days = "a year"\n')
    with pytest.raises(ConfigError, match="audit_retention_days"):
        load_settings(path, env={})
