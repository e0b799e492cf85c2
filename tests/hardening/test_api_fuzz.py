"""Fuzz the REST API from its own OpenAPI document (schemathesis), on the wired service.

The service runs for real (PBX simulator over AMI, seeded demo databases,
SQLite interaction log, the aiohttp app) in a background thread with its
own event loop (:class:`tests.stack.ThreadedStack`): schemathesis'
pytest integration is synchronous (hypothesis drives ``requests``), so the
server cannot share the test's thread.  The document is the one the service
serves at ``/api/v1/openapi.json``, loaded over HTTP.

The document must say what the server enforces, so it is fuzzed as served:
the disposition codes are the configured ones (the same as ``GET
/api/v1/config/ui``), the audit actions and every ``limit``'s bounds are
there.  One thing is added in the test, what a real client knows: ``call_id``
may also be one of the calls the simulator placed (so outcome and notes reach
real records, not only 404).  Every operation is fuzzed as a supervisor, an agent and
anonymously (the billing push with its bearer token, and with a wrong one):
positive and negative data, deterministic (derandomized hypothesis).

Checks on every response: schemathesis' own (no 5xx, status codes,
content types and bodies as documented, invalid data refused, valid data
accepted, authentication enforced), plus ours: a 4xx is JSON with an
``error`` string, and no body carries a Python traceback.
"""
from __future__ import annotations

import copy
import json
import re
from datetime import datetime, timezone

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.stack import BILLING_TOKEN, ThreadedStack, seed_databases

ANA = "+34912345678"
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\.py\", line \d+|sqlalchemy\.|aiohttp\.web")
# Exception names in a body mean a str(exc) leaked; /metrics may name them as labels.
EXCEPTION = re.compile(r"\b(?:Key|Type|Attribute|Index|Value|Overflow|Recursion|Unicode\w*|Operational|Integrity)Error\b")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    stack = ThreadedStack(seed_databases(folder, customers=120), folder,
                          auth={"rate_limit_failures": 10_000, "max_failures": 10_000})
    stack.start()
    s = stack.stack
    try:
        tokens = {name: stack.run(s.token(name)) for name in ("supervisor", "agent1001")}
        call_ids = [stack.run(s.simulator.place_call("queue_answered", ANA, "Ana Garcia", queue="support",
                                                     agents=["1001"], speed=50)),
                    stack.run(s.simulator.place_call("withheld", None, None, queue="support",
                                                     agents=["1002"], speed=50))]
        for call_id in call_ids:
            stack.run(s.logged(call_id, tokens["supervisor"]))
        stack.tokens, stack.call_ids = tokens, call_ids
        yield stack
    finally:
        stack.stop()


def client_spec(live) -> dict:
    """The served document, with what a client learns from the API itself."""
    spec = requests.get(f"{live.url}/api/v1/openapi.json", timeout=10).json()
    ui = requests.get(f"{live.url}/api/v1/config/ui", timeout=10,
                      headers={"Authorization": f"Bearer {live.tokens['supervisor']}"}).json()
    spec = copy.deepcopy(spec)
    assert spec["components"]["schemas"]["Outcome"]["properties"]["disposition"]["enum"] == ui["dispositions"]
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "call_id":
                    parameter["schema"] = {"anyOf": [{"enum": live.call_ids}, parameter["schema"]]}
    return spec


def credentials(live, identity: str) -> type:
    """schemathesis auth provider: the identity's bearer token on every request
    (the billing push gets the billing token instead).  Given this way, and
    not as plain headers, schemathesis knows the credentials are real and
    probes each guarded operation without them and with invalid ones."""

    class Credentials:
        def get(self, case, context):
            if case.path == "/api/v1/billing/balances/{account}":
                return BILLING_TOKEN
            if case.method.upper() == "DELETE" and case.path == "/api/v1/session":
                # logging out must not end the token the rest of the fuzzing uses
                return requests.post(f"{live.url}/api/v1/session", timeout=10, json={
                    "username": identity, "password": "demo", "return_token": True}).json()["token"]
            return live.tokens[identity]

        def set(self, case, data, context):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    return Credentials


def load_schema(live, identity: str | None):
    schema = schemathesis.openapi.from_dict(client_spec(live))
    schema.config.update(base_url=live.url, request_timeout=10)
    if identity is not None:
        schema.auth(refresh_interval=None)(credentials(live, identity))
    return schema


@pytest.fixture(scope="module")
def supervisor_schema(live):
    return load_schema(live, "supervisor")


@pytest.fixture(scope="module")
def agent_schema(live):
    return load_schema(live, "agent1001")


@pytest.fixture(scope="module")
def anonymous_schema(live):
    return load_schema(live, None)


as_supervisor = schemathesis.pytest.from_fixture("supervisor_schema")
as_agent = schemathesis.pytest.from_fixture("agent_schema")
anonymous = schemathesis.pytest.from_fixture("anonymous_schema")


