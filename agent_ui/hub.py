"""Who is connected, and fan-out of messages to them.

An agent may have the desktop open in several tabs (or on two machines):
every pop goes to each.  A message is encoded once and the same bytes are
offered to every socket, because fan-out to 2,000 agents and their
supervisors must cost one ``json.dumps`` and N queue appends, not N dumps.

The hub is the ``Delivery`` the orchestrator talks to: ``send_to_agent`` and
``send_to_supervisors`` are plain functions that never wait on a socket.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from aiohttp import WSCloseCode, web

from agent_ui import protocol
from agent_ui.connections import Connection, OnAck, SocketSettings

log = logging.getLogger(__name__)

AGENT, SUPERVISOR = "agent", "supervisor"
SUPERVISOR_ROLES = frozenset({"supervisor", "admin"})

Replay = Callable[[Any], Awaitable[list[protocol.Message]]]


async def no_replay(user: Any) -> list[protocol.Message]:
    return []


@dataclass(frozen=True, slots=True)
class Audience:
    """Which messages a socket receives: one agent's, or the supervisors'."""

    kind: str  # agent | supervisor
    agent_id: str | None = None


def audience_of(user: Any) -> Audience | None:
    """None when the user may not open a socket (an agent account with no agent id, an unknown role).

    An agent is registered under its own agent id and nothing else, so no
    query parameter or header can make a socket receive someone else's pops."""
    role = getattr(user, "role", None)
    if role == "agent":
        agent_id = getattr(user, "agent_id", None)
        return Audience(AGENT, str(agent_id)) if agent_id else None
    if role in SUPERVISOR_ROLES:
        return Audience(SUPERVISOR)
    return None


class Hub:
    def __init__(
        self,
        replay: Replay = no_replay,
        *,
        settings: SocketSettings = SocketSettings(),
        on_ack: OnAck | None = None,
    ):
        self.replay = replay
        self.settings = settings
        self.on_ack = on_ack
        self._agents: dict[str, set[Connection]] = {}
        self._supervisors: set[Connection] = set()
        self._audience: dict[Connection, Audience] = {}
        self.dropped = 0  # connections forgotten because an offer failed (too slow, or gone)

    # ------------------------------------------------------------ delivery

    def send_to_agent(self, agent_id: str, message: protocol.Message) -> int:
        """Offer one message to every socket of an agent; returns how many took it."""
        conns = self._agents.get(agent_id)
        if not conns:
            return 0
        return self._fan_out(conns, protocol.encode_frame(message))

    def send_to_supervisors(self, message: protocol.Message) -> int:
        if not self._supervisors:
            return 0
        return self._fan_out(self._supervisors, protocol.encode_frame(message))

    def broadcast(self, message: protocol.Message) -> int:
        """Every socket, agents and supervisors (e.g. a notice before a restart)."""
        frame = protocol.encode_frame(message)
        return sum(self._fan_out(c, frame) for c in [*self._agents.values(), self._supervisors] if c)

    def _fan_out(self, conns: set[Connection], frame: bytes) -> int:
        sent = 0
        gone = None
        for conn in conns:
            if conn.offer(frame):
                sent += 1
            else:
                gone = gone or []
                gone.append(conn)
        for conn in gone or ():
            self.dropped += 1
            self.remove(conn)
        return sent

    # ------------------------------------------------------------ registry

    def connected_agents(self) -> set[str]:
        return set(self._agents)

    def connections_of(self, agent_id: str) -> list[Connection]:
        return list(self._agents.get(agent_id, ()))

    def supervisors(self) -> list[Connection]:
        return list(self._supervisors)

    def __len__(self) -> int:
        return sum(len(c) for c in self._agents.values()) + len(self._supervisors)

    def add(self, conn: Connection, audience: Audience) -> None:
        self._audience[conn] = audience
        if audience.kind == AGENT:
            self._agents.setdefault(audience.agent_id, set()).add(conn)  # type: ignore[arg-type]
        else:
            self._supervisors.add(conn)

    def remove(self, conn: Connection) -> None:
        """Forget a connection (idempotent)."""
        audience = self._audience.pop(conn, None)
        if audience is None:
            return
        if audience.kind == AGENT:
            conns = self._agents.get(audience.agent_id)  # type: ignore[arg-type]
            if conns is not None:
                conns.discard(conn)
                if not conns:
                    del self._agents[audience.agent_id]  # type: ignore[arg-type]
        else:
            self._supervisors.discard(conn)

    # ------------------------------------------------------------ sockets

    async def serve(self, ws: web.WebSocketResponse, user: Any, *, transport: asyncio.Transport | None = None) -> str:
        """Register a prepared socket, greet it, replay its open pops, serve it until it closes.

        Registration comes before the replay and live messages are held
        meanwhile, so nothing sent while the replay is fetched is lost or
        overtaken by an older replayed pop.  Returns why the socket ended."""
        audience = audience_of(user)
        if audience is None:
            raise ValueError(f"user {getattr(user, 'username', '?')!r} may not open a socket")
        conn = Connection(ws, user, self.settings, transport=transport, on_ack=self.on_ack)
        conn.offer(protocol.encode_frame(self._hello(user)))
        conn.hold()
        self.add(conn, audience)
        log.info("ws connected user=%s agent=%s audience=%s", conn.username, conn.agent_id, audience.kind)
        replaying = asyncio.create_task(self._replay_into(conn, user), name=f"ws-replay-{conn.username}")
        try:
            return await conn.run()
        finally:
            replaying.cancel()
            self.remove(conn)

    async def _replay_into(self, conn: Connection, user: Any) -> None:
        frames: list[bytes] = []
        try:
            frames = [protocol.encode_frame(m) for m in await self.replay(user)]
        except Exception:
            log.exception("ws replay failed user=%s", conn.username)
        conn.release(frames)

    def _hello(self, user: Any) -> protocol.Hello:
        who = {"username": getattr(user, "username", None), "role": getattr(user, "role", None), "agent_id": getattr(user, "agent_id", None)}
        return protocol.Hello(user=who, heartbeat=self.settings.heartbeat)

    async def close_all(self, code: int = WSCloseCode.GOING_AWAY, message: str = "server shutting down") -> None:
        """Close every socket (application shutdown) and wait until each has ended."""
        conns = list(self._audience)
        for conn in conns:
            conn.close(code, message)
        if conns:
            waits = [asyncio.ensure_future(c.wait_closed()) for c in conns]
            _, pending = await asyncio.wait(waits, timeout=3 * self.settings.close_timeout)
            for w in pending:
                w.cancel()

