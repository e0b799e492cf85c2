"""A business system behind a REST API, reached with one shared aiohttp session.

``url`` is the record URL with a ``{key}`` placeholder
(``https://crm.example/api/customers/{key}``); the key is percent-encoded,
so a key holding ``/`` or ``?`` cannot reach another endpoint.  A 404 or 410
means the record is gone (None); any other non-2xx, a timeout, a refused
connection, a body that is not a JSON object or is larger than
``max_body`` raises :class:`SourceError`.

``phones_url`` (``phones_query`` in the ``[[sources]]`` table, since an HTTP
source has no query) lists the phones for the index, either as a JSON list of
``{"key": ..., "phone": ...}`` objects with the next page in a
``Link: <...>; rel="next"`` header, or as ``{"items": [...], "next": url}``.
Pages are fetched one at a time, so the list never sits whole in memory.
Without it the source cannot feed the phone index.

``token`` is sent as ``Authorization: Bearer <token>``.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator, Iterable
from urllib.parse import quote

import aiohttp
from yarl import URL

from adapters.base import SourceError

GONE = {404, 410}
MAX_PAGES = 100_000


class HttpSource:
    def __init__(
        self,
        name: str,
        url: str,
        *,
        phones_url: str = "",
        token: str = "",
        fields: Iterable[str] = (),
        timeout: float = 5.0,
        phones_timeout: float = 60.0,
        connect_timeout: float = 3.0,
        max_connections: int = 20,
        max_body: int = 5 * 1024 * 1024,
    ):
        if "{key}" not in url:
            raise ValueError(f"source {name!r}: url needs a {{key}} placeholder")
        self.name = name
        self.fields = frozenset(fields)
        self._url = url
        self._phones_url = phones_url
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=connect_timeout)
        self._phones_timeout = aiohttp.ClientTimeout(total=phones_timeout, connect=connect_timeout)
        self._timeout_s = timeout
        self._max_connections = max_connections
        self._max_body = max_body
        self._headers = {"Accept": "application/json", "User-Agent": "screenpop"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings, **options: Any) -> "HttpSource":
        return cls(
            settings.name,
            settings.url,
            phones_url=settings.phones_query,
            token=settings.token,
            fields=settings.fields,
            **options,
        )

    def __repr__(self) -> str:
        return f"HttpSource({self.name!r}, {self._url!r})"

    async def fetch(self, key: str) -> dict[str, Any] | None:
        url = self._url.replace("{key}", quote(str(key), safe=""))
        status, body = await self._get(url, self._timeout)
        if status in GONE:
            return None
        record = self._json(body)
        if not isinstance(record, dict):
            raise SourceError(f"expected a JSON object, got {type(record).__name__}", source=self.name)
        return record

    async def iter_phones(self) -> AsyncIterator[tuple[str, str]]:
        if not self._phones_url:
            return
        url: str | None = str(URL(self._url.split("{key}")[0]).join(URL(self._phones_url)))
        seen: set[str] = set()
        while url:
            if url in seen or len(seen) >= MAX_PAGES:
                raise SourceError(f"phone list pagination loops back to {url}", source=self.name)
            seen.add(url)
            status, body, link = await self._get(url, self._phones_timeout, want_link=True)
            if status in GONE:
                raise SourceError(f"phone list not found (HTTP {status})", source=self.name)
            page = self._json(body)
            if isinstance(page, list):
                items, following = page, link
            elif isinstance(page, dict) and isinstance(page.get("items"), list):
                items, following = page["items"], page.get("next")
            else:
                raise SourceError("phone list must be a JSON list or an object with 'items'", source=self.name)
            for item in items:
                if not isinstance(item, dict) or item.get("key") in (None, "") or not isinstance(item.get("phone"), str):
                    raise SourceError("phone list items need 'key' and a string 'phone'", source=self.name)
                if item["phone"].strip():
                    yield str(item["key"]), item["phone"]
            url = str(URL(url).join(URL(following))) if following else None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ---------------------------------------------------------------- private

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use: a ClientSession belongs to the running loop.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers, raise_for_status=False)
        return self._session

    async def _get(self, url: str, timeout: aiohttp.ClientTimeout, want_link: bool = False):
        try:
            async with self._client().get(url, timeout=timeout, allow_redirects=True) as response:
                status = response.status
                if status in GONE:
                    body = b""
                elif status >= 300:
                    raise SourceError(f"HTTP {status} {response.reason or ''}".strip(), source=self.name)
                else:
                    body = await response.content.read(self._max_body + 1)
                    if len(body) > self._max_body:
                        raise SourceError(f"response larger than {self._max_body} bytes", source=self.name)
                link = response.links.get("next", {}).get("url") if want_link else None
        except SourceError:
            raise
        except (asyncio.TimeoutError, TimeoutError):
            raise SourceError(f"no answer within {timeout.total:g} s", source=self.name) from None
        except aiohttp.ClientConnectorError as exc:
            raise SourceError(f"cannot connect: {exc.os_error.strerror or exc}", source=self.name) from exc
        except aiohttp.ClientError as exc:
            raise SourceError(f"request failed: {type(exc).__name__}: {exc}", source=self.name) from exc
        return (status, body, str(link) if link else None) if want_link else (status, body)

    def _json(self, body: bytes) -> Any:
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SourceError(f"invalid JSON: {exc}", source=self.name) from None
