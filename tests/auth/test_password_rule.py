"""Admins and supervisors get passwords nobody guesses (issue 18, point 16):
at least 12 characters and not on the shipped common-password list, checked
where a person sets one (``screenpop users add`` / ``passwd``, through the
account store), while the demo's own ``supervisor``/``admin`` with password
``demo`` keep working (created by ``ensure_demo_users`` in the store)."""
from __future__ import annotations

import io
import sys

import pytest

from screenpop.auth import passwords
from screenpop.auth.accounts import User
from screenpop.auth.passwords import PasswordRejected, check_strength
from screenpop.auth.store import DemoUser, ensure_demo_users

STRONG = "violet tram under 9 bridges"


@pytest.mark.parametrize("password, reason", [
    ("short-pass1", "at least 12 characters (this one has 11)"),
    ("Password1234", "common passwords"),
    ("  qwerty123456 ", "common passwords"),
    ("1q2w3e4r5t6y", "common passwords"),
    ("correct horse battery staple", "common passwords"),
    ("abababababab", "common passwords"),
    ("ñandú", "at least 12 characters (this one has 5)"),
])
def test_weak_passwords_are_refused_for_admins_and_supervisors(password, reason):
    for role in ("admin", "supervisor"):
        with pytest.raises(PasswordRejected, match=reason.replace("(", r"\(").replace(")", r"\)")):
            check_strength(password, role)
    check_strength(password, "agent")  # agents are not held to it


def test_the_shipped_list_is_read_and_strong_passwords_pass():
    assert len(passwords.common_passwords()) > 500 and "password" in passwords.common_passwords()
    for role in ("admin", "supervisor"):
        check_strength(STRONG, role)
        check_strength("Zq7-wallpaper-Kettle", role)


async def test_the_store_refuses_weak_passwords_where_people_set_them(store):
    with pytest.raises(PasswordRejected, match="at least 12"):
        await store.create_user("boss", "hunter2", "supervisor")
    with pytest.raises(PasswordRejected, match="common"):
        await store.create_user("root", "administrator123", "admin")
    assert await store.get_user("boss") is None and await store.get_user("root") is None  # nothing half-made
    admin = await store.create_user("boss", STRONG, "admin")
    with pytest.raises(PasswordRejected, match="at least 12"):
        await store.set_password("boss", "short")
    assert isinstance(await store.authenticate("boss", STRONG), User)  # the old one still works
    await store.create_user("alice", "pw-1", "agent", "1001")  # an agent's is not checked
    await store.set_password("alice", "pw-2")
    assert admin.role == "admin"


async def test_the_demo_accounts_keep_their_demo_password(store):
    created = await ensure_demo_users(store, [DemoUser("supervisor", "demo", "supervisor", None, "Sam"),
                                              DemoUser("admin", "demo", "admin", None, "Ada")])
    assert created == ["supervisor", "admin"]
    assert isinstance(await store.authenticate("admin", "demo"), User)
    assert isinstance(await store.authenticate("supervisor", "demo"), User)


def users_cli(monkeypatch, capsys, dsn: str, *args: str, stdin: str) -> tuple[int, str]:
    from screenpop.cli import main

    monkeypatch.setenv("SCREENPOP_STORAGE__DSN", dsn)
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(["users", *args])
    return code, capsys.readouterr().err


def test_the_cli_refuses_a_weak_admin_password_in_one_line(monkeypatch, capsys, tmp_path):
    dsn = f"sqlite+aiosqlite:///{tmp_path}/service.sqlite3"
    code, err = users_cli(monkeypatch, capsys, dsn, "add", "boss", "--role", "admin", stdin="password1\n")
    assert code == 2 and "an admin's password must be at least 12 characters (this one has 9)" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2, err
    code, err = users_cli(monkeypatch, capsys, dsn, "add", "boss", "--role", "supervisor", stdin="qwerty123456\n")
    assert code == 2 and "common passwords" in err, err
    code, err = users_cli(monkeypatch, capsys, dsn, "add", "boss", "--role", "supervisor", stdin=STRONG + "\n")
    assert code == 0, err
    code, err = users_cli(monkeypatch, capsys, dsn, "passwd", "boss", stdin="letmein\n")
    assert code == 2 and "at least 12 characters" in err, err
