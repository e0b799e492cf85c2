"""``GET /api/v1/audit``: the audit log for admins, newest first, with filters.

Filters (all optional, combined with AND): ``actor`` (exact), ``action``
(one of :data:`screenpop.security.audit.ACTIONS`), ``target`` (a call id,
username or token name, exact), ``customer`` (part of the customer key,
e.g. ``sales:c-17``), ``since`` / ``until`` (dates, ``until`` inclusive, or
ISO times), ``limit`` (1-500, default 100), ``offset``.

Reading the audit log is audited too (``audit.searched``), so an admin
browsing who looked at whom leaves a trace of their own.
"""
from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable

from aiohttp import web

from agent_ui.jsonio import BadRequest, json_error, query_int
from screenpop.security.audit import ACTIONS, AUDIT_SEARCHED, MAX_LIMIT, AuditQuery, AuditStore, AuditTrail

log = logging.getLogger(__name__)

ROUTE = "/api/v1/audit"
MAX_TEXT = 255


def _text(query, name: str) -> str | None:
    value = query.get(name)
    if value is None or not value.strip():
        return None
    if len(value) > MAX_TEXT:
        raise BadRequest(400, f"{name} longer than {MAX_TEXT} characters")
    return value.strip()


def _bound(query, name: str, *, end: bool) -> datetime | None:
    """A date (``until`` takes the whole day) or an ISO time (naive = UTC)."""
    text = query.get(name)
    if not text:
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime.combine(day, time.min, tzinfo=timezone.utc)
            return start + timedelta(days=1) if end else start
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise BadRequest(400, f"{name} must be a date like 2026-11-23 or an ISO time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def parse_query(query) -> AuditQuery:
    action = _text(query, "action")
    if action is not None and action not in ACTIONS:
        raise BadRequest(400, f"action must be one of {', '.join(ACTIONS)}")
    return AuditQuery(actor=_text(query, "actor"), action=action, target_id=_text(query, "target"),
                      customer=_text(query, "customer"), since=_bound(query, "since", end=False),
                      until=_bound(query, "until", end=True), limit=query_int(query, "limit", 100, 1, MAX_LIMIT),
                      offset=query_int(query, "offset", 0, 0, 1_000_000))


def setup(add_route: Callable, store: AuditStore | None, trail: AuditTrail | None, *, remote: Callable[[web.Request], str]) -> None:
    async def search(request: web.Request) -> web.Response:
        if store is None:
            return json_error(503, "no audit log on this node")
        try:
            q = parse_query(request.query)
        except BadRequest as exc:
            return json_error(exc.status, str(exc))
        try:
            page = await store.search(q)
        except Exception as exc:
            log.error("audit search failed reason=%s", type(exc).__name__)
            return json_error(503, "storage unavailable, retry later", **{"Retry-After": "5"})
        user = request["user"]
        if trail is not None:
            filters = {k: v for k, v in request.query.items() if k in ("actor", "action", "target", "customer", "since", "until")}
            trail.record(user.username, AUDIT_SEARCHED, "audit", "-", actor_role=user.role, remote=remote(request),
                         detail={"filters": {k: v[:MAX_TEXT] for k, v in filters.items()}, "results": page.total})
        return web.json_response({"items": [e.as_json() for e in page.items], "total": page.total})

    add_route("GET", ROUTE, search, "admin")


def openapi_paths() -> dict[str, Any]:
    entry = {"type": "object", "properties": {
        "at": {"type": "string", "format": "date-time"}, "actor": {"type": "string"},
        "actor_role": {"type": ["string", "null"]}, "action": {"enum": list(ACTIONS)},
        "target_type": {"type": "string"}, "target_id": {"type": "string"},
        "customer": {"type": ["string", "null"]}, "remote": {"type": ["string", "null"]},
        "detail": {"type": "object"}}}
    # What parse_query enforces: the action is one of ACTIONS (blank: no
    # filter), texts at most MAX_TEXT, limit 1-MAX_LIMIT, offset 0-1,000,000.
    text = {"type": "string", "maxLength": MAX_TEXT}
    action = {"type": "string", "anyOf": [{"enum": list(ACTIONS)}, {"pattern": "^\\s*$"}]}
    params = [{"name": n, "in": "query", "required": False, "schema": schema, "description": d} for n, schema, d in (
        ("actor", text, "username, agent:ID or cli:NAME (exact)"), ("action", action, "one action; blank: any"),
        ("target", text, "call id, username or token name (exact)"),
        ("customer", text, "part of the customer key, e.g. sales:c-17"),
        ("since", {"type": "string"}, "date or ISO time"), ("until", {"type": "string"}, "date (inclusive) or ISO time (exclusive)"),
        ("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, f"1-{MAX_LIMIT}, default 100"),
        ("offset", {"type": "integer", "minimum": 0, "maximum": 1_000_000}, "default 0"))]
    errors = {str(c): {"description": d, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
              for c, d in ((400, "Invalid filter"), (401, "Not logged in"), (403, "Admins only"), (503, "Storage unavailable"))}
    return {ROUTE: {"get": {
        "summary": "The audit log (admins): who opened which customer's card, who changed which record",
        "security": [{"session": []}, {"bearer": []}], "parameters": params,
        "responses": {"200": {"description": "Newest first", "content": {"application/json": {"schema": {
            "type": "object", "properties": {"items": {"type": "array", "items": entry}, "total": {"type": "integer"}}}}}},
            **errors}}}}
