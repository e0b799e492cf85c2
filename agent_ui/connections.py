"""One connected browser: a bounded send queue, a writer task, a receive loop.

The hub never writes to a socket itself; it ``offer``s an already encoded
frame, which only appends to this connection's queue.  The writer task is the
only place that waits on the network, so a browser on a bad Wi-Fi link
delays nobody but itself.  When its queue is full it is not waited for: it is
dropped with 1013 ("try again later"), and on reconnecting it gets its open
pops replayed, which is better than a screen that shows pops a minute late.

Dead sockets (laptop lid closed, NAT timeout) are found by aiohttp's
heartbeat: a ping every ``heartbeat`` seconds, and no pong within half of it
closes the socket, which ends the receive loop and unregisters the browser.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Callable

from aiohttp import WSCloseCode, WSMsgType, web

from agent_ui import protocol

log = logging.getLogger(__name__)

TRY_AGAIN_LATER = 1013  # RFC 6455 registry: "Try Again Later"

# Why a connection ended, as logged and kept on ``Connection.end_reason``.
CLIENT_CLOSED, TOO_SLOW, ABUSE, HEARTBEAT, CONNECTION_LOST, SERVER_CLOSED = (
    "client-closed",
    "too-slow",
    "abuse",
    "heartbeat-timeout",
    "connection-lost",
    "server-closed",
)


@dataclass(frozen=True, slots=True)
class SocketSettings:
    queue_size: int = 256  # messages waiting for one browser before it counts as too slow
    heartbeat: float = 20.0  # seconds between pings; no pong within half of it = dead
    close_timeout: float = 2.0  # how long a closing handshake may take before the socket is aborted
    max_strikes: int = 5  # bad frames tolerated before closing with 1008
    max_frame: int = 64 * 1024  # aiohttp closes with 1009 above this; above 4 KB we answer 'error'
    max_per_audience: int = 32  # sockets of one agent (tabs, machines, watchers) before refusing more (429)


def new_websocket(settings: SocketSettings) -> web.WebSocketResponse:
    """The aiohttp response for one browser.

    Compression is off: cards are a few KB, and per-message deflate costs
    CPU and a 32 KB+ zlib context per socket, times 2,000 agents."""
    return web.WebSocketResponse(
        heartbeat=settings.heartbeat,
        compress=False,
        max_msg_size=settings.max_frame,
        timeout=settings.close_timeout,
    )


OnAck = Callable[["Connection", protocol.Ack], None]


class Connection:
    def __init__(
        self,
        ws: web.WebSocketResponse,
        user: Any,
        settings: SocketSettings = SocketSettings(),
        *,
        transport: asyncio.Transport | None = None,
        on_ack: OnAck | None = None,
        agent_id: str | None = None,
    ):
        self.ws = ws
        self.transport = transport  # to abort a peer that will not finish closing
        self.user = user
        self.settings = settings
        self.on_ack = on_ack
        self.username: str = getattr(user, "username", "?")
        self.agent_id: str | None = agent_id or getattr(user, "agent_id", None)  # whose pops it carries
        self.end_reason: str | None = None
        self.strikes = 0
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(settings.queue_size)
        self._held: list[bytes] | None = None
        self._writer: asyncio.Task | None = None
        self._closer: asyncio.Task | None = None
        self._done = asyncio.Event()

    def __repr__(self) -> str:
        return f"<Connection user={self.username} agent={self.agent_id} queued={self.queued}>"

    @property
    def open(self) -> bool:
        return self.end_reason is None

    @property
    def queued(self) -> int:
        return self._queue.qsize() + (len(self._held) if self._held else 0)

    # ------------------------------------------------------------ sending

    def offer(self, frame: bytes | str) -> bool:
        """Queue one encoded message; never waits.

        False when the connection is gone or was just dropped for being too
        slow; the caller forgets it."""
        if self.end_reason is not None:
            return False
        if isinstance(frame, str):
            frame = frame.encode("utf-8")
        if self._held is not None:
            if len(self._held) + self._queue.qsize() >= self.settings.queue_size:
                self._drop_slow()
                return False
            self._held.append(frame)
            return True
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            self._drop_slow()
            return False
        return True

    def hold(self) -> None:
        """Keep live messages aside while the replay of open pops is fetched.

        Without it a retract arriving during the replay could be sent before
        the (older) replayed pop, resurrecting a pop the agent must not see."""
        if self._held is None:
            self._held = []

    def release(self, first: list[bytes] = ()) -> None:
        """Queue ``first`` (the replay), then everything held meanwhile."""
        held, self._held = self._held or [], None
        for frame in [*first, *held]:
            if not self.offer(frame):
                return

    def _drop_slow(self) -> None:
        log.warning("ws client too slow, dropped agent=%s queued=%d user=%s", self.agent_id, self.queued, self.username)
        self.close(TRY_AGAIN_LATER, "too slow, reconnect", reason=TOO_SLOW)

    async def _write(self) -> None:
        send = self.ws.send_frame
        try:
            while True:
                frame = await self._queue.get()
                await send(frame, WSMsgType.TEXT)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the socket went away under us
            log.debug("ws writer stopped user=%s agent=%s error=%r", self.username, self.agent_id, exc)
            self._mark(CONNECTION_LOST)

    # ------------------------------------------------------------ lifecycle

    async def run(self) -> str:
        """Serve the socket until it closes; returns why it ended.

        Runs in the aiohttp handler task, which is this connection's receive
        task; the writer is a task of its own."""
        self._writer = asyncio.create_task(self._write(), name=f"ws-writer-{self.username}")
        ended = None
        try:
            ended = await self._receive()
        finally:
            # aiohttp may cancel this task when the peer vanishes
            # (handler_cancellation=True); the socket still says why.
            self._mark(ended or self._lost())
            self._writer.cancel()
            try:
                if self._closer is not None:
                    await asyncio.shield(self._closer)
            finally:  # even when cancelled again: close_all() waits on _done
                self._done.set()
                log.info(
                    "ws disconnected user=%s agent=%s reason=%s code=%s",
                    self.username, self.agent_id, self.end_reason, self.ws.close_code,
                )
                self._forget_failure()
        return self.end_reason or CONNECTION_LOST

    def _forget_failure(self) -> None:
        """Break the reference cycles an ended socket leaves behind.

        A cancelled writer task keeps its CancelledError, whose traceback
        holds the writer's frame, which holds this connection, which held the
        task; a reset socket's error and the end of its stream, kept by the
        response and its reader, hold frames that hold them.  Only a full garbage collection frees such cycles,
        and this process keeps those rare (``screenpop.gc_tuning``): measured,
        75 objects per dropped socket, 187,000 after two reconnect storms.
        Once the connection has ended nobody reads them."""
        reader = getattr(self.ws, "_reader", None)  # aiohttp keeps the stream's end there too
        for exc in (self.ws.exception(), reader.exception() if hasattr(reader, "exception") else None):
            while exc is not None:  # and what it was raised while handling (EofStream...)
                exc.__traceback__, exc = None, exc.__context__ or exc.__cause__
        self._writer = self._closer = None

    async def wait_closed(self) -> None:
        await self._done.wait()

    def close(self, code: int = WSCloseCode.GOING_AWAY, message: str = "", *, reason: str = SERVER_CLOSED) -> None:
        """Start closing (idempotent); the socket is aborted if the peer does not finish the handshake in time."""
        if self._closer is not None:
            return
        self._mark(reason)
        self._closer = asyncio.create_task(self._close(code, message), name=f"ws-close-{self.username}")

    async def _close(self, code: int, message: str) -> None:
        if self._writer is not None:
            # Anything still queued is stale now; frames already handed to the
            # transport are whole, so the close frame follows them cleanly.
            self._writer.cancel()
        try:
            # aiohttp bounds the wait for the peer's close frame by the same
            # timeout; this one bounds flushing what the transport still holds.
            await asyncio.wait_for(self.ws.close(code=code, message=message.encode()[:123]), 2 * self.settings.close_timeout)
        except Exception as exc:
            # A peer that does not read would keep a "gracefully" closing
            # socket, and its buffered megabytes, forever.
            log.debug("ws close handshake failed user=%s error=%r, aborting", self.username, exc)
            if self.transport is not None:
                self.transport.abort()

    def _mark(self, reason: str) -> None:
        if self.end_reason is None:
            self.end_reason = reason

    def _lost(self) -> str:
        # aiohttp records a missing pong as a TimeoutError on the response.
        return HEARTBEAT if isinstance(self.ws.exception(), asyncio.TimeoutError) else CONNECTION_LOST

    # ------------------------------------------------------------ receiving

    async def _receive(self) -> str:
        ws = self.ws
        while not ws.closed:
            msg = await ws.receive()
            if msg.type is WSMsgType.TEXT:
                self._on_frame(msg.data)
            elif msg.type is WSMsgType.BINARY:
                self._on_frame(bytes(msg.data))
            elif msg.type is WSMsgType.CLOSE:
                return CLIENT_CLOSED
            else:  # ERROR, CLOSING, CLOSED
                return self._lost()
            if self._closer is not None:
                break
        return self._lost()

    def _on_frame(self, data: str | bytes) -> None:
        try:
            message = protocol.decode_client(data)
        except protocol.ProtocolError as exc:
            self.strikes += 1
            log.info("ws bad frame user=%s agent=%s strikes=%d reason=%s", self.username, self.agent_id, self.strikes, exc.reason)
            if self.strikes >= self.settings.max_strikes:
                log.warning("ws client dropped reason=%s user=%s agent=%s", ABUSE, self.username, self.agent_id)
                self.close(WSCloseCode.POLICY_VIOLATION, "too many invalid frames", reason=ABUSE)
            else:
                self.offer(protocol.encode_frame(protocol.Error(exc.reason)))
            return
        if isinstance(message, protocol.Ping):
            self.offer(protocol.encode_frame(protocol.Pong(message.id)))
        elif isinstance(message, protocol.Ack) and self.on_ack is not None:
            try:
                self.on_ack(self, message)
            except Exception:
                log.exception("ack handler failed user=%s call_id=%s", self.username, message.call_id)
