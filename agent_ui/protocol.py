"""The agent WebSocket protocol, as data: no sockets, no clock, no hub.

Keeping the wire format in one pure module means the server, the tests, the
benchmarks and ``screenpop watch`` agree on one definition, and every hostile
frame a browser could send is rejected here, where it can be tested without
a server.

Server → client messages are frozen dataclasses with a ``to_dict``; the
orchestrator may also hand the hub plain dicts of the same shape (it owns
extra keys such as ``state`` or ``notes``), so ``encode`` takes either.
Client → server messages are few and small: anything else is a
``ProtocolError`` whose reason is sent back to the browser.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, ClassVar, Mapping, Union

PROTOCOL_VERSION = 1
MAX_CLIENT_FRAME = 4096  # bytes; browsers only send pings and acks
MAX_CALL_ID = 128
MAX_PING_ID = 64

CALL_EVENTS = frozenset({"answered", "ended", "transferred"})
SERVER_TYPES = frozenset({"hello", "pop", "retract", "call", "card", "queue", "agent", "pbx", "error", "pong"})
CLIENT_TYPES = frozenset({"ping", "ack"})


def utc_now() -> str:
    """ISO 8601 UTC with a ``Z``, the format every timestamp on the wire uses."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------- server → client


class ServerMessage:
    """Base of the server's messages: core fields, then ``extra`` keys that never override them."""

    type: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        core: dict[str, Any] = {"type": self.type}
        extra: Mapping[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.name == "extra":
                extra = value
            else:
                core[f.name] = value
        return {**extra, **core} if extra else core


@dataclass(frozen=True, slots=True)
class Hello(ServerMessage):
    """First message on every socket: who the server thinks you are, and its clock."""

    user: Mapping[str, Any]  # username, role, agent_id
    server_time: str = field(default_factory=utc_now)
    heartbeat: float | None = None
    protocol: int = PROTOCOL_VERSION
    type: ClassVar[str] = "hello"


@dataclass(frozen=True, slots=True)
class Pop(ServerMessage):
    call_id: str
    queue: str | None
    caller: Mapping[str, Any]  # number, name, e164
    card: Mapping[str, Any] | None
    sent_at: str = field(default_factory=utc_now)
    extra: Mapping[str, Any] = field(default_factory=dict)
    type: ClassVar[str] = "pop"


@dataclass(frozen=True, slots=True)
class Retract(ServerMessage):
    call_id: str
    reason: str  # answered elsewhere · abandoned · not answered · …
    type: ClassVar[str] = "retract"


@dataclass(frozen=True, slots=True)
class CallUpdate(ServerMessage):
    call_id: str
    event: str  # answered · ended · transferred
    extra: Mapping[str, Any] = field(default_factory=dict)  # agent, to, reason, ts
    type: ClassVar[str] = "call"

    def __post_init__(self) -> None:
        if self.event not in CALL_EVENTS:
            raise ValueError(f"call event must be one of {sorted(CALL_EVENTS)}, not {self.event!r}")


@dataclass(frozen=True, slots=True)
class CardUpdate(ServerMessage):
    """A slow source answered after the pop: the whole card again, not a patch."""

    call_id: str
    card: Mapping[str, Any]
    type: ClassVar[str] = "card"


@dataclass(frozen=True, slots=True)
class QueueState(ServerMessage):
    queue: str
    waiting: int
    extra: Mapping[str, Any] = field(default_factory=dict)  # longest_wait_seconds, agents_available, …
    type: ClassVar[str] = "queue"


@dataclass(frozen=True, slots=True)
class AgentState(ServerMessage):
    agent: str
    state: str  # available · ringing · on-call · paused · offline
    extra: Mapping[str, Any] = field(default_factory=dict)  # call_id, since, …
    type: ClassVar[str] = "agent"


@dataclass(frozen=True, slots=True)
class Error(ServerMessage):
    reason: str
    type: ClassVar[str] = "error"


@dataclass(frozen=True, slots=True)
class Pong(ServerMessage):
    id: str | int | None = None
    server_time: str = field(default_factory=utc_now)
    type: ClassVar[str] = "pong"


Message = Union[ServerMessage, Mapping[str, Any]]


def encode(msg: Message) -> str:
    """Compact JSON text of one server message.

    NaN and infinities are refused (browsers' ``JSON.parse`` rejects them), as
    is anything that is not JSON-able: a broken card fails here, once, in the
    caller, rather than in 2,000 writer tasks."""
    data = msg.to_dict() if isinstance(msg, ServerMessage) else msg
    if not isinstance(data, Mapping):
        raise TypeError(f"a message is a mapping or a ServerMessage, not {type(msg).__name__}")
    kind = data.get("type")
    if kind not in SERVER_TYPES:
        raise ValueError(f"unknown server message type {kind!r}")
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def encode_frame(msg: Message) -> bytes:
    """``encode`` as the UTF-8 payload of a text frame, so fan-out encodes once.

    Raises ``UnicodeEncodeError`` (a ``ValueError``) for lone surrogates,
    which ``json.dumps`` lets through with ``ensure_ascii=False``."""
    return encode(msg).encode("utf-8")


# ---------------------------------------------------------------- client → server


class ProtocolError(ValueError):
    """A client frame the server will not act on; ``reason`` goes back to the browser."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Ping:
    """Application-level ping: lets a browser measure latency and see the server clock."""

    id: str | int | None = None


@dataclass(frozen=True, slots=True)
class Ack:
    """The browser displayed the pop of ``call_id``."""

    call_id: str


ClientMessage = Union[Ping, Ack]


def _refuse_constant(name: str) -> Any:
    raise ProtocolError(f"{name} is not valid JSON")


def decode_client(frame: str | bytes) -> ClientMessage:
    """Parse one frame from a browser or raise ``ProtocolError``.

    Unknown keys are ignored so newer browsers can talk to older servers;
    unknown types are not, so a typo is visible at once."""
    if not isinstance(frame, str):
        raise ProtocolError("binary frames are not accepted, send JSON text")
    if len(frame) > MAX_CLIENT_FRAME or len(frame.encode("utf-8", "surrogatepass")) > MAX_CLIENT_FRAME:
        raise ProtocolError(f"frame larger than {MAX_CLIENT_FRAME} bytes")
    try:
        data = json.loads(frame, parse_constant=_refuse_constant)
    except ProtocolError:
        raise
    except RecursionError:
        raise ProtocolError("JSON nested too deeply") from None
    except ValueError:
        raise ProtocolError("frame is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("a message must be a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("a message needs a string 'type'")
    if kind == "ping":
        ping_id = data.get("id")
        if ping_id is not None and not _valid_ping_id(ping_id):
            raise ProtocolError(f"ping 'id' must be a string of at most {MAX_PING_ID} characters or an integer")
        return Ping(ping_id)
    if kind == "ack":
        call_id = data.get("call_id")
        if not isinstance(call_id, str) or not call_id or len(call_id) > MAX_CALL_ID:
            raise ProtocolError(f"ack needs a 'call_id' string of 1 to {MAX_CALL_ID} characters")
        return Ack(call_id)
    raise ProtocolError(f"unknown message type {kind[:32]!r}, expected one of {sorted(CLIENT_TYPES)}")


def _valid_ping_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**53) <= value <= 2**53  # what a browser's Number holds exactly
    return isinstance(value, str) and len(value) <= MAX_PING_ID
