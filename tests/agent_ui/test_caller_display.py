"""The interaction API writes the caller's number as a person reads it
(``caller_display``: national for the agents' region, else international),
beside the number as received, for the search and the call pages."""
from __future__ import annotations

from tests.faults.harness import start_call


async def test_records_carry_the_number_as_a_person_reads_it(stack):
    call_id, done = start_call(stack.simulator, "queue_answered", "0034912345679", "Carla Ruiz", queue="support",
                               agents=["1001"], answer_after=0.2, talk_seconds=0.3)
    token = await stack.token("supervisor")
    record = await stack.logged(call_id, token)
    assert (record["caller_number"], record["caller_display"]) == ("0034912345679", "912 34 56 79")
    status, found = await stack.api("GET", "/api/v1/interactions?number=912345679", token)
    assert status == 200 and [(i["call_id"], i["caller_display"]) for i in found["items"]] == [(call_id, "912 34 56 79")]
