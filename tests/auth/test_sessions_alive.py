"""AccountStore.sessions_alive: which of many sessions are still valid, in
one query (the open sockets' re-check), on SQLite and PostgreSQL."""
from __future__ import annotations

from sqlalchemy import event


async def test_sessions_alive_answers_for_many_sessions_in_one_query(store, clock):
    users = [await store.create_user(f"agent{n}", "a long enough password", "agent", str(1001 + n)) for n in range(4)]
    sessions = [(await store.create_session(user))[1] for user in users]
    _, second = await store.create_session(users[0])
    await store.disable("agent1")
    queries = []
    event.listen(store.engine.sync_engine, "before_cursor_execute", lambda *args: queries.append(args[2]))
    ids = [s.id for s in sessions] + [second.id, "no-such-session"]
    alive = await store.sessions_alive(ids)
    assert len(queries) == 1
    assert sessions[0].id in alive and sessions[3].id in alive and second.id in alive
    assert sessions[1].id not in alive  # its user was disabled (and its sessions ended)
    assert "no-such-session" not in alive
    clock.advance(hours=9)  # past the absolute lifetime: none is alive
    assert await store.sessions_alive(ids) == set()


async def test_sessions_alive_batches_long_lists(store):
    user = await store.create_user("agent1", "a long enough password", "agent", "1001")
    ids = [(await store.create_session(user))[1].id for _ in range(5)]
    queries = []
    event.listen(store.engine.sync_engine, "before_cursor_execute", lambda *args: queries.append(args[2]))
    assert await store.sessions_alive(ids + [f"gone{n}" for n in range(5)], batch=3) == set(ids)
    assert len(queries) == 4  # 10 ids, 3 per query
    assert await store.sessions_alive([]) == set()
