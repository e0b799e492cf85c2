"""The REST API (JSON) under ``/api/v1``: interactions, calls, pops, UI config.

Handlers are thin: parse and check the request, call the interaction store or
the orchestrator, shape the JSON.  Who may touch which call record is
:mod:`screenpop.interactions.access` (an agent: the calls offered to them;
supervisors, admins and support: all); a call not offered is a 404.  Every route is added through the access
registry with its rule, so an unguarded route cannot exist.  Bad input is a
4xx with a reason; an unreachable database is a 503, never a traceback.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Awaitable, Callable

from aiohttp import web

from agent_ui.access import ANY_USER
from agent_ui.jsonio import BadRequest, json_error, query_int, read_json_object
from agent_ui.pages import CALL_ACCESS

from screenpop.auth.accounts import ADMIN, AGENT, SUPERVISOR
from screenpop.interactions.access import scope_of
from screenpop.interactions.validate import InteractionNotFound
from screenpop.security.audit import CARD_VIEWED, NOTE_ADDED, OUTCOME_SET, customer_of_keys
from screenpop.security.privacy import NO_MASKING, PrivacyRules

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
# The interaction routes: every role, each limited to its calls
# (screenpop.interactions.access: an agent the calls offered to them).
CALL_RECORDS = ANY_USER
# Calls in progress: people on the floor; support staff are not (nor supervise).
LIVE_CALLS = frozenset({AGENT, SUPERVISOR, ADMIN})
AddRoute = Callable[[str, str, Callable, str], None]


@dataclass(slots=True)
class UiConfig:
    """What the browser needs to know that is not per call."""

    dispositions: list[str] = field(default_factory=list)
    create_contact_url: str = ""


async def read_json(request: web.Request, *, allowed: set[str], required: set[str] = frozenset()) -> dict[str, Any]:
    body = await read_json_object(request, max_bytes=MAX_BODY)
    unknown = set(body) - allowed
    if unknown:
        raise BadRequest(400, f"unknown field(s): {', '.join(sorted(unknown))}")
    missing = required - set(body)
    if missing:
        raise BadRequest(400, f"missing field(s): {', '.join(sorted(missing))}")
    return body


def _date(query, name: str) -> date | None:
    text = query.get(name)
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequest(400, f"{name} must be a date like 2026-11-23") from None


def _day_after(day: date | None) -> date | None:
    """The exclusive bound of a search "until" ``day``; none after the last date there is."""
    if day is None or day == date.max:
        return None
    return day + timedelta(days=1)


def _text(query, name: str, limit: int) -> str | None:
    text = query.get(name)
    if text is None or text.strip() == "":
        return None
    if len(text) > limit:
        raise BadRequest(400, f"{name} longer than {limit} characters")
    return text.strip()


def _user(request: web.Request):
    return request["user"]


def _guarded(handler):
    """BadRequest → 4xx, a failing store → 503 with a log line naming the route."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except BadRequest as exc:
            return json_error(exc.status, str(exc))
        except web.HTTPException:
            raise
        except InteractionNotFound:
            return json_error(404, "no such call")
        except ValueError as exc:
            return json_error(400, str(exc))
        except Exception as exc:  # the database, most likely
            log.error("api request failed path=%s error=%s", request.path, f"{type(exc).__name__}: {exc}")
            return json_error(503, "storage unavailable, retry later", **{"Retry-After": "5"})

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


