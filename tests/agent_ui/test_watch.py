"""`screenpop watch`: the terminal viewer against a real server, and its line formatting."""
from __future__ import annotations

import asyncio
import io
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_ui import ws as ws_route
from agent_ui.connections import SocketSettings
from agent_ui.hub import Hub
from agent_ui.protocol import CallUpdate, CardUpdate, Pop, Retract
from screenpop.watch import Backoff, WatchError, format_message, http_base, watch, ws_url

ROOT = Path(__file__).resolve().parents[2]
FAST = Backoff(first=0.05, maximum=0.2)
TIMEOUT = 5.0

CARD = {
    "status": "known",
    "e164": "+34912345678",
    "persons": [
        {
            "name": "José García",
            "company": "Acme Ibérica",
            "vip": True,
            "billing": {"account": "AC-17", "balance": "-42.10", "currency": "EUR", "overdue_amount": "10.00"},
            "support": {"open_tickets": 2},
        }
    ],
    "sources": {},
    "missing_sources": ["sales"],
}


@dataclass
class User:
    username: str
    role: str
    agent_id: str | None = None


TOKENS = {"tok-alice": User("alice", "agent", "1001"), "tok-sue": User("sue", "supervisor")}
PASSWORDS = {"alice": ("s3cret", "tok-alice"), "sue": (" pass phrase ", "tok-sue")}
COOKIE = "screenpop_session"


async def authenticate(request):
    """Stand-in for agent_ui.auth (written separately): session cookie, else ``token`` query parameter."""
    return TOKENS.get(request.cookies.get(COOKIE) or request.query.get("token", ""))


async def session_endpoint(request: web.Request) -> web.Response:
    """Stand-in for POST /api/v1/session: the session travels as a cookie, as for the pages."""
    body = await request.json()
    known = PASSWORDS.get(body.get("username"))
    if known is None or known[0] != body.get("password"):
        return web.json_response({"error": "bad credentials"}, status=401)
    response = web.json_response({"username": body["username"]})
    response.set_cookie(COOKIE, known[1], httponly=True, samesite="Lax")
    return response


async def start(port: int = 0) -> tuple[Hub, TestServer]:
    hub = Hub(settings=SocketSettings(heartbeat=5.0, close_timeout=1.0))
    app = web.Application()
    ws_route.setup(app, hub, authenticate)
    app.router.add_post("/api/v1/session", session_endpoint)
    server = TestServer(app, host="127.0.0.1", port=port or None)
    await server.start_server()
    return hub, server


@pytest.fixture
async def running():
    hub, server = await start()
    yield hub, server
    await server.close()


async def wait_for_output(out: io.StringIO, text: str, task: asyncio.Task | None = None) -> None:
    deadline = time.monotonic() + TIMEOUT
    while text not in out.getvalue():
        if task is not None and task.done():
            task.result()  # raise what ended the viewer
        assert time.monotonic() < deadline, f"{text!r} never printed; output was:\n{out.getvalue()}"
        await asyncio.sleep(0.01)


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def base(server: TestServer) -> str:
    return str(server.make_url("/"))


# ------------------------------------------------------------------ against a server


async def test_watch_prints_the_pops_of_the_logged_in_agent(running):
    hub, server = running
    out = io.StringIO()
    task = asyncio.create_task(watch(base(server), token="tok-alice", username=None, password=None, out=out, backoff=FAST))
    await wait_for_output(out, "HELLO connected as alice (agent 1001)", task)

    hub.send_to_agent("1001", Pop("c1", "sales", {"number": "912345678", "name": "JOSE GARCIA", "e164": "+34912345678"}, CARD))
    hub.send_to_agent("1001", CardUpdate("c1", {**CARD, "missing_sources": []}))
    hub.send_to_agent("1001", CallUpdate("c1", "answered", {"agent": "1001"}))
    hub.send_to_agent("1001", Retract("c2", "answered elsewhere"))
    await wait_for_output(out, "RETRACT", task)
    await stop(task)

    lines = out.getvalue().splitlines()
    pop_line = next(line for line in lines if " POP " in line)
    for expected in ("call=c1", "queue=sales", '912345678 "JOSE GARCIA"', "José García (Acme Ibérica) VIP", "balance -42.10 EUR (overdue 10.00)", "2 open tickets", "missing: sales"):
        assert expected in pop_line
    assert any(" CARD call=c1 updated · José García" in line for line in lines)
    assert any(" CALL call=c1 answered by 1001" in line for line in lines)
    assert any(" RETRACT call=c2 (answered elsewhere)" in line for line in lines)
    assert all(time.strptime(line[:8], "%H:%M:%S") for line in lines)  # each line starts with the time


