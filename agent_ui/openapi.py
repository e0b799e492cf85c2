"""The OpenAPI 3.1 description of the REST API, served at ``/api/v1/openapi.json``.

Written by hand next to the handlers (agent_ui/api.py) and checked against
the app's routes by a test, so the document cannot drift from what runs."""
from __future__ import annotations

from typing import Any, Iterable

from customer_lookup.balances import ISO_4217

ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
BEARER_OR_COOKIE = [{"session": []}, {"bearer": []}]


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "Invalid input", 401: "Not logged in", 403: "Not allowed for this role", 404: "Not found", 409: "Conflicts with the stored state", 413: "Body too large", 415: "Not JSON", 422: "Refused value", 429: "Too many failed logins", 503: "Dependency unavailable"}
    return {str(code): _json({"$ref": "#/components/schemas/Error"}, text[code]) for code in codes}


INTERACTION = {
    "type": "object",
    "properties": {
        "call_id": {"type": "string"},
        "caller_number": {"type": ["string", "null"], "description": "as received; null when withheld or restricted"},
        "caller_display": {"type": ["string", "null"], "description": "the number as a person reads it: national for the agents' region, else international"},
        "presentation": {"type": ["string", "null"], "enum": ["allowed", "restricted", "unavailable", "unverified", None],
                         "description": "restricted: the caller hid their number (no number, name or customer kept); unverified: logged from Asterisk's records only"},
        "hidden_number": {"type": ["string", "null"], "description": "admins only, with [privacy] keep_restricted_numbers: a restricted caller's real number"},
        "caller_e164": {"type": ["string", "null"]},
        "customer_name": {"type": ["string", "null"]},
        "customer_keys": {"type": "object"},
        "queue": {"type": ["string", "null"]},
        "agents_rung": {"type": "array", "items": {"type": "string"}},
        "answered_by": {"type": ["string", "null"]},
        "transfers": {"type": "array", "items": {"type": "object"}},
        "queued_at": {"type": ["string", "null"]},
        "first_ring_at": {"type": ["string", "null"]},
        "answered_at": {"type": ["string", "null"]},
        "ended_at": {"type": ["string", "null"]},
        "wait_seconds": {"type": ["number", "null"]},
        "talk_seconds": {"type": ["number", "null"]},
        "end_reason": {"type": ["string", "null"]},
        "unreached": {"type": "object", "additionalProperties": {"type": "string"}, "description": "agents whose phone never rang (busy, unreachable) -> when; not among agents_rung"},
        "reconciled": {"type": "array", "items": {"type": "string"}, "description": "the fields taken from Asterisk's own records (CEL) after an AMI outage"},
        "reconciled_at": {"type": ["string", "null"]},
        "disposition": {"type": ["string", "null"]},
        "notes": {"type": "array", "items": {"$ref": "#/components/schemas/Note"}, "description": "oldest first"},
        "follow_up": {"type": ["string", "null"], "format": "date"},
    },
    "required": ["call_id"],
}

NOTE = {
    "type": "object",
    "properties": {
        "id": {"type": ["integer", "null"]},
        "call_id": {"type": "string"},
        "author": {"type": "string"},
        "text": {"type": "string"},
        "created_at": {"type": "string"},
    },
    "required": ["call_id", "author", "text", "created_at"],
}

# What the interaction log stores from a person: no NUL (PostgreSQL cannot
# store it); "filled" text also has something besides whitespace (Python's
# whitespace, which includes the \x1c-\x1f separators and \x85).
NO_NUL = "^[^\\u0000]*$"
FILLED = "^[^\\u0000]*[^\\s\\u0000\\u001c-\\u001f\\u0085][^\\u0000]*$"

OUTCOME = {
    "type": "object",
    "properties": {
        "disposition": {"type": "string", "minLength": 1, "maxLength": 64, "description": "one of the configured codes (GET /api/v1/config/ui)"},
        "notes": {"type": ["string", "null"], "maxLength": 10000, "pattern": NO_NUL, "description": "becomes a note; empty or null: none"},
        "follow_up": {"type": ["string", "null"], "anyOf": [{"format": "date"}, {"maxLength": 0}], "description": "a day; empty or null: none"},
    },
    "required": ["disposition"],
    "additionalProperties": False,
}

