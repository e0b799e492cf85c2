"""``screenpop watch``: an agent's pops in a terminal.

Built on the ``websockets`` package rather than the server's aiohttp, so it
is a second, independent implementation of the protocol: if the viewer and
the browser both understand the server, the server speaks the protocol and
not just "what aiohttp happens to accept".

Every string that came from outside (caller ID names are set by whoever
places the call) is stripped of control characters before it reaches the
terminal, so a caller cannot send escape sequences to an agent's screen.
"""
from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

import aiohttp
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from yarl import URL

from screenpop.terminal import printable

SESSION_PATH = "/api/v1/session"
WS_PATH = "/ws"


class WatchError(Exception):
    """Something retrying will not fix: refused credentials, a bad URL."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential delays with jitter, so a restarted server is not hit by every viewer at once."""

    first: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0

    def delay(self, attempt: int) -> float:
        base = min(self.maximum, self.first * self.factor ** max(0, attempt - 1))
        return base * random.uniform(0.8, 1.0)


# ------------------------------------------------------------------ URLs


def http_base(url: str) -> URL:
    """The server's HTTP base from what the user typed (http, https, ws or wss; with or without /ws)."""
    u = URL(url)
    scheme = {"ws": "http", "wss": "https"}.get(u.scheme, u.scheme)
    if scheme not in ("http", "https") or not u.host:
        raise WatchError(f"not a server URL: {url!r} (expected http(s)://host:port)")
    path = u.path.rstrip("/")
    if path.endswith(WS_PATH):
        path = path[: -len(WS_PATH)]
    return u.with_scheme(scheme).with_path(path or "/").with_query(None).with_fragment(None)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What opens the socket: a token (``?token=``) or the session cookie the login set."""

    token: str | None = None
    cookie: str | None = None  # "name=value; name2=value2", as sent back in a Cookie header


def ws_url(url: str, token: str | None = None, agent: str | None = None) -> str:
    base = http_base(url)
    scheme = "wss" if base.scheme == "https" else "ws"
    query = {k: v for k, v in (("token", token), ("agent", agent)) if v is not None}
    return str(base.with_scheme(scheme).with_path(base.path.rstrip("/") + WS_PATH).with_query(query or None))


async def login(url: str, username: str, password: str, *, timeout: float = 10.0) -> Credentials:
    """Log in with ``POST /api/v1/session``; WatchError when the server says no.

    The session is the cookie the server sets (the pages' session); a token
    in the JSON answer is used when there is no cookie."""
    target = http_base(url)
    target = target.with_path(target.path.rstrip("/") + SESSION_PATH)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        async with session.post(target, json={"username": username, "password": password}) as resp:
            if resp.status in (400, 401, 403):
                raise WatchError(f"login refused for {username!r} (HTTP {resp.status})")
            resp.raise_for_status()
            cookie = "; ".join(f"{name}={morsel.value}" for name, morsel in resp.cookies.items()) or None
            try:
                body = await resp.json(content_type=None)
            except ValueError:
                body = None
    token = body.get("token") if isinstance(body, dict) else None
    if cookie is None and not (isinstance(token, str) and token):
        raise WatchError("login answered with neither a session cookie nor a token")
    return Credentials(token=None if cookie else token, cookie=cookie)


# ------------------------------------------------------------------ viewer


async def watch(
    url: str,
    *,
    token: str | None,
    username: str | None,
    password: str | None,
    agent: str | None = None,
    as_json: bool = False,
    out: TextIO = sys.stdout,
    status: TextIO | None = None,
    backoff: Backoff = Backoff(),
    max_failures: int | None = None,
) -> None:
    """Print every message for this user (or for ``agent``) until cancelled, reconnecting when the server goes away.

    With a username and password, an expired session is replaced by logging
    in again; with only a token, a refused token ends the viewer (WatchError).
    ``max_failures`` consecutive failed attempts also end it (None: never).
    With ``as_json`` each message is one JSON line on ``out`` and the
    viewer's own notices go to ``status`` (default: ``out``), so the output
    can be piped to ``jq``."""
    if token is None and not (username and password):
        raise WatchError("give a token, or a username and a password")
    creds = Credentials(token=token) if token is not None else None
    status = status or out
    fresh = False  # credentials we just obtained: a 401 with them is final
    failures = 0

    def say(line: str, stream: TextIO | None = None) -> None:
        print(f"{time.strftime('%H:%M:%S')} {line}", file=stream or status, flush=True)

    def show(raw: str | bytes) -> None:
        message = _parse(raw)
        if as_json:
            print(json.dumps(message, ensure_ascii=False, separators=(",", ":")), file=out, flush=True)
        else:
            say(format_message(message), out)

    while True:
        try:
            if creds is None:
                creds, fresh = await login(url, username, password), True  # type: ignore[arg-type]
            headers = {"Cookie": creds.cookie} if creds.cookie else None
            async with connect(ws_url(url, creds.token, agent), additional_headers=headers, open_timeout=10, max_size=2**20) as ws:
                failures = 0
                async for raw in ws:
                    show(raw)
            say(f"server closed the connection ({ws.close_code} {ws.close_reason or ''})".rstrip() + ", reconnecting")
        except InvalidStatus as exc:
            code = exc.response.status_code
            if code == 403:  # logged in, but not allowed (another agent's pops): retrying will not help
                raise WatchError(f"the server refused (HTTP 403{_reason(exc)})") from None
            if code != 401:
                say(f"server refused the connection (HTTP {code}), retrying")
            elif fresh or not (username and password):
                raise WatchError(f"the server refused the session (HTTP 401{_reason(exc)})") from None
            else:
                say("session expired, logging in again")
                creds = None
                continue
        except InvalidURI as exc:
            raise WatchError(str(exc)) from None
        except (OSError, ConnectionClosed, InvalidHandshake, aiohttp.ClientError, asyncio.TimeoutError) as exc:
            say(f"disconnected: {_clean(str(exc) or type(exc).__name__)}")
        fresh = False
        failures += 1
        if max_failures is not None and failures >= max_failures:
            raise WatchError(f"gave up after {failures} failed attempts")
        delay = backoff.delay(failures)
        say(f"reconnecting in {delay:.1f}s")
        await asyncio.sleep(delay)


def _reason(exc: InvalidStatus) -> str:
    """The server's one-line reason from a JSON error body, if any."""
    try:
        reason = json.loads(exc.response.body or b"").get("error")
    except (ValueError, AttributeError):
        return ""
    return f": {_clean(reason)}" if isinstance(reason, str) else ""


def _parse(raw: str | bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return {"type": "unreadable", "raw": raw if isinstance(raw, str) else repr(raw)}


# ------------------------------------------------------------------ formatting


def format_message(msg: Any) -> str:
    """One readable line per server message; never raises, whatever the server sent."""
    if not isinstance(msg, dict):
        return "MESSAGE " + _clean(_compact(msg))
    kind = msg.get("type")
    formatter = _FORMATTERS.get(kind) if isinstance(kind, str) else None
    if formatter is None:
        return f"{_clean(str(kind or 'MESSAGE')).upper()} " + _clean(_compact({k: v for k, v in msg.items() if k != "type"}))
    try:
        return formatter(msg)
    except Exception:  # a shape we did not expect: show it rather than crash the viewer
        return f"{_clean(str(kind)).upper()} " + _clean(_compact(msg))


def _hello(m: dict) -> str:
    user = _dict(m.get("user"))
    who = _text(user.get("username"))
    if user.get("agent_id"):
        who += f" (agent {_text(user.get('agent_id'))})"
    elif user.get("role"):
        who += f" ({_text(user.get('role'))})"
    return f"HELLO connected as {who}, server time {_text(m.get('server_time'))}"


def _pop(m: dict) -> str:
    caller = _dict(m.get("caller"))
    number = _text(caller.get("number") or caller.get("e164") or "withheld")
    if caller.get("name"):
        number += f' "{_text(caller.get("name"))}"'
    queue = _text(m.get("queue")) if m.get("queue") else "direct"
    return f"POP call={_text(m.get('call_id'))} queue={queue} caller={number} · {describe_card(m.get('card'))}"


def _retract(m: dict) -> str:
    return f"RETRACT call={_text(m.get('call_id'))} ({_text(m.get('reason'))})"


def _call(m: dict) -> str:
    event = _text(m.get("event"))
    line = f"CALL call={_text(m.get('call_id'))} {event}"
    if event == "transferred" and m.get("to"):
        line += f" to {_text(m.get('to'))}"
    if event == "answered" and m.get("agent"):
        line += f" by {_text(m.get('agent'))}"
    if event == "ended" and m.get("reason"):
        line += f" ({_text(m.get('reason'))})"
    return line


def _card(m: dict) -> str:
    return f"CARD call={_text(m.get('call_id'))} updated · {describe_card(m.get('card'))}"


def _queue(m: dict) -> str:
    rest = " ".join(f"{_clean(str(k))}={_text(v)}" for k, v in m.items() if k not in ("type", "queue", "waiting"))
    return f"QUEUE {_text(m.get('queue'))} waiting={_text(m.get('waiting'))} {rest}".rstrip()


def _agent(m: dict) -> str:
    rest = " ".join(f"{_clean(str(k))}={_text(v)}" for k, v in m.items() if k not in ("type", "agent", "state"))
    return f"AGENT {_text(m.get('agent'))} {_text(m.get('state'))} {rest}".rstrip()


def _error(m: dict) -> str:
    return f"ERROR {_text(m.get('reason'))}"


_FORMATTERS = {
    "hello": _hello,
    "pop": _pop,
    "retract": _retract,
    "call": _call,
    "card": _card,
    "queue": _queue,
    "agent": _agent,
    "error": _error,
    "pong": lambda m: f"PONG {_text(m.get('id'))} server time {_text(m.get('server_time'))}",
}


def describe_card(card: Any) -> str:
    """Who is calling and what matters first: name, balance, open tickets, what is missing."""
    card = _dict(card)
    if not card:
        return "card pending"
    status = card.get("status")
    persons = [p for p in card.get("persons") or [] if isinstance(p, dict)] if isinstance(card.get("persons"), list) else []
    if status == "withheld":
        parts = ["number withheld"]
    elif status == "multiple":
        names = ", ".join(_text(p.get("name") or "?") for p in persons[:3])
        parts = [f"{len(persons)} candidates: {names}" + (", …" if len(persons) > 3 else "")]
    elif status == "known" and persons:
        parts = _person(persons[0])
    else:
        parts = ["unknown caller"]
    missing = card.get("missing_sources")
    if isinstance(missing, list) and missing:
        parts.append("missing: " + ", ".join(_text(s) for s in missing))
    return " · ".join(parts)


def _person(p: dict) -> list[str]:
    name = _text(p.get("name") or "(no name)")
    if p.get("company"):
        name += f" ({_text(p.get('company'))})"
    if p.get("vip") is True:
        name += " VIP"
    parts = [name]
    billing = _dict(p.get("billing"))
    if billing.get("balance") is not None:
        balance = f"balance {_text(billing.get('balance'))} {_text(billing.get('currency') or '')}".rstrip()
        if billing.get("overdue_amount") not in (None, "0", "0.00", 0):
            balance += f" (overdue {_text(billing.get('overdue_amount'))})"
        parts.append(balance)
    tickets = _dict(p.get("support")).get("open_tickets")
    if isinstance(tickets, list):
        tickets = len(tickets)
    if tickets:
        parts.append(f"{_text(tickets)} open ticket{'s' if tickets != 1 else ''}")
    return parts


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    if value is None:
        return "-"
    return _clean(value if isinstance(value, str) else _compact(value))


def _compact(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    except (ValueError, TypeError, RecursionError):
        return repr(value)


def _clean(text: str, limit: int = 200) -> str:
    """Printable text only (control and format characters shown as escapes,
    :func:`screenpop.terminal.printable`); long values are cut."""
    cleaned = printable(text[: limit + 1])
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"