async def test_watch_logs_in_with_a_username_and_password(running):
    hub, server = running
    out = io.StringIO()
    task = asyncio.create_task(watch(base(server), token=None, username="alice", password="s3cret", out=out, backoff=FAST))
    await wait_for_output(out, "HELLO connected as alice", task)
    hub.send_to_agent("1001", Pop("c7", None, {"number": None, "name": None}, None))
    await wait_for_output(out, "POP call=c7 queue=direct caller=withheld · card pending", task)
    await stop(task)


async def test_a_refused_password_ends_the_viewer_instead_of_retrying(running):
    _, server = running
    with pytest.raises(WatchError, match="login refused"):
        await asyncio.wait_for(watch(base(server), token=None, username="alice", password="wrong", out=io.StringIO(), backoff=FAST), TIMEOUT)


async def test_a_refused_token_ends_the_viewer_when_it_cannot_log_in_again(running):
    _, server = running
    with pytest.raises(WatchError, match="HTTP 401"):
        await asyncio.wait_for(watch(base(server), token="stale", username=None, password=None, out=io.StringIO(), backoff=FAST), TIMEOUT)


async def test_an_expired_token_is_replaced_by_logging_in_again(running):
    _, server = running
    out = io.StringIO()
    task = asyncio.create_task(watch(base(server), token="expired", username="alice", password="s3cret", out=out, backoff=FAST))
    await wait_for_output(out, "HELLO connected as alice", task)
    assert "session expired, logging in again" in out.getvalue()
    await stop(task)


async def test_watch_reconnects_when_the_server_restarts():
    hub, server = await start()
    port = server.port
    out = io.StringIO()
    task = asyncio.create_task(watch(base(server), token="tok-alice", username=None, password=None, out=out, backoff=FAST))
    try:
        await wait_for_output(out, "HELLO", task)
        hub.send_to_agent("1001", Pop("before", "sales", {"number": "1"}, None))
        await wait_for_output(out, "call=before", task)
        await server.close()
        await wait_for_output(out, "reconnecting in", task)

        hub, server = await start(port)
        await wait_until_connected(hub)
        hub.send_to_agent("1001", Pop("after", "sales", {"number": "2"}, None))
        await wait_for_output(out, "call=after", task)
        assert out.getvalue().count("HELLO connected as alice") == 2
        assert "server closed the connection (1001 server shutting down), reconnecting" in out.getvalue()
    finally:
        await stop(task)
        await server.close()


async def wait_until_connected(hub: Hub) -> None:
    deadline = time.monotonic() + TIMEOUT
    while "1001" not in hub.connected_agents():
        assert time.monotonic() < deadline, "the viewer never came back"
        await asyncio.sleep(0.01)


async def test_watch_gives_up_after_max_failures_when_nothing_listens():
    hub, server = await start()
    url = base(server)
    await server.close()
    out = io.StringIO()
    with pytest.raises(WatchError, match="gave up after 3"):
        await asyncio.wait_for(watch(url, token="tok-alice", username=None, password=None, out=out, backoff=FAST, max_failures=3), TIMEOUT)
    assert out.getvalue().count("disconnected:") == 3


async def test_watch_needs_a_token_or_credentials():
    with pytest.raises(WatchError, match="token"):
        await watch("http://127.0.0.1:1", token=None, username="alice", password=None, out=io.StringIO())


async def test_a_supervisor_follows_one_agent_and_an_agent_cannot_follow_another(running):
    hub, server = running
    out = io.StringIO()
    task = asyncio.create_task(watch(base(server), token=None, username="sue", password=" pass phrase ", agent="1001", out=out, backoff=FAST))
    await wait_for_output(out, "HELLO connected as sue (supervisor)", task)
    hub.send_to_agent("1002", Pop("not-followed", "sales", {"number": "2"}, None))
    hub.send_to_agent("1001", Pop("followed", "sales", {"number": "1"}, None))
    await wait_for_output(out, "POP call=followed", task)
    assert "not-followed" not in out.getvalue()
    await stop(task)

    with pytest.raises(WatchError, match="HTTP 403: an agent receives only their own pops"):
        await asyncio.wait_for(watch(base(server), token="tok-alice", username=None, password=None, agent="1002", out=io.StringIO(), backoff=FAST), TIMEOUT)


