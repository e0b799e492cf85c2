"""``screenpop audit`` and the audit entries of ``screenpop users`` and
``screenpop tokens``, through the real CLI on SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
import json

from screenpop.cli import main
from screenpop.db import create_engine
from screenpop.security.audit import AuditEvent, AuditStore


async def cli(monkeypatch, capsys, dsn: str, *argv: str, stdin: str | None = None) -> tuple[int, str, str]:
    monkeypatch.setenv("SCREENPOP_STORAGE__DSN", dsn)
    if stdin is not None:
        import io

        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = await asyncio.to_thread(main, list(argv))  # the CLI runs its own event loop
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_user_and_token_changes_are_audited_and_the_cli_reads_them(dsn, monkeypatch, capsys):
    code, _, err = await cli(monkeypatch, capsys, dsn, "users", "add", "alice", "--role", "agent", "--agent-id", "1001",
                             stdin="a-long-password-1\n")
    assert code == 0, err
    assert (await cli(monkeypatch, capsys, dsn, "users", "disable", "alice"))[0] == 0
    code, token, _ = await cli(monkeypatch, capsys, dsn, "tokens", "create", "erp", "--scope", "billing")
    assert code == 0
    code, out, _ = await cli(monkeypatch, capsys, dsn, "audit", "--json")
    assert code == 0
    entries = [json.loads(line) for line in out.splitlines()]
    assert [(e["action"], e["target_id"]) for e in entries] == [
        ("token.created", "erp"), ("user.disabled", "alice"), ("user.created", "alice")]
    assert all(e["actor"].startswith("cli:") for e in entries)
    assert entries[2]["detail"] == {"role": "agent", "agent_id": "1001"}
    assert token.strip() not in out and "a-long-password-1" not in out

    code, out, _ = await cli(monkeypatch, capsys, dsn, "audit", "--target", "alice", "--action", "user.created")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2 and "user.created  user=alice" in lines[0] and lines[1] == "-- 1 of 1 entries"

    code, _, err = await cli(monkeypatch, capsys, dsn, "audit", "--action", "made.up")
    assert code == 2 and "action must be one of" in err


async def test_hostile_values_are_printed_escaped(tmp_path, monkeypatch, capsys):
    dsn = f"sqlite+aiosqlite:///{tmp_path}/s.sqlite3"
    assert (await cli(monkeypatch, capsys, dsn, "audit"))[0] == 0  # migrates the empty database
    engine = create_engine(dsn)
    try:
        await AuditStore(engine).write([AuditEvent("eve\x1b]0;owned\x07", "card.viewed", "call", "c-1\r\nforged line")])
    finally:
        await engine.dispose()
    code, out, _ = await cli(monkeypatch, capsys, dsn, "audit")
    assert code == 0 and "\x1b" not in out and "\r" not in out
    assert "eve\\x1b]0;owned\\x07" in out and "c-1\\r\\nforged line" in out and len(out.splitlines()) == 2
