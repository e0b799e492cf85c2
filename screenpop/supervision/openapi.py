"""The OpenAPI part of the supervisors' routes (screenpop.supervision.http),
merged into ``/api/v1/openapi.json`` by the app; kept next to the handlers so
the two change together."""
from __future__ import annotations

from typing import Any

BEARER_OR_COOKIE = [{"session": []}, {"bearer": []}]
_NUM_OR_NULL = {"type": ["number", "null"]}
_TEXT_OR_NULL = {"type": ["string", "null"]}
ERRORS = {400: "Invalid input", 401: "Not logged in or bad token", 403: "Not allowed for this role", 404: "Not found",
          503: "Dependency unavailable"}

QUEUE_STATE = {
    "type": "object",
    "description": "A queue right now; also pushed to supervisors' WebSockets as it changes",
    "properties": {
        "type": {"const": "queue"},
        "queue": {"type": "string"},
        "waiting": {"type": "array", "description": "in queue order", "items": {"type": "object", "properties": {
            "call_id": {"type": "string"}, "caller_number": _TEXT_OR_NULL, "caller_name": _TEXT_OR_NULL,
            "customer_name": _TEXT_OR_NULL, "vip": {"type": "boolean"},
            "since": {"type": "string", "format": "date-time"}, "position": {"type": "integer"},
            "wait_seconds": {"type": "number"}}}},
        "longest_wait_seconds": _NUM_OR_NULL,
        "agents": {"type": "object", "properties": {k: {"type": "integer"} for k in (
            "logged_in", "available", "ringing", "on_call", "wrap_up", "paused", "unavailable")}},
        "today": {"type": "object", "properties": {
            "offered": {"type": "integer"}, "answered": {"type": "integer"}, "abandoned": {"type": "integer"},
            "avg_wait_seconds": _NUM_OR_NULL, "avg_talk_seconds": _NUM_OR_NULL,
            "service_level": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            "sl_threshold_seconds": {"type": "number"}}},
        "alerts": {"type": "array", "items": {"type": "object", "properties": {
            "kind": {"enum": ["longest_wait", "service_level"]}, "message": {"type": "string"},
            "value": {"type": "number"}, "threshold": {"type": "number"}}}},
        "updated_at": {"type": "string", "format": "date-time"},
        "thresholds": {"type": "object", "description": "the alert limits", "properties": {
            "longest_wait_seconds": {"type": "number"}, "service_level": {"type": "number"}}},
        "link_up": {"type": "boolean", "description": "false: the PBX link is down; the last known state"},
    },
    "required": ["type", "queue", "waiting", "agents", "today", "alerts"],
}

AGENT_STATE = {
    "type": "object",
    "description": "An agent right now; also pushed to supervisors' WebSockets as it changes",
    "properties": {
        "type": {"const": "agent"},
        "agent_id": {"type": "string"},
        "name": _TEXT_OR_NULL,
        "state": {"enum": ["available", "ringing", "on_call", "wrap_up", "paused", "unavailable", "logged_out"]},
        "pause_reason": _TEXT_OR_NULL,
        "since": {"type": "string", "format": "date-time"},
        "queues": {"type": "array", "items": {"type": "string"}},
        "call": {"type": ["object", "null"], "properties": {
            "call_id": {"type": "string"}, "queue": _TEXT_OR_NULL, "caller_number": _TEXT_OR_NULL,
            "caller_name": _TEXT_OR_NULL, "customer_name": _TEXT_OR_NULL, "vip": {"type": "boolean"},
            "card": {"type": ["object", "null"]}}},
        "today": {"type": "object", "properties": {"answered": {"type": "integer"}, "talk_seconds": {"type": "number"}}},
    },
    "required": ["type", "agent_id", "state", "since", "queues", "today"],
}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): {"description": ERRORS[c], "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            for c in codes}


def _ok(schema: dict[str, Any]) -> dict[str, Any]:
    return {"200": {"description": "OK", "content": {"application/json": {"schema": schema}}}}


def schemas() -> dict[str, Any]:
    return {"QueueState": QUEUE_STATE, "AgentState": AGENT_STATE}


def paths() -> dict[str, Any]:
    def listing(ref: str, summary: str) -> dict[str, Any]:
        schema = {"type": "object", "properties": {"items": {"type": "array", "items": {"$ref": ref}}}}
        return {"get": {"summary": summary, "security": BEARER_OR_COOKIE, "responses": {**_ok(schema), **_errors(401, 403)}}}

    def one(ref: str, name: str, summary: str) -> dict[str, Any]:
        schema = {"allOf": [{"$ref": ref}, {"type": "object", "properties": {
            "calls_today": {"type": "array", "items": {"$ref": "#/components/schemas/Interaction"}}}}]}
        param = {"name": name, "in": "path", "required": True, "schema": {"type": "string", "maxLength": 128}}
        return {"get": {"summary": summary, "security": BEARER_OR_COOKIE, "parameters": [param],
                        "responses": {**_ok(schema), **_errors(400, 401, 403, 404, 503)}}}

    queues = {"type": "object", "properties": {"queues": {"type": "array", "items": {"$ref": "#/components/schemas/QueueState"}}}}
    return {
        "/api/v1/queues": listing("#/components/schemas/QueueState",
                                  "Every queue: callers waiting, agents by state, today's figures, alerts (supervisors, admins)"),
        "/api/v1/queues/{queue}": one("#/components/schemas/QueueState", "queue",
                                      "One queue, with its calls of the day (supervisors, admins)"),
        "/api/v1/agents": listing("#/components/schemas/AgentState",
                                  "Every agent: state and time in it, current call and card, today's figures (supervisors, admins)"),
        "/api/v1/agents/{agent_id}": one("#/components/schemas/AgentState", "agent_id",
                                         "One agent, with the calls it answered today and their outcomes (supervisors, admins)"),
        "/api/v1/wallboard": {"get": {
            "summary": "The queues for a wallboard screen, callers not named; its own read-only token",
            "security": [],
            "parameters": [{"name": "token", "in": "query", "required": True, "schema": {"type": "string"},
                            "description": "[supervision] wallboard_token (Authorization: Bearer works too)"}],
            "responses": {**_ok(queues), **_errors(401)},
        }},
    }