async def test_json_mode_prints_each_message_as_one_json_line_and_notices_apart(running):
    hub, server = running
    out, notices = io.StringIO(), io.StringIO()
    task = asyncio.create_task(watch(base(server), token="tok-alice", username=None, password=None, as_json=True, out=out, status=notices, backoff=FAST))
    await wait_for_output(out, '"type":"hello"', task)
    hub.send_to_agent("1001", Pop("c1", "sales", {"number": "912345678", "name": "Zoë\nNewline"}, CARD))
    hub.send_to_agent("1001", Retract("c1", "abandoned"))
    await wait_for_output(out, '"type":"retract"', task)
    await server.close()
    await wait_for_output(notices, "reconnecting in", task)
    await stop(task)
    messages = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [m["type"] for m in messages] == ["hello", "pop", "retract"]
    assert messages[1]["caller"]["name"] == "Zoë\nNewline" and messages[1]["card"] == CARD


# ------------------------------------------------------------------ the command line


async def run_cli(*args: str, stdin: bytes | None = None, until: str | None = None, then=None) -> tuple[int, str, str]:
    """``screenpop watch`` in a child process, as an operator runs it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; from screenpop.cli import main; sys.exit(main(sys.argv[1:]))", "watch", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
    )
    if stdin is not None:
        proc.stdin.write(stdin)
    proc.stdin.close()
    out = b""
    try:
        if until is not None:
            while until.encode() not in out:
                line = await asyncio.wait_for(proc.stdout.readline(), 15)
                assert line, f"the viewer ended early: {out.decode()} {(await proc.stderr.read()).decode()}"
                out += line
                if then is not None and (b"HELLO" in line or b'"hello"' in line):
                    then()
            proc.terminate()
        rest, err = await asyncio.wait_for(proc.communicate(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode, (out + rest).decode(), err.decode()


async def test_the_command_prints_the_pops_with_a_token_file(running, tmp_path):
    hub, server = running
    token_file = tmp_path / "token"
    token_file.write_text("tok-alice\n")
    code, out, _ = await run_cli(
        "--url", base(server), "--token-file", str(token_file),
        until="POP call=c1", then=lambda: hub.send_to_agent("1001", Pop("c1", "sales", {"number": "912345678"}, CARD)),
    )
    assert "HELLO connected as alice (agent 1001)" in out
    assert "José García (Acme Ibérica) VIP" in out


async def test_the_command_logs_in_and_follows_an_agent_in_json(running, tmp_path):
    hub, server = running
    code, out, err = await run_cli(
        "--url", base(server), "--user", "sue", "--password-file", "-", "--agent", "1001", "--json",
        stdin=b" pass phrase \n",
        until='"call_id":"c9"', then=lambda: hub.send_to_agent("1001", Retract("c9", "abandoned")),
    )
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["type"] == "hello" and lines[0]["user"]["watching"] == "1001"
    assert lines[-1] == {"type": "retract", "call_id": "c9", "reason": "abandoned"}


async def test_the_command_explains_refusals_in_one_line(running, tmp_path):
    _, server = running
    wrong = tmp_path / "wrong"
    wrong.write_text("nope\n")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    code, _, err = await run_cli("--url", base(server), "--user", "alice", "--password-file", str(wrong))
    assert code == 2 and err.strip() == "screenpop: login refused for 'alice' (HTTP 401)"
    code, _, err = await run_cli("--url", base(server), "--token-file", str(empty))
    assert code == 2 and "token file" in err and "is empty" in err
    code, _, err = await run_cli("--url", base(server), "--user", "alice")
    assert code == 2 and "--user needs --password-file" in err
    code, _, err = await run_cli("--url", "ftp://x", "--token-file", str(wrong))
    assert code == 2 and "not a server URL" in err


# ------------------------------------------------------------------ URLs


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://pbx.example:8080", "ws://pbx.example:8080/ws?token=t%2B1"),
        ("http://pbx.example:8080/", "ws://pbx.example:8080/ws?token=t%2B1"),
        ("https://pbx.example/screenpop/", "wss://pbx.example/screenpop/ws?token=t%2B1"),
        ("wss://pbx.example/ws", "wss://pbx.example/ws?token=t%2B1"),
    ],
)
def test_the_socket_url_follows_the_server_url(url, expected):
    assert ws_url(url, "t+1") == expected


def test_the_socket_url_names_the_followed_agent_and_carries_no_token_with_a_cookie():
    assert ws_url("http://pbx.example:8080", None, "1001") == "ws://pbx.example:8080/ws?agent=1001"
    assert ws_url("http://pbx.example:8080") == "ws://pbx.example:8080/ws"


@pytest.mark.parametrize("url", ["pbx.example:8080", "ftp://pbx.example", "http://"])
def test_a_url_that_is_not_a_server_is_refused(url):
    with pytest.raises(WatchError):
        http_base(url)


# ------------------------------------------------------------------ formatting


def test_pop_lines_for_each_kind_of_card():
    caller = {"number": "+34912345678", "name": None}
    multiple = {"status": "multiple", "persons": [{"name": "Ana"}, {"name": "Luis"}], "missing_sources": []}
    assert format_message({"type": "pop", "call_id": "c1", "queue": "sales", "caller": caller, "card": multiple}) == "POP call=c1 queue=sales caller=+34912345678 · 2 candidates: Ana, Luis"
    assert format_message({"type": "pop", "call_id": "c1", "queue": None, "caller": caller, "card": {"status": "unknown"}}).endswith("· unknown caller")
    assert format_message({"type": "pop", "call_id": "c1", "caller": {"number": None}, "card": {"status": "withheld"}}).endswith("caller=withheld · number withheld")
    known_zero = {"status": "known", "persons": [{"name": "Ana", "billing": {"balance": "0.00", "currency": "EUR", "overdue_amount": "0.00"}}]}
    assert format_message({"type": "card", "call_id": "c1", "card": known_zero}) == "CARD call=c1 updated · Ana · balance 0.00 EUR"


@pytest.mark.parametrize(
    "msg, line",
    [
        ({"type": "call", "call_id": "c1", "event": "transferred", "to": "1002"}, "CALL call=c1 transferred to 1002"),
        ({"type": "call", "call_id": "c1", "event": "ended", "reason": "completed"}, "CALL call=c1 ended (completed)"),
        ({"type": "queue", "queue": "sales", "waiting": 3, "longest_wait_seconds": 42}, "QUEUE sales waiting=3 longest_wait_seconds=42"),
        ({"type": "agent", "agent": "1001", "state": "on-call", "call_id": "c1"}, "AGENT 1001 on-call call_id=c1"),
        ({"type": "error", "reason": "frame is not valid JSON"}, "ERROR frame is not valid JSON"),
        ({"type": "hello", "user": {"username": "sue", "role": "supervisor", "agent_id": None}, "server_time": "T"}, "HELLO connected as sue (supervisor), server time T"),
        ({"type": "surprise", "x": 1}, 'SURPRISE {"x":1}'),
        (["not", "an", "object"], 'MESSAGE ["not","an","object"]'),
        ({"type": "pop", "caller": "not a dict", "card": 7}, "POP call=- queue=direct caller=withheld · card pending"),
    ],
)
def test_every_message_reads_as_one_line(msg, line):
    assert format_message(msg) == line


def test_a_caller_name_cannot_send_escape_sequences_to_the_terminal():
    hostile = {"type": "pop", "call_id": "c1", "queue": "q", "caller": {"number": "1", "name": "\x1b]0;pwned\x07\x1b[2J\u202eevil\nnext"}, "card": None}
    line = format_message(hostile)
    assert "\x1b" not in line and "\x07" not in line and "\u202e" not in line and "\n" not in line
    assert "pwned" in line  # the text is still shown, only the control characters are replaced


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=25,
)
types = st.sampled_from(["pop", "retract", "call", "card", "queue", "agent", "hello", "error", "pong", "other"])


@settings(max_examples=150, deadline=None)
@given(msg=st.builds(lambda t, d: {"type": t, **d}, types, st.dictionaries(st.sampled_from(["call_id", "queue", "caller", "card", "event", "to", "reason", "user", "agent", "state", "waiting"]), json_values)) | json_values)
def test_format_message_never_raises_and_prints_one_clean_line(msg):
    line = format_message(msg)
    assert isinstance(line, str) and line
    assert not any(ch in line for ch in "\n\r\x1b\x07\x00")