BALANCE = {
    "type": "object",
    "properties": {
        "balance": {"type": ["string", "number"], "pattern": "^[+-]?[0-9]{1,12}(\\.[0-9]+)?$", "exclusiveMinimum": -1e12, "exclusiveMaximum": 1e12, "description": "decimal amount; negative is credit"},
        "currency": {"type": "string", "enum": sorted(ISO_4217), "description": "ISO 4217, and the account's own currency (422 otherwise)"},
        "as_of": {"type": ["string", "null"], "format": "date-time", "description": "with a time zone, not in the future; absent or null: now"},
        "overdue_amount": {"type": ["string", "number", "null"], "pattern": "^[+]?[0-9]{1,12}(\\.[0-9]+)?$", "minimum": 0, "exclusiveMaximum": 1e12, "description": "absent or null: 0"},
    },
    "required": ["balance", "currency"],
    "additionalProperties": False,
}

CALL_ID = {"name": "call_id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64, "pattern": FILLED}}
# A form sends its empty fields: an empty date is no filter.
DATE_OR_EMPTY = {"type": "string", "anyOf": [{"format": "date"}, {"maxLength": 0}]}


def _outcome(dispositions: Iterable[str] | None) -> dict[str, Any]:
    """The outcome body; ``disposition`` enumerates the configured codes
    (``[interactions] dispositions``): the server refuses any other."""
    if not dispositions:
        return OUTCOME
    disposition = {**OUTCOME["properties"]["disposition"], "enum": list(dispositions)}
    return {**OUTCOME, "properties": {**OUTCOME["properties"], "disposition": disposition}}


BALANCE_PUSHED = {
    "type": "object",
    "properties": {"account": {"type": "string"}, "balance": {"type": "string"}, "currency": {"type": "string"},
                   "as_of": {"type": "string", "format": "date-time"}, "cards_updated": {"type": "integer", "minimum": 0}},
    "required": ["account", "balance", "currency", "as_of", "cards_updated"],
}
BALANCE_RULES = (
    "The account must exist: a billing source (a [[sources]] entry whose fields declare `currency` and `account_no` "
    "or `account`) has a record with that key, or a balance was pushed for it before; otherwise 404 (with no "
    "billing source configured every account is taken). 422: the currency is not ISO 4217 or not the account's "
    "(the billing source's `currency`, else the stored balance's). 409: `as_of` is older than the stored balance's; "
    "nothing changes (the same `as_of` again is taken: a retry). 503: the balance store, or every billing source, "
    "cannot be reached; retry."
)


def spec(dispositions: Iterable[str] | None = None) -> dict[str, Any]:
    """The document; ``dispositions``: the configured disposition codes."""
    search_params = [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in [
            ("number", {"type": "string", "maxLength": 64, "allOf": [{"pattern": NO_NUL}, {"pattern": "^\\s*$|[0-9]"}], "description": "some digits of the number, or a whole number in any format (0034..., +34..., national: the lookup's default_region); blank: no filter"}),
            ("customer", {"type": "string", "maxLength": 200, "pattern": NO_NUL}),
            ("agent", {"type": "string", "maxLength": 32, "pattern": NO_NUL}),
            ("since", DATE_OR_EMPTY),
            ("until", DATE_OR_EMPTY),
            ("disposition", {"type": "string", "maxLength": 64, "pattern": NO_NUL}),
            ("limit", {"type": "integer", "minimum": 1, "maximum": 200}),
            ("offset", {"type": "integer", "minimum": 0, "maximum": 100000}),
        ]
    ]
    return {
        "openapi": "3.1.0",
        "info": {"title": "screenpop", "version": "1", "description": "Call-center screen pop: interactions, current calls, pops, billing push."},
        "components": {
            "schemas": {"Error": ERROR, "Interaction": INTERACTION, "Note": NOTE, "Outcome": _outcome(dispositions), "Balance": BALANCE},
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "screenpop_session"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
        "paths": {
            "/api/v1/session": {
                "post": {
                    "summary": "Log in; returns a session token for API and WebSocket clients",
                    "security": [],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object", "properties": {"username": {"type": "string"}, "password": {"type": "string"}, "return_token": {"type": "boolean", "description": "also return the session token, for Authorization: Bearer and ?token= on /ws"}}, "required": ["username", "password"]}}}},
                    "responses": {"200": _json({"type": "object", "properties": {"token": {"type": "string"}, "user": {"type": "object"}}}), **_errors(400, 401, 413, 415, 429, 503)},
                },
                "get": {"summary": "Who is logged in (user and CSRF token)", "security": BEARER_OR_COOKIE, "responses": {"200": _json({"type": "object"}), **_errors(401)}},
                "delete": {"summary": "Log out", "security": BEARER_OR_COOKIE, "responses": {"204": {"description": "Logged out"}, **_errors(401)}},
            },
            "/api/v1/config/ui": {
                "get": {
                    "summary": "What the desktop needs: disposition codes, create-contact link, the user's role and agent id",
                    "security": BEARER_OR_COOKIE,
                    "responses": {"200": _json({"type": "object", "properties": {"dispositions": {"type": "array", "items": {"type": "string"}}, "create_contact_url": {"type": "string"}, "agent_id": {"type": ["string", "null"]}, "role": {"type": "string"}}}), **_errors(401)},
                }
            },
            "/api/v1/interactions": {
                "get": {
                    "summary": "Search calls by number, customer, agent, date and disposition (newest first); an agent finds only the calls offered to them",
                    "security": BEARER_OR_COOKIE,
                    "parameters": search_params,
                    "responses": {"200": _json({"type": "object", "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Interaction"}}}}), **_errors(400, 401, 403)},
                }
            },
            "/api/v1/interactions/{call_id}": {
                "get": {
                    "summary": "One call with its notes (404 for an agent it was not offered to, as for no such call)",
                    "security": BEARER_OR_COOKIE,
                    "parameters": [CALL_ID],
                    "responses": {"200": _json({"$ref": "#/components/schemas/Interaction"}), **_errors(400, 401, 403, 404)},
                }
            },
            "/api/v1/interactions/{call_id}/outcome": {
                "put": {
                    "summary": "Record the call's outcome (disposition, notes, follow-up)",
                    "security": BEARER_OR_COOKIE,
                    "parameters": [CALL_ID],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Outcome"}}}},
                    "responses": {"200": _json({"$ref": "#/components/schemas/Interaction"}), **_errors(400, 401, 403, 404, 413, 415)},
                }
            },
            "/api/v1/interactions/{call_id}/notes": {
                "post": {
                    "summary": "Add a note to a call",
                    "security": BEARER_OR_COOKIE,
                    "parameters": [CALL_ID],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object", "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 10000, "pattern": FILLED}}, "required": ["text"], "additionalProperties": False}}}},
                    "responses": {"201": _json({"$ref": "#/components/schemas/Note"}), **_errors(400, 401, 403, 404, 413, 415)},
                }
            },
            "/api/v1/calls": {
                "get": {
                    "summary": "Calls in progress (agents see their own; not for support staff)",
                    "security": BEARER_OR_COOKIE,
                    "responses": {"200": _json({"type": "object", "properties": {"items": {"type": "array", "items": {"type": "object"}}}}), **_errors(401)},
                }
            },
            "/api/v1/pops": {
                "get": {
                    "summary": "The logged-in agent's pops in progress",
                    "security": BEARER_OR_COOKIE,
                    "responses": {"200": _json({"type": "object", "properties": {"items": {"type": "array", "items": {"type": "object"}}}}), **_errors(401, 403)},
                }
            },
            "/api/v1/billing/balances/{account}": {
                "put": {
                    "summary": "A billing system pushes an account's balance",
                    "description": BALANCE_RULES,
                    "security": [{"bearer": []}],
                    "parameters": [{"name": "account", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"}}],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Balance"}}}},
                    "responses": {"200": _json(BALANCE_PUSHED), **_errors(400, 401, 404, 409, 413, 415, 422, 503)},
                }
            },
            "/api/v1/openapi.json": {"get": {"summary": "This document", "security": [], "responses": {"200": _json({"type": "object"})}}},
            "/healthz": {
                "get": {
                    "summary": "Liveness and the state of every dependency",
                    "security": [],
                    "responses": {"200": _json({"type": "object"}), "503": _json({"type": "object"}, "Degraded")},
                }
            },
            "/metrics": {"get": {"summary": "Prometheus metrics", "security": [], "responses": {"200": {"description": "text/plain exposition format"}}}},
        },
    }
