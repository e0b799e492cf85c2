"""``screenpop users`` as a user runs it: a real process, a real database."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from screenpop.auth.accounts import DISABLED, User
from screenpop.auth.store import AccountStore
from screenpop.db import create_engine

ROOT = Path(__file__).resolve().parents[2]
SCREENPOP = Path(sys.executable).parent / "screenpop"  # the installed command, as an operator runs it


def run(dsn: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "SCREENPOP_STORAGE__DSN": dsn}
    return subprocess.run([str(SCREENPOP), "users", *args], input=stdin, capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)


async def authenticate(dsn: str, username: str, password: str):
    engine = create_engine(dsn)
    try:
        return await AccountStore(engine).authenticate(username, password)
    finally:
        await engine.dispose()


async def test_add_list_disable_enable_passwd(dsn, tmp_path):
    secret_file = tmp_path / "pw"
    secret_file.write_text("from-a-file-1\n")
    added = run(dsn, "add", "Alice", "--role", "agent", "--agent-id", "1001", "--name", "Alice Martín", "--password-file", str(secret_file))
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "user added username=alice role=agent agent_id=1001"
    piped = run(dsn, "add", "sue", "--role", "supervisor", stdin="from-stdin-2\n")
    assert piped.returncode == 0, piped.stderr
    assert isinstance(await authenticate(dsn, "alice", "from-a-file-1"), User)
    assert isinstance(await authenticate(dsn, "sue", "from-stdin-2"), User)

    listed = run(dsn, "list")
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["USERNAME", "ROLE", "AGENT", "STATE", "NAME"]
    assert lines[1].split() == ["alice", "agent", "1001", "active", "Alice", "Martín"]
    assert lines[2].split() == ["sue", "supervisor", "-", "active"]
    rows = [json.loads(line) for line in run(dsn, "list", "--json").stdout.splitlines()]
    assert [(r["username"], r["agent_id"], r["disabled"]) for r in rows] == [("alice", "1001", False), ("sue", None, False)]

    assert run(dsn, "disable", "alice").returncode == 0
    assert (await authenticate(dsn, "alice", "from-a-file-1")).reason == DISABLED
    assert "disabled" in run(dsn, "list").stdout.splitlines()[1]
    assert run(dsn, "enable", "alice").returncode == 0

    changed = run(dsn, "passwd", "alice", stdin="new-pass-3\n")
    assert changed.returncode == 0 and changed.stdout.strip() == "password changed username=alice"
    assert isinstance(await authenticate(dsn, "alice", "new-pass-3"), User)
    for result in (added, piped, listed, changed):
        for secret in ("from-a-file-1", "from-stdin-2", "new-pass-3"):
            assert secret not in result.stdout + result.stderr


def run_here(monkeypatch, capsys, dsn: str, *args: str, stdin: str = "") -> tuple[int, str, str]:
    """The same command in this process (faster), standard input from a string."""
    from screenpop.cli import main

    monkeypatch.setenv("SCREENPOP_STORAGE__DSN", dsn)
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        code = main(["users", *args])
    except SystemExit as exc:  # argparse refusing the arguments
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_mistakes_are_one_line_and_exit_2(monkeypatch, capsys, tmp_path):
    dsn = f"sqlite+aiosqlite:///{tmp_path}/service.sqlite3"
    assert run_here(monkeypatch, capsys, dsn, "add", "alice", "--role", "agent", "--agent-id", "1001", stdin="pw-1\n")[0] == 0
    cases = [
        (("add", "bob", "--role", "agent", "--agent-id", "1001"), "pw-2\n", "agent id 1001 already belongs"),
        (("add", "ALICE", "--role", "admin"), "pw-2\n", "already exists"),
        (("add", "bob", "--role", "agent"), "pw-2\n", "needs the agent id"),
        (("add", "bob", "--role", "admin"), "\n", "empty password"),
        (("add", "bob", "--role", "admin", "--password-file", "/nonexistent/pw"), "", "cannot read --password-file"),
        (("disable", "nobody"), "", "no user named"),
        (("passwd", "nobody"), "pw\n", "no user named"),
    ]
    for args, stdin, message in cases:
        code, out, err = run_here(monkeypatch, capsys, dsn, *args, stdin=stdin)
        assert code == 2, (args, err)
        # one line for the mistake (after, perhaps, the line naming the config and database used)
        errors = [line for line in err.strip().splitlines() if not line.startswith("screenpop: config ")]
        assert len(errors) == 1 and message in errors[0] and "Traceback" not in err


def test_the_password_cannot_be_a_plain_argument(monkeypatch, capsys, tmp_path):
    dsn = f"sqlite+aiosqlite:///{tmp_path}/service.sqlite3"
    for args in (("add", "bob", "--role", "admin", "--password", "hunter2"), ("passwd", "bob", "--password", "hunter2")):
        code, _, err = run_here(monkeypatch, capsys, dsn, *args)
        assert code == 2 and "unrecognized arguments" in err


def test_prompted_password_is_asked_twice():
    from screenpop.cli import UsageError
    from screenpop.commands.users import read_password

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    answers = iter(["typed-1", "typed-1"])
    assert read_password(None, Terminal(), prompt=lambda _: next(answers)) == "typed-1"
    answers = iter(["typed-1", "typed-2"])
    with pytest.raises(UsageError, match="differ"):
        read_password(None, Terminal(), prompt=lambda _: next(answers))
