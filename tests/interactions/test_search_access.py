"""Who may touch a call record, in the store and the rule: an agent's search
(SQLite and PostgreSQL) sees only the calls offered to them, and each
role's scope."""
from __future__ import annotations

from screenpop.interactions.access import EVERY_CALL, NO_CALLS, CallScope, scope_of
from screenpop.interactions.store import InteractionStore
from tests.interactions.test_search_number import call, ids  # a call as its events make it; a search's call ids


async def test_offered_to_keeps_the_calls_an_agent_was_rung_for_answered_or_was_transferred(engine):
    store = InteractionStore(engine)
    await store.upsert([
        call("rung.1", "+34912345678", ring=("1001", "1002"), answer="1002"),  # rang 1001, answered elsewhere
        call("theirs.1", "+34912345678", ring=("1002",), answer="1002"),
        call("moved.1", "+34912345678", ring=("1002",), answer="1002", transfer_to="1001"),  # never rang 1001 here
        call("1001x.1", "+34912345678", ring=("10011",), answer="10011"),  # an id that contains 1001
    ])
    assert await ids(store, offered_to="1001") == {"rung.1", "moved.1"}
    assert await ids(store, offered_to="1002") == {"rung.1", "theirs.1", "moved.1"}
    assert await ids(store, offered_to="1001", number="0034912345678") == {"rung.1", "moved.1"}
    assert (await store.search(offered_to="1001")).total == 2
    assert len(await ids(store)) == 4


def test_each_role_s_scope():
    class U:
        def __init__(self, role, agent_id=None):
            self.role, self.agent_id = role, agent_id

    record = call("c", "+34912345678", ring=("1001",))
    assert scope_of(U("agent", "1001")) == CallScope(agent_id="1001") and scope_of(U("agent", "1001")).admits(record)
    assert not scope_of(U("agent", "1002")).admits(record)
    for role in ("supervisor", "admin", "support"):
        assert scope_of(U(role)) is EVERY_CALL and EVERY_CALL.admits(record)
    assert scope_of(U("agent", None)) is NO_CALLS and NO_CALLS.nothing and not NO_CALLS.admits(record)
    assert scope_of(U("root")) is NO_CALLS
