"""An access log that never writes a secret: the WebSocket ``?token=``, a
login's password in a query string, cookies and bearer tokens are replaced
by ``***``.  ``web.AppRunner(app, access_log_class=RedactingAccessLogger)``."""
from __future__ import annotations

from aiohttp import web
from aiohttp.web_log import AccessLogger
from multidict import CIMultiDict

REDACTED_QUERY = frozenset({"token", "csrf_token", "password"})
REDACTED_HEADERS = frozenset({"authorization", "cookie", "x-csrf-token"})


class _RedactedRequest:
    """What the access log sees of a request: secrets replaced by ``***``."""

    def __init__(self, request: web.BaseRequest):
        self._request = request

    def __getattr__(self, name):
        return getattr(self._request, name)

    @property
    def path_qs(self) -> str:
        url = self._request.rel_url
        if not any(k.lower() in REDACTED_QUERY for k in url.query):
            return self._request.path_qs
        return str(url.with_query([(k, "***" if k.lower() in REDACTED_QUERY else v) for k, v in url.query.items()]))

    @property
    def headers(self) -> CIMultiDict:
        return CIMultiDict((k, "***" if k.lower() in REDACTED_HEADERS else v) for k, v in self._request.headers.items())


class RedactingAccessLogger(AccessLogger):
    """``web.AppRunner(app, access_log_class=RedactingAccessLogger)``: the
    WebSocket ``?token=`` never reaches the access log."""

    def log(self, request, response, time: float) -> None:
        super().log(_RedactedRequest(request) if request is not None else request, response, time)
