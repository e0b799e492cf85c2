"""The headers every response of the web edge carries, and the edge's
answer to requests HTTP itself refuses.

* Every page (``text/html``): a Content-Security-Policy without
  ``unsafe-inline`` (scripts and styles come from /static only; the pages and
  their JS never use ``style=`` attributes or inline ``<script>``, the JS only
  sets CSSOM properties, which CSP allows), ``frame-ancestors 'none'``, and
  ``nosniff``.  ``base.html`` carries the same policy in a meta tag for a
  page saved to disk; the header adds ``frame-ancestors``, which a meta tag
  cannot.
* Every JSON response: ``Cache-Control: no-store`` unless the handler chose
  otherwise: calls, cards, users and the audit log are personal data, and a
  shared or browser cache must not keep them.
* No version banner: ``Server: screenpop`` instead of aiohttp's
  ``Python/3.x aiohttp/x.y`` (which tells an attacker which CVEs to try), on
  the app's responses and on aiohttp's own protocol errors.
* A request HTTP's parser refuses (a NUL or other control byte in a header, a
  line too long) is aiohttp's 400, logged as one WARNING line naming the
  reason and the client, not an ERROR with a traceback: it is the client's
  fault, and an alert on ERROR must not fire for a scanner.
"""
from __future__ import annotations

import logging

import aiohttp.web_response
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

SERVER = "screenpop"
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'")
PAGE_POLICY = CONTENT_SECURITY_POLICY + "; frame-ancestors 'none'"

log = logging.getLogger(__name__)


async def _on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers["Server"] = SERVER
    content_type = headers.get("Content-Type", "")
    if content_type.startswith("text/html"):
        headers["Content-Security-Policy"] = PAGE_POLICY
        headers.setdefault("X-Content-Type-Options", "nosniff")
    elif content_type.startswith("application/json"):
        headers.setdefault("Cache-Control", "no-store")


class ProtocolErrorsAsWarnings(logging.Filter):
    """On aiohttp's server logger: a request refused by the HTTP parser
    becomes one WARNING line (``reason=…``) without the traceback; anything
    else passes unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            reason = " ".join(str(exc.message or "").split()).split(":")[0][:80] or "bad request"
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "-"
            record.msg, record.args = "bad request refused status=%s reason=%r remote=%s", (exc.code, reason, remote)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
        return True


_FILTER = ProtocolErrorsAsWarnings()


def setup(app: web.Application) -> None:
    """Install on ``app`` (and, once per process, on aiohttp's server logger
    and its default banner, which protocol errors use before any app sees
    the request)."""
    app.on_response_prepare.append(_on_prepare)
    aiohttp.web_response.SERVER_SOFTWARE = SERVER  # read when each response's headers are written
    server_log = logging.getLogger("aiohttp.server")
    if _FILTER not in server_log.filters:
        server_log.addFilter(_FILTER)
