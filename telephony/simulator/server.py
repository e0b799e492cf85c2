"""The AMI TCP server: sessions, login, and the actions a client needs.

Answers the way Asterisk 22's manager.c does (banner, ``Response`` wording,
list actions as EventLists ending in a ``...Complete`` event carrying
``ListItems``), so the real connection code cannot tell it from Asterisk.
Events are broadcast by :meth:`AmiServer.broadcast`; which events a session
gets follows its ``Events`` login header like Asterisk's event masks.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from telephony.protocol import AmiDecoder, encode_message

log = logging.getLogger(__name__)

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
HIGH_WATER = 1024 * 1024  # bytes queued for one client before the PBX waits for it
WRITE_TIMEOUT = 30.0  # a client that does not read for this long is cut off, like Asterisk's writetimeout

ListProvider = Callable[[str | None, dict[str, str]], list[dict[str, object]]]


class Session:
    """One client connection."""

    def __init__(self, server: AmiServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.server, self.reader, self.writer = server, reader, writer
        self.authenticated = False
        self.mask: frozenset[str] | None = frozenset()  # None: every class; empty: no events
        self.peer = writer.get_extra_info("peername")

    def wants(self, privilege: str) -> bool:
        if not self.authenticated or self.mask == frozenset():
            return False
        return self.mask is None or any(cls in self.mask for cls in privilege.split(",") if cls != "all")

    def send(self, message: dict[str, object]) -> None:
        self.write(encode_message(message))

    def write(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    async def serve(self) -> None:
        decoder = AmiDecoder(accept_actions=True)
        self.write(BANNER)
        try:
            while not self.writer.is_closing():
                data = await self.reader.read(65536)
                if not data:
                    break
                for action in decoder.feed(data):
                    if not await self.handle(action):
                        return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:  # a bug answering one client must not take the server down
            log.exception("simulator: session %s failed", self.peer)
        finally:
            self.server.sessions.discard(self)
            self.writer.close()

    async def handle(self, action: dict[str, str]) -> bool:
        """Answer one action; False closes the session."""
        headers = {key.lower(): value for key, value in action.items()}
        name = headers.get("action", "").strip().lower()
        action_id = headers.get("actionid")
        reply: dict[str, object] = {}

        def respond(response: str, **more: object) -> None:
            reply.update(Response=response)
            if action_id is not None:
                reply["ActionID"] = action_id
            reply.update(more)
            self.send(reply)

        if name == "login":
            if headers.get("username") == self.server.username and headers.get("secret") == self.server.secret:
                self.authenticated = True
                self.mask = _event_mask(headers.get("events", "on"))
                respond("Success", Message="Authentication accepted")
                if self.mask != frozenset():
                    self.send({"Event": "FullyBooted", "Privilege": "system,all", "Uptime": self.server.uptime(),
                               "LastReload": self.server.uptime(), "Status": "Fully Booted"})
                self.server.on_login(self)
                return True
            respond("Error", Message="Authentication failed")
            await self._flush()
            return False
        if name == "logoff":
            respond("Goodbye", Message="Thanks for all the fish.")
            await self._flush()
            return False
        if not self.authenticated:
            respond("Error", Message="Permission denied")
            return True
        if name == "ping":
            respond("Success", Ping="Pong", Timestamp=f"{time.time():.6f}")
        elif name == "events":
            self.mask = _event_mask(headers.get("eventmask", "on"))
            respond("Success", Events="Off" if self.mask == frozenset() else "On")
        elif name in self.server.lists:
            message, complete, provider = self.server.lists[name]
            items = provider(action_id, headers)
            respond("Success", EventList="start", Message=message)
            tail = {"ActionID": action_id} if action_id is not None else {}
            self.write(b"".join(encode_message(item) for item in items)
                       + encode_message({"Event": complete, **tail, "EventList": "Complete", "ListItems": len(items)}))
        else:
            respond("Error", Message="Invalid/unknown command")
        return True

    def backlog(self) -> int:
        return self.writer.transport.get_write_buffer_size()

    async def catch_up(self) -> None:
        """Wait until this client has read its backlog, or cut it off."""
        try:
            await asyncio.wait_for(self.writer.drain(), WRITE_TIMEOUT)
        except (ConnectionError, asyncio.TimeoutError):
            log.warning("simulator: client %s stopped reading, disconnecting", self.peer)
            self.server.sessions.discard(self)
            self.writer.transport.abort()

    async def _flush(self) -> None:
        try:
            await asyncio.wait_for(self.writer.drain(), 1.0)
        except (ConnectionError, asyncio.TimeoutError):
            pass


def _event_mask(value: str) -> frozenset[str] | None:
    """``Events: on`` (or all) is every class, ``off`` none, else a class list."""
    value = value.strip().lower()
    if value in ("on", "yes", "all", "1", "true", ""):
        return None
    if value in ("off", "no", "0", "false"):
        return frozenset()
    return frozenset(part.strip() for part in value.split(",") if part.strip())


class AmiServer:
    """Accepts sessions and fans events out to them."""

    def __init__(self, *, host: str, port: int, username: str, secret: str,
                 on_login: Callable[[Session], None] = lambda session: None):
        self.host, self.port, self.username, self.secret = host, port, username, secret
        self.on_login = on_login
        self.sessions: set[Session] = set()
        self.lists: dict[str, tuple[str, str, ListProvider]] = {}
        self._server: asyncio.base_events.Server | None = None
        self._started = time.monotonic()
        self._tasks: set[asyncio.Task] = set()

    def add_list(self, action: str, message: str, complete: str, provider: ListProvider) -> None:
        """Register a list action (``CoreShowChannels``...) answered as an EventList."""
        self.lists[action.lower()] = (message, complete, provider)

    def uptime(self) -> int:
        return int(time.monotonic() - self._started)

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(self, reader, writer)
        self.sessions.add(session)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await session.serve()
        except asyncio.CancelledError:
            pass  # stop() gave up waiting; asyncio's stream callback must not see the cancellation
        finally:
            if task is not None:
                self._tasks.discard(task)

    def broadcast(self, events: list[tuple[str, bytes]]) -> list[Session]:
        """Write encoded events (privilege, bytes) to every session that wants
        them, one write per session.  Returns the sessions now too far behind:
        the caller should await their :meth:`Session.catch_up` before sending
        more, so a slow consumer sees the PBX slow down rather than lose events."""
        everything = b"".join(chunk for _, chunk in events)
        behind = []
        for session in list(self.sessions):
            if not session.authenticated:
                continue
            if session.mask is None:
                data = everything
            else:
                data = b"".join(chunk for privilege, chunk in events if session.wants(privilege))
            if data:
                session.write(data)
                if session.backlog() > HIGH_WATER:
                    behind.append(session)
        return behind

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            session.writer.close()  # the session's read sees end of file and returns
        self.sessions.clear()
        if self._tasks:
            _, stuck = await asyncio.wait(list(self._tasks), timeout=1.0)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
