"""JSON in and out at the HTTP edge, the same way on every route: a 4xx with
a one-line reason in ``{"error": ...}``, never a traceback, never a 5xx for
something the client sent."""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web


class BadRequest(Exception):
    """The request cannot be served as sent; the message says why."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


def json_error(status: int, reason: str, **headers: str) -> web.Response:
    return web.json_response({"error": reason}, status=status, headers=headers or None)


async def read_json_object(request: web.Request, *, max_bytes: int, what: str = "the body") -> dict[str, Any]:
    """The body as a JSON object, or BadRequest (415 not JSON, 413 too large, 400 unreadable)."""
    if request.content_type != "application/json":
        raise BadRequest(415, f"send {what} as application/json")
    if request.content_length is not None and request.content_length > max_bytes:
        raise BadRequest(413, f"body larger than {max_bytes} bytes")
    raw = await request.content.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise BadRequest(413, f"body larger than {max_bytes} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(400, "body is not valid JSON") from None
    except RecursionError:  # "[[[[…" within the size limit
        raise BadRequest(400, "body is nested too deeply") from None
    if not isinstance(body, dict):
        raise BadRequest(400, "body must be a JSON object")
    return body


@web.middleware
async def json_http_errors(request: web.Request, handler):
    """The router's own 404/405 as JSON too, so an API client never has to parse text."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        if request.path.startswith("/api/"):
            return json_error(404, "no such route")
        raise
    except web.HTTPMethodNotAllowed as exc:
        return json_error(405, f"{request.method} not allowed here; use {', '.join(sorted(exc.allowed_methods))}",
                          Allow=",".join(sorted(exc.allowed_methods)))


def query_int(query, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within bounds, or a 400 naming it."""
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(400, f"{name} must be an integer") from None
    if not low <= value <= high:
        raise BadRequest(400, f"{name} must be between {low} and {high}")
    return value