def setup(app: web.Application, add_route: AddRoute, *, interactions, orchestrator, ui: UiConfig,
          on_note: Callable[[str, dict], Awaitable[None] | None] | None = None,
          privacy: PrivacyRules = NO_MASKING, audit=None, remote: Callable[[web.Request], str] | None = None,
          phone: Callable[[str | None], str | None] | None = None) -> None:
    """Add the API routes.  ``interactions`` is the interaction log (store and
    writer), ``orchestrator`` the live call state (async ``calls_snapshot``
    and ``pops_for``: the node's :class:`~screenpop.cluster.views.LiveView`); ``on_note`` tells the live
    side a note was added (so a transfer carries it to the next agent).

    ``privacy``: the ``[privacy]`` masking rules, applied to every response by
    the caller's role (and to notes before they are stored); ``audit``: an
    :class:`~screenpop.security.audit.AuditTrail` told who opened which call's
    card and who changed which record (queued, never awaited)."""
    store = interactions.store
    remote = remote or (lambda request: request.remote or "-")
    phone = phone or (lambda number: number)

    def _record(record: Any) -> dict[str, Any]:
        """A record as the API gives it, with the number as a person reads it
        (``caller_display``: national for the agents' region, else international)."""
        data = _plain(record)
        data["caller_display"] = phone(data.get("caller_number"))
        return data

    def shown(request: web.Request, data: Any) -> Any:
        return privacy.view(data, _user(request).role)

    def audited(request: web.Request, action: str, record: Any, **detail: Any) -> None:
        if audit is None:
            return
        user = _user(request)
        if user.agent_id:
            detail["agent_id"] = user.agent_id
        audit.record(user.username, action, "call", getattr(record, "call_id", None) or request.match_info["call_id"],
                     actor_role=user.role, customer=customer_of_keys(getattr(record, "customer_keys", None)),
                     remote=remote(request), detail=detail)

    async def written(call_id: str, action):
        """Run ``action`` on the stored call; a call that just ended may still
        sit in the writer's queue, so flush once before saying 404."""
        try:
            return await action()
        except InteractionNotFound:
            if interactions.writer.peek(call_id) is None:
                raise
            await interactions.writer.flush()
            return await action()

    async def readable(request: web.Request, call_id: str):
        """The call if this user may read and write it, else InteractionNotFound.

        Not offered to an agent is a 404 like no such call, never a 403: call
        ids are the PBX's linkedids (a time and a counter, easy to guess),
        and a 403 would confirm that a call exists, when and so on."""
        record = await interactions.get(call_id)
        if record is None or not scope_of(_user(request)).admits(record):
            if record is not None:
                log.warning("interaction refused call_id=%s user=%s role=%s reason=not-offered",
                            call_id, _user(request).username, _user(request).role)
            raise InteractionNotFound(call_id)
        return record

    async def may_open(user: Any, call_id: str) -> bool:
        """For the interaction page (agent_ui.pages): the same rule as the API.
        A role that sees every call gets the page without a read (its script
        says "no such call" from the API's 404, as before)."""
        scope = scope_of(user)
        if scope.every_call:
            return True
        if scope.nothing:
            return False
        try:
            record = await interactions.get(call_id)
        except ValueError:  # not a call id the log could hold (InvalidInput): no such call
            return False
        return record is not None and scope.admits(record)

    app[CALL_ACCESS] = may_open

    async def search(request: web.Request) -> web.Response:
        q = request.query
        scope = scope_of(_user(request))
        if scope.nothing:
            return json_error(403, "this account sees no calls")
        since, until = _date(q, "since"), _date(q, "until")  # since after until: simply no calls
        result = await store.search(
            number=_text(q, "number", 64), customer=_text(q, "customer", 200), agent=_text(q, "agent", 32),
            since=since, until=_day_after(until),  # "until" a day includes that day
            disposition=_text(q, "disposition", 64), offered_to=scope.agent_id,
            limit=query_int(q, "limit", 50, 1, 200), offset=query_int(q, "offset", 0, 0, 100_000))
        return web.json_response({"items": [shown(request, _record(r)) for r in result.items], "total": result.total})

    async def get_one(request: web.Request) -> web.Response:
        record = await readable(request, _call_id(request))
        audited(request, CARD_VIEWED, record)
        return web.json_response(shown(request, _record(record)))

    async def set_outcome(request: web.Request) -> web.Response:
        call_id = _call_id(request)
        body = await read_json(request, allowed={"disposition", "notes", "follow_up"}, required={"disposition"})
        # The store validates (disposition among the configured codes, sizes,
        # the date) and raises InvalidInput with the reason: a 400 here.
        # Absent, null and "" mean "none" there; anything else is checked as sent
        # (a falsy {} or 0 must be refused, not taken for "none").
        disposition, notes, follow_up = body["disposition"], privacy.on_save(body.get("notes")), body.get("follow_up")
        user = _user(request)
        if not scope_of(user).every_call:
            await readable(request, call_id)
        record = await written(call_id, lambda: store.set_outcome(
            call_id, disposition, notes=notes, follow_up=follow_up, by_user=user.username))
        audited(request, OUTCOME_SET, record, disposition=disposition, follow_up=str(follow_up) if follow_up else None,
                note_chars=len(notes) if isinstance(notes, str) else 0)
        return web.json_response(shown(request, _record(record)))

    async def add_note(request: web.Request) -> web.Response:
        call_id = _call_id(request)
        body = await read_json(request, allowed={"text"}, required={"text"})
        text = privacy.on_save(body["text"])  # the store checks it (InvalidInput: a 400 with the reason)
        user = _user(request)
        if not scope_of(user).every_call:
            await readable(request, call_id)
        note = await written(call_id, lambda: store.add_note(call_id, user.username, text))
        note = _plain(note)
        audited(request, NOTE_ADDED, None, note_chars=len(text))
        if on_note is not None:
            result = on_note(call_id, note)
            if result is not None:
                await result
        return web.json_response(shown(request, note), status=201)

    async def calls(request: web.Request) -> web.Response:
        user = _user(request)
        items = await orchestrator.calls_snapshot()
        if user.role == "agent":
            items = [c for c in items if user.agent_id in c["agents"]]
        return web.json_response({"items": privacy.view_all(items, user.role)})

    async def pops(request: web.Request) -> web.Response:
        user = _user(request)
        if not user.agent_id:
            return json_error(403, "this account has no agent id")
        return web.json_response({"items": privacy.view_all(await orchestrator.pops_for(user.agent_id), user.role)})

    async def ui_config(request: web.Request) -> web.Response:
        user = _user(request)
        return web.json_response({
            "dispositions": ui.dispositions, "create_contact_url": ui.create_contact_url,
            "agent_id": user.agent_id, "role": user.role, "display_name": user.display_name,
            "username": user.username,
        })

    add_route("GET", "/api/v1/interactions", _guarded(search), CALL_RECORDS)
    add_route("GET", "/api/v1/interactions/{call_id}", _guarded(get_one), CALL_RECORDS)
    add_route("PUT", "/api/v1/interactions/{call_id}/outcome", _guarded(set_outcome), CALL_RECORDS)
    add_route("POST", "/api/v1/interactions/{call_id}/notes", _guarded(add_note), CALL_RECORDS)
    add_route("GET", "/api/v1/calls", _guarded(calls), LIVE_CALLS)
    add_route("GET", "/api/v1/pops", _guarded(pops), AGENT)
    add_route("GET", "/api/v1/config/ui", _guarded(ui_config), ANY_USER)


def _call_id(request: web.Request) -> str:
    call_id = request.match_info["call_id"]
    if len(call_id) > 64:
        raise BadRequest(400, "call_id longer than 64 characters")
    return call_id


def _plain(value: Any) -> Any:
    """A record or note as JSON-ready data (dataclass or dict, dates as ISO text)."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