@pytest.fixture(autouse=True)
def _schemathesis_on_pytest_9(request):
    """schemathesis 4.32 renames the running test after each operation
    through ``node._nodeid``, an attribute pytest 9 no longer has: give it
    one (reports then name the test; each failure still names its operation)."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@schemathesis.check
def error_is_json_with_reason(ctx, response, case):
    """A 4xx says why, as JSON ``{"error": "…"}`` (the desktop shows it)."""
    if case.method.upper() != case.operation.method.upper():
        return None  # schemathesis' unsupported-method probe: the router's 405, see the report
    if 400 <= response.status_code < 500:
        content_type = {k.lower(): v for k, v in response.headers.items()}.get("content-type", [""])[0]
        assert content_type.startswith("application/json"), f"{response.status_code} as {content_type!r}: {response.text[:200]!r}"
        body = json.loads(response.text)
        assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body


@schemathesis.check
def no_traceback(ctx, response, case):
    """No response carries Python internals (a traceback, an exception name, a module path)."""
    found = TRACEBACK.search(response.text or "") or (EXCEPTION.search(response.text or "") if case.path != "/metrics" else None)
    assert found is None, f"internals in the body: {found.group(0)!r} in {response.text[:300]!r}"


# The billing push's rules that JSON Schema cannot state (they depend on the
# stored state; the operation's description and its 404/409/422 say them):
# the account must exist, the currency must be the account's, and a balance
# may not be older than the stored one.
BILLING_STATE_REFUSALS = {404: "no billing account ", 409: "a newer balance is stored", 422: " is kept in "}


@schemathesis.check
def valid_data_accepted(ctx, response, case):
    """schemathesis' ``positive_data_acceptance``, but a billing push may be
    refused for what only the state decides: an ``as_of`` in the future (400),
    an unknown account (404), an older ``as_of`` (409), a currency other than
    the account's (422), each with its own reason."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except AssertionError:
        if case.path != "/api/v1/billing/balances/{account}":
            raise
        error = json.loads(response.text).get("error", "")
        if response.status_code == 400 and error == "as_of is in the future":
            as_of = datetime.fromisoformat(case.body["as_of"].replace("Z", "+00:00"))
            assert as_of > datetime.now(timezone.utc), case.body
            return None
        if BILLING_STATE_REFUSALS.get(response.status_code, "\0") in error:
            return None
        raise


OURS = [error_is_json_with_reason, no_traceback, valid_data_accepted]
FUZZ = settings(max_examples=30, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


@as_supervisor.parametrize()
@FUZZ
def test_fuzz_as_supervisor(case):
    """Every documented operation as a supervisor (billing push: its token):
    no 5xx, documented statuses, content types and bodies, 4xx as
    ``{"error"}`` JSON, no traceback, invalid input refused, valid input
    accepted, the credentials actually enforced; GET /pops (agents only) is
    a 403."""
    case.call_and_validate(additional_checks=OURS, excluded_checks=[positive_data_acceptance])


@as_agent.parametrize()
@FUZZ
def test_fuzz_as_agent(case):
    """The same as agent 1001: its own pops, calls and the interaction log
    it may read and write."""
    case.call_and_validate(additional_checks=OURS, excluded_checks=[positive_data_acceptance])


@anonymous.parametrize()
@FUZZ
def test_fuzz_anonymous(case):
    """The same with no credentials at all: every guarded operation is a
    401 JSON error (the billing push included), public ones still conform."""
    case.call_and_validate(additional_checks=OURS, excluded_checks=[positive_data_acceptance])


def test_the_served_document_states_what_the_server_enforces(live):
    """Checked on its own as well, so a regression names the rule: the
    configured dispositions, the audit actions, and ``limit``'s bounds."""
    from screenpop.security.audit import ACTIONS

    spec = requests.get(f"{live.url}/api/v1/openapi.json", timeout=10).json()
    ui = requests.get(f"{live.url}/api/v1/config/ui", timeout=10,
                      headers={"Authorization": f"Bearer {live.tokens['supervisor']}"}).json()
    assert spec["components"]["schemas"]["Outcome"]["properties"]["disposition"]["enum"] == ui["dispositions"]
    audit = {p["name"]: p["schema"] for p in spec["paths"]["/api/v1/audit"]["get"]["parameters"]}
    assert audit["action"]["anyOf"][0]["enum"] == list(ACTIONS)
    assert (audit["limit"]["minimum"], audit["limit"]["maximum"]) == (1, 500)
    search = {p["name"]: p["schema"] for p in spec["paths"]["/api/v1/interactions"]["get"]["parameters"]}
    assert (search["limit"]["minimum"], search["limit"]["maximum"]) == (1, 200)
    push = spec["paths"]["/api/v1/billing/balances/{account}"]["put"]
    assert {"404", "409", "422"} <= set(push["responses"]) and "EUR" in spec["components"]["schemas"]["Balance"]["properties"]["currency"]["enum"]
