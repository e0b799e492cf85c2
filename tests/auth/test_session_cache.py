"""AccountStore.session_for in a crowd: concurrent lookups share one query,
valid sessions are kept a few seconds, and revocation stays exact.  On a
real SQLite file and a real PostgreSQL schema; queries are counted with
SQLAlchemy's ``before_cursor_execute``."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import delete, event, select, update

from screenpop.auth.accounts import LockoutPolicy, SessionPolicy, token_digest
from screenpop.auth.models import sessions, users
from screenpop.auth.store import AccountStore
from tests.auth.conftest import FAST_N

PW = "a long enough password"
CACHE = timedelta(seconds=5)


@pytest.fixture
def cached(engine, clock):
    """A store like the service's: sessions cached for five seconds."""
    return AccountStore(
        engine,
        lockout=LockoutPolicy(max_failures=3, lock_seconds=300),
        sessions=SessionPolicy(idle=timedelta(hours=1), absolute=timedelta(hours=8), touch_every=timedelta(seconds=60), cache_for=CACHE),
        scrypt_n=FAST_N,
        clock=clock,
    )


class Statements:
    def __init__(self, engine):
        self.engine, self.all = engine.sync_engine, []
        event.listen(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.all.append((" ".join(statement.split()).lower(), executemany))

    def of(self, verb: str) -> list[tuple[str, bool]]:
        return [(s, many) for s, many in self.all if s.startswith(verb) and " sessions" in s]

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


async def agents(store: AccountStore, count: int) -> list[str]:
    tokens = []
    for n in range(count):
        user = await store.create_user(f"agent{n}", PW, "agent", str(1001 + n))
        tokens.append((await store.create_session(user))[0])
    return tokens


async def test_concurrent_lookups_share_one_query_and_one_touch(store, clock):
    tokens = await agents(store, 6)
    clock.advance(minutes=2)  # every session is due a slide
    statements = Statements(store.engine)
    found = await asyncio.gather(*(store.session_for(t) for t in tokens), store.session_for(tokens[0]), store.session_for("x" * 43))
    statements.close()
    assert [a.user.username for a in found[:6]] == [f"agent{n}" for n in range(6)]
    assert found[6].user.username == "agent0" and found[7] is None  # the same token twice, and one nobody has
    assert len(statements.of("select")) == 1
    assert len(statements.of("update")) == 1 and statements.of("update")[0][1]  # one executemany for the six
    assert all(a.session.last_seen == clock.now and a.session.expires_at == clock.now + timedelta(hours=1) for a in found[:7])
    async with store.engine.connect() as conn:
        seen = (await conn.execute(select(sessions.c.last_seen))).scalars().all()
    assert seen == [clock.now] * 6


async def test_dead_sessions_of_a_batch_are_refused_and_deleted_together(store, clock, engine):
    tokens = await agents(store, 4)
    async with engine.begin() as conn:
        await conn.execute(update(users).where(users.c.username == "agent1").values(disabled=True))
        await conn.execute(update(sessions).where(sessions.c.id == token_digest(tokens[2])).values(expires_at=clock.now))
    found = await asyncio.gather(*(store.session_for(t) for t in tokens))
    assert [a is not None for a in found] == [True, False, False, True]
    assert await store.count_sessions("agent1") == 0 and await store.count_sessions("agent2") == 0


async def test_a_failed_query_fails_its_batch_and_the_next_one_tries_again(store):
    [token] = await agents(store, 1)
    real = store.session_loader.load

    async def down(ids):
        raise OSError("connection refused")

    store.session_loader.load = down
    results = await asyncio.gather(store.session_for(token), store.session_for(token), return_exceptions=True)
    assert [type(r) for r in results] == [OSError, OSError]  # the web edge answers 503, never "log in again"
    store.session_loader.load = real
    assert (await store.session_for(token)).user.username == "agent0"


async def test_a_valid_session_is_served_from_the_cache(cached, clock):
    [token] = await agents(cached, 1)
    first = await cached.session_for(token)
    statements = Statements(cached.engine)
    clock.advance(seconds=4)
    again = await cached.session_for(token)
    statements.close()
    assert again == first and statements.of("select") == []
    clock.advance(seconds=1)  # the entry ran out: read again
    statements = Statements(cached.engine)
    assert await cached.session_for(token) is not None
    statements.close()
    assert len(statements.of("select")) == 1


async def test_no_cache_when_the_policy_says_zero(store):
    [token] = await agents(store, 1)
    await store.session_for(token)
    statements = Statements(store.engine)
    await store.session_for(token)
    statements.close()
    assert len(statements.of("select")) == 1 and len(store.session_loader) == 0


async def test_logout_on_this_node_evicts_at_once(cached):
    tokens = await agents(cached, 1)
    user = await cached.get_user("agent0")
    other, _ = await cached.create_session(user)
    assert await cached.session_for(tokens[0]) and await cached.session_for(other)
    assert await cached.end_session(tokens[0]) is True
    assert await cached.session_for(tokens[0]) is None  # no clock moved: not the cache running out
    assert await cached.session_for(other) is not None  # the user's other session stays


@pytest.mark.parametrize("how", ["disable", "set_password", "end_sessions"])
async def test_disabling_or_ending_a_users_sessions_evicts_at_once(cached, how):
    tokens = await agents(cached, 2)
    assert all([await cached.session_for(t) for t in tokens])
    if how == "disable":
        await cached.disable("agent0")
    elif how == "set_password":
        await cached.set_password("agent0", "another long password")
    else:
        await cached.end_sessions((await cached.get_user("agent0")).id)
    assert await cached.session_for(tokens[0]) is None
    assert await cached.session_for(tokens[1]) is not None  # agent1 untouched


async def test_another_nodes_logout_counts_when_the_entry_runs_out_or_at_the_recheck(cached, clock, engine):
    """Another node (or ``screenpop users disable``) ends the session in the
    database behind this node's back: the cache serves it at most
    ``cache_for`` longer, and the open sockets' re-check drops it at once."""
    tokens = await agents(cached, 2)
    for token in tokens:
        assert await cached.session_for(token)
    async with engine.begin() as conn:
        await conn.execute(delete(sessions))
    clock.advance(seconds=2)
    assert await cached.session_for(tokens[0]) is not None  # within the cache seconds: as documented
    clock.advance(seconds=3)
    assert await cached.session_for(tokens[0]) is None
    assert await cached.sessions_alive([token_digest(tokens[1])]) == set()  # the sockets' re-check...
    assert await cached.session_for(tokens[1]) is None  # ...also evicts, before the entry runs out


async def test_an_expired_session_is_never_served_from_the_cache(engine, clock):
    store = AccountStore(engine, sessions=SessionPolicy(idle=timedelta(seconds=20), absolute=timedelta(hours=8), cache_for=timedelta(seconds=60)),
                         scrypt_n=FAST_N, clock=clock)
    [token] = await agents(store, 1)
    assert await store.session_for(token) is not None  # cached, at most until the session's own expiry
    clock.advance(seconds=19)
    assert await store.session_for(token) is not None
    clock.advance(seconds=1)  # expired now, long before the 60 cache seconds
    assert await store.session_for(token) is None
    assert await store.count_sessions("agent0") == 0


async def test_an_expired_session_is_not_served_at_its_absolute_limit(engine, clock):
    store = AccountStore(engine, sessions=SessionPolicy(idle=timedelta(hours=1), absolute=timedelta(minutes=30), cache_for=timedelta(seconds=60)),
                         scrypt_n=FAST_N, clock=clock)
    [token] = await agents(store, 1)
    clock.advance(minutes=29, seconds=30)
    assert await store.session_for(token) is not None
    clock.advance(seconds=30)
    assert await store.session_for(token) is None


async def test_a_disabled_user_is_not_served_from_the_cache_of_another_store(engine, clock, cached):
    """Two nodes on one database: node B disables the user; node A's entry
    runs out after its cache seconds and the next read refuses the session."""
    [token] = await agents(cached, 1)
    other_node = AccountStore(engine, scrypt_n=FAST_N, clock=clock)
    assert await cached.session_for(token) is not None
    await other_node.disable("agent0")
    assert await other_node.session_for(token) is None
    clock.advance(seconds=5)
    assert await cached.session_for(token) is None
