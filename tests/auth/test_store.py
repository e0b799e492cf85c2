"""AccountStore on real SQLite and PostgreSQL: users, login, lockout, sessions."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from screenpop.auth.accounts import BAD_PASSWORD, DISABLED, LOCKED, UNKNOWN_USER, AccountError, LoginFailure, User
from screenpop.auth.models import sessions, users
from screenpop.auth.passwords import PasswordRejected
from screenpop.auth.store import DemoUser, UnknownUser, ensure_demo_users

PW = "s3cret-pass-for-auth"


async def test_create_and_authenticate(store):
    user = await store.create_user("  Alice ", PW, "agent", "1001", "Alice  Martín")
    assert (user.username, user.role, user.agent_id, user.display_name) == ("alice", "agent", "1001", "Alice Martín")
    result = await store.authenticate("ALICE", PW)
    assert isinstance(result, User) and result == user


async def test_password_hash_is_stored_not_the_password(store, engine):
    await store.create_user("alice", PW, "agent", "1001")
    async with engine.connect() as conn:
        stored = (await conn.execute(select(users.c.password_hash))).scalar_one()
    assert stored.startswith("scrypt$") and PW not in stored


@pytest.mark.parametrize(
    "args, message",
    [
        (("al", PW, "agent", "1001"), "username"),
        (("bob", PW, "agent", None), "agent id"),
        (("bob", PW, "supervisor", "1002"), "no agent id"),
        (("bob", PW, "root", None), "role must be"),
        (("bob", PW, "agent", "10 01"), "agent id"),
    ],
)
async def test_invalid_users_are_refused(store, args, message):
    with pytest.raises(AccountError, match=message):
        await store.create_user(*args)


async def test_empty_password_is_refused(store):
    with pytest.raises(PasswordRejected):
        await store.create_user("bob", "", "admin")


async def test_username_and_agent_id_are_unique(store):
    await store.create_user("alice", PW, "agent", "1001")
    with pytest.raises(AccountError, match="already exists"):
        await store.create_user("ALICE", PW, "admin")
    with pytest.raises(AccountError, match="agent id 1001 already belongs"):
        await store.create_user("bob", PW, "agent", "1001")
    await store.create_user("sue", PW, "supervisor")
    await store.create_user("ann", PW, "admin")  # several accounts without an agent id


async def test_database_refuses_an_agent_without_agent_id(store, engine, clock):
    """The check constraint backs the rule even for hand-written rows."""
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(users.insert().values(username="x1", role="agent", agent_id=None, password_hash="h", disabled=False, failed_logins=0, created_at=clock(), password_changed_at=clock()))


async def test_failure_reasons(store):
    await store.create_user("alice", PW, "agent", "1001")
    assert await store.authenticate("nobody", PW) == LoginFailure(UNKNOWN_USER)
    assert await store.authenticate("alice", "wrong") == LoginFailure(BAD_PASSWORD)
    assert await store.authenticate("", "") == LoginFailure(UNKNOWN_USER)
    assert await store.authenticate("x" * 500, PW) == LoginFailure(UNKNOWN_USER)
    assert not await store.authenticate("alice", "wrong")  # a failure is falsy


async def test_lockout_after_max_failures_refuses_even_the_right_password(store, clock):
    await store.create_user("alice", PW, "agent", "1001")
    for _ in range(3):
        assert (await store.authenticate("alice", "wrong")).reason == BAD_PASSWORD
    locked = await store.authenticate("alice", PW)
    assert locked.reason == LOCKED and locked.retry_after == pytest.approx(300)
    clock.advance(seconds=299)
    assert (await store.authenticate("alice", PW)).reason == LOCKED
    clock.advance(seconds=2)
    assert isinstance(await store.authenticate("alice", PW), User)
    (account,) = await store.list_users()
    assert account.failed_logins == 0 and account.locked_until is None


async def test_a_success_resets_the_failure_count(store):
    await store.create_user("alice", PW, "agent", "1001")
    for _ in range(2):
        await store.authenticate("alice", "wrong")
    assert isinstance(await store.authenticate("alice", PW), User)
    for _ in range(2):
        await store.authenticate("alice", "wrong")
    assert isinstance(await store.authenticate("alice", PW), User)


async def test_disabled_user_cannot_log_in_and_loses_sessions(store):
    user = await store.create_user("alice", PW, "agent", "1001")
    token, _ = await store.create_session(user)
    assert (await store.session_for(token)).user == user
    await store.disable("alice")
    assert await store.session_for(token) is None
    assert await store.count_sessions("alice") == 0
    assert await store.authenticate("alice", PW) == LoginFailure(DISABLED)
    await store.disable("alice", disabled=False)
    assert isinstance(await store.authenticate("alice", PW), User)


async def test_a_session_of_a_user_disabled_behind_our_back_is_refused(store, engine):
    user = await store.create_user("alice", PW, "agent", "1001")
    token, _ = await store.create_session(user)
    async with engine.begin() as conn:
        await conn.execute(update(users).values(disabled=True))
    assert await store.session_for(token) is None


async def test_set_password_ends_sessions_and_changes_the_password(store):
    user = await store.create_user("alice", PW, "agent", "1001")
    token, _ = await store.create_session(user)
    await store.set_password("alice", "n3w-pass")
    assert await store.session_for(token) is None
    assert (await store.authenticate("alice", PW)).reason == BAD_PASSWORD
    assert isinstance(await store.authenticate("alice", "n3w-pass"), User)
    with pytest.raises(UnknownUser):
        await store.set_password("nobody", "x")


async def test_session_token_is_stored_hashed(store, engine):
    user = await store.create_user("alice", PW, "agent", "1001")
    token, session = await store.create_session(user)
    async with engine.connect() as conn:
        row = (await conn.execute(select(sessions))).one()
    assert row.id != token and token not in str(tuple(row)) and row.csrf_token == session.csrf_token
    assert len(token) == 43 and session.csrf_token != token


async def test_session_slides_with_use_but_not_past_the_absolute_limit(store, clock):
    user = await store.create_user("alice", PW, "agent", "1001")
    token, first = await store.create_session(user)
    assert first.expires_at == clock.now + timedelta(hours=1)
    for _ in range(9):  # used every 50 minutes for 7.5 hours: the idle hour never runs out...
        clock.advance(minutes=50)
        active = await store.session_for(token)
        assert active is not None and active.session.last_seen == clock.now
    assert active.session.expires_at == first.created_at + timedelta(hours=8)
    clock.advance(minutes=50)  # ...but 8 hours after login it ends
    assert await store.session_for(token) is None


async def test_idle_session_expires(store, clock):
    user = await store.create_user("alice", PW, "agent", "1001")
    token, _ = await store.create_session(user)
    clock.advance(minutes=59)
    assert await store.session_for(token) is not None
    clock.advance(minutes=61)
    assert await store.session_for(token) is None
    assert await store.count_sessions("alice") == 0  # deleted when found dead


async def test_end_session_and_garbage_tokens(store):
    user = await store.create_user("alice", PW, "agent", "1001")
    token, _ = await store.create_session(user)
    other, _ = await store.create_session(user)
    assert await store.end_session(token) is True
    assert await store.session_for(token) is None and await store.session_for(other) is not None
    for garbage in ["", "x", token[:-1], "' OR 1=1 --", None, 42]:
        assert await store.session_for(garbage) is None
        assert await store.end_session(garbage) is False


async def test_list_users(store):
    await store.create_user("bob", PW, "supervisor", display_name="Bob")
    await store.create_user("alice", PW, "agent", "1001")
    await store.disable("bob")
    listed = [(a.user.username, a.user.role, a.user.agent_id, a.disabled) for a in await store.list_users()]
    assert listed == [("alice", "agent", "1001", False), ("bob", "supervisor", None, True)]


async def test_weaker_hash_is_upgraded_at_login(store, engine):
    """A cost raised in a release reaches each account at its next login."""
    await store.create_user("alice", PW, "agent", "1001")
    store.scrypt_n = 2**5
    assert isinstance(await store.authenticate("alice", PW), User)
    async with engine.connect() as conn:
        stored = (await conn.execute(select(users.c.password_hash))).scalar_one()
    assert stored.split("$")[1] == str(2**5)
    assert isinstance(await store.authenticate("alice", PW), User)


async def test_ensure_demo_users_is_idempotent(store):
    demo = [DemoUser("agent1", "demo", "agent", "1001", "Agent One"), DemoUser("super", "demo", "supervisor")]
    assert await ensure_demo_users(store, demo) == ["agent1", "super"]
    await store.set_password("agent1", "changed")
    assert await ensure_demo_users(store, demo) == []
    assert isinstance(await store.authenticate("agent1", "changed"), User)  # left alone
