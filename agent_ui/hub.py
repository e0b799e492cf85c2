"""Who is connected, and fan-out of messages to them.

An agent may have the desktop open in several tabs (or on two machines):
every pop goes to each.  A message is encoded once and the same bytes are
offered to every socket, because fan-out to 2,000 agents and their
supervisors must cost one ``json.dumps`` and N queue appends, not N dumps.

The hub is the ``Delivery`` the orchestrator talks to: ``send_to_agent`` and
``send_to_supervisors`` are plain functions that never wait on a socket.

``[privacy]`` at the edge (:attr:`Hub.privacy`, set by the web app): the
supervisors' feed (queue and agent states) and a watcher's copy of an
agent's messages reach a reader whose role is in ``partial_phone_roles``
masked for that role (``PrivacyRules.view``: phone numbers partial, card
numbers in notes too), live and in the replay on connect.  The messages
themselves stay whole until here (the bus, the supervisors' mirror and the
REST routes share them), and a socket does not get a view of its own:
sockets are split by whether their role sees numbers partially, so a message
is masked and encoded once for all such sockets, not once per socket.
Readers whose role is not listed get the messages exactly as before, at no
extra cost (masking an agent message that carries a card costs ~0.1 ms,
twice its encoding).  An agent's own messages are masked upstream, before
the bus (``screenpop.security.delivery``).
"""
from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Collection

from aiohttp import WSCloseCode, web

from agent_ui import protocol
from agent_ui.connections import Connection, OnAck, SocketSettings
from screenpop.auth.accounts import SUPERVISING_ROLES, SUPPORT
from screenpop.security.privacy import PrivacyRules

log = logging.getLogger(__name__)

AGENT, SUPERVISOR, WATCHER = "agent", "supervisor", "watcher"
SUPERVISOR_ROLES = SUPERVISING_ROLES
MAX_AGENT_ID = 64

# The pops an agent's screen should show right now, by agent id: the
# orchestrator's ``pops_for`` fits as is; an async function (another node,
# over the bus) fits too.
Replay = Callable[[str], "list[protocol.Message] | Awaitable[list[protocol.Message]]"]


def no_replay(agent_id: str) -> list[protocol.Message]:
    return []


# What a supervisor's screen shows right now (every ``queue`` and ``agent``
# state message), for a socket that just opened.
SupervisorReplay = Callable[[], "list[protocol.Message] | Awaitable[list[protocol.Message]]"]


def no_supervisor_replay() -> list[protocol.Message]:
    return []


class NotAllowed(ValueError):
    """This user may not open this socket; the message is shown to the client (403)."""


@dataclass(frozen=True, slots=True)
class Audience:
    """Which messages a socket receives.

    ``agent``: one agent's own pops; ``supervisor``: queue and agent states;
    ``watcher``: a supervisor following one agent's pops (``screenpop watch
    --agent``), kept apart from the agent's own sockets so an observer never
    makes an agent look logged in."""

    kind: str
    agent_id: str | None = None


def audience_of(user: Any, requested_agent: str | None = None) -> Audience:
    """The audience of a user's socket, or NotAllowed.

    An agent gets its own agent id and nothing else, whatever it asks for,
    so no query parameter can make a socket receive someone else's pops.
    Supervisors and admins get the supervisors' messages, or follow the one
    agent they name.  Support staff get no socket: they have no phone (no
    pops) and do not supervise (no queue or agent states).  This is the
    single place where that policy lives."""
    role = getattr(user, "role", None)
    if requested_agent is not None and not (0 < len(requested_agent) <= MAX_AGENT_ID and requested_agent.isprintable()):
        raise NotAllowed("not a valid agent id")
    if role == "agent":
        own = getattr(user, "agent_id", None)
        if not own:
            raise NotAllowed("this agent account has no agent id, so it cannot receive pops")
        if requested_agent is not None and requested_agent != str(own):
            raise NotAllowed("an agent receives only their own pops")
        return Audience(AGENT, str(own))
    if role in SUPERVISOR_ROLES:
        return Audience(WATCHER, requested_agent) if requested_agent is not None else Audience(SUPERVISOR)
    if role == SUPPORT:
        raise NotAllowed("a support account receives no pops and no supervision feed")
    raise NotAllowed("this account cannot receive pops (unknown role)")


class Hub:
    """The ``Delivery`` of the orchestrator, and the registry of open sockets.

    ``replay`` gives the pops to show a (re)connecting agent; the service
    passes ``orchestrator.pops_for``.  ``supervisor_replay`` gives the
    current queue and agent states to a supervisor socket that opens."""

    def __init__(
        self,
        replay: Replay = no_replay,
        *,
        settings: SocketSettings = SocketSettings(),
        on_ack: OnAck | None = None,
        supervisor_replay: SupervisorReplay = no_supervisor_replay,
        privacy: PrivacyRules | None = None,
    ):
        self.replay = replay
        self.supervisor_replay = supervisor_replay
        # The [privacy] rules for supervisors' and watchers' sockets (see the
        # module doc); None: every message goes out as given.
        self.privacy = privacy
        self.settings = settings
        self.on_ack = on_ack
        self._agents: dict[str, set[Connection]] = {}
        self._watchers: dict[str, set[Connection]] = {}
        self._supervisors: set[Connection] = set()
        self._audience: dict[Connection, Audience] = {}
        self.dropped = 0  # connections forgotten because an offer failed (too slow, or gone)

    # ------------------------------------------------------------ delivery

    def send_to_agent(self, agent_id: str, message: protocol.Message) -> int:
        """Offer one message to every socket of an agent (and its watchers); returns how many took it.

        Never waits: a socket whose queue is full is dropped, not awaited."""
        conns = self._agents.get(agent_id)
        watchers = self._watchers.get(agent_id)
        if not conns and not watchers:
            return 0
        frame = protocol.encode_frame(message)
        # The agent's message is masked for agents already (upstream): a
        # watcher whose role sees phone numbers whole gets the same frame (it
        # sees what the agent sees), one whose role sees them partially gets
        # them masked further.
        return (self._fan_out(conns, frame) if conns else 0) + (self._fan_out_viewed(watchers, message, frame) if watchers else 0)

    def send_to_supervisors(self, message: protocol.Message) -> int:
        """Queue and agent states to every supervisor's socket, as its user's
        role may see them (``[privacy]``: an admin whose role is not in
        ``partial_phone_roles`` sees numbers whole beside a supervisor who
        sees them partially)."""
        if not self._supervisors:
            return 0
        return self._fan_out_viewed(self._supervisors, message)

    def _fan_out_viewed(self, conns: Collection[Connection], message: protocol.Message, frame: bytes | None = None) -> int:
        """``message`` to ``conns``, masked once for those whose role sees phone
        numbers partially, as given (``frame``, if already encoded) to the others."""
        partial_roles = self.privacy.partial_phone_roles if self.privacy is not None else frozenset()
        whole, partial = _split(conns, partial_roles) if partial_roles else (conns, ())
        sent = 0
        if whole:
            sent += self._fan_out(whole, frame if frame is not None else protocol.encode_frame(message))
        if partial:
            sent += self._fan_out(partial, protocol.encode_frame(self.shown(message, _role(partial[0]))))
        return sent

    def partial_for(self, role: str | None) -> bool:
        """Does ``role`` read phone numbers partially (``[privacy] partial_phone_roles``)?"""
        return self.privacy is not None and role in self.privacy.partial_phone_roles

    def shown(self, message: protocol.Message, role: str | None) -> protocol.Message:
        """``message`` as ``role`` may see it (``[privacy]``); the message itself is never changed."""
        if self.privacy is None:
            return message
        data = message.to_dict() if isinstance(message, protocol.ServerMessage) else message
        return self.privacy.view(data, role)

    def broadcast(self, message: protocol.Message) -> int:
        """Every socket (e.g. a notice before a restart)."""
        frame = protocol.encode_frame(message)
        return self._fan_out(set(self._audience), frame)

    def _fan_out(self, conns: Collection[Connection], frame: bytes) -> int:
        sent = 0
        gone = None
        for conn in conns:
            if conn.offer(frame):
                sent += 1
            else:
                gone = gone or []
                gone.append(conn)
        for conn in gone or ():  # after the loop: the set must not change while iterated
            self.dropped += 1
            self.remove(conn)
        return sent

    # ------------------------------------------------------------ registry

    def connected_agents(self) -> set[str]:
        """Agents with at least one socket of their own (watchers do not count)."""
        return set(self._agents)

    def has_room_for(self, audience: Audience) -> bool:
        """False when this agent (or the supervisors' feed) already has its share of sockets.

        22 KB per idle socket is cheap, but not for a script opening them
        in a loop with one stolen session."""
        if audience.kind == SUPERVISOR:
            return len(self._supervisors) < self.settings.max_per_audience * 4
        return len(self._table(audience).get(audience.agent_id, ())) < self.settings.max_per_audience  # type: ignore[arg-type]

    def connections_of(self, agent_id: str) -> list[Connection]:
        return list(self._agents.get(agent_id, ()))

    def watchers_of(self, agent_id: str) -> list[Connection]:
        return list(self._watchers.get(agent_id, ()))

    def supervisors(self) -> list[Connection]:
        return list(self._supervisors)

    def __len__(self) -> int:
        """Open sockets of every kind (the ``screenpop_websocket_connections`` gauge)."""
        return len(self._audience)

    def add(self, conn: Connection, audience: Audience) -> None:
        self._audience[conn] = audience
        if audience.kind == SUPERVISOR:
            self._supervisors.add(conn)
        else:
            self._table(audience).setdefault(audience.agent_id, set()).add(conn)  # type: ignore[arg-type]

    def remove(self, conn: Connection) -> None:
        """Forget a connection (idempotent)."""
        audience = self._audience.pop(conn, None)
        if audience is None:
            return
        if audience.kind == SUPERVISOR:
            self._supervisors.discard(conn)
            return
        table = self._table(audience)
        conns = table.get(audience.agent_id)  # type: ignore[arg-type]
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del table[audience.agent_id]  # type: ignore[arg-type]

    def _table(self, audience: Audience) -> dict[str, set[Connection]]:
        return self._agents if audience.kind == AGENT else self._watchers

    # ------------------------------------------------------------ sockets

    async def serve(
        self,
        ws: web.WebSocketResponse,
        user: Any,
        audience: Audience | None = None,
        *,
        transport: asyncio.Transport | None = None,
        on_open: Callable[[Connection], None] | None = None,
    ) -> str:
        """Register a prepared socket, greet it, replay its open pops, serve it until it closes.

        ``on_open`` receives the connection before anything is sent, for
        whoever must be able to close it later (a session that ends).

        Registration comes before the replay and live messages are held
        meanwhile, so nothing sent while the replay is fetched is lost or
        overtaken by an older replayed pop.  Returns why the socket ended."""
        audience = audience or audience_of(user)
        conn = Connection(ws, user, self.settings, transport=transport, on_ack=self.on_ack, agent_id=audience.agent_id)
        if on_open is not None:
            on_open(conn)
        conn.offer(protocol.encode_frame(self._hello(user, audience)))
        conn.hold()
        self.add(conn, audience)
        log.info("ws connected user=%s agent=%s audience=%s sockets=%d", conn.username, audience.agent_id, audience.kind, len(self))
        # A plain function (the orchestrator's pops_for) is asked in the same
        # step as the registration, so no pop can be both live and replayed;
        # an async one runs aside while live messages wait behind it.
        pending = self._replay_now(conn, audience)
        replaying = asyncio.create_task(self._replay_later(conn, audience, pending), name=f"ws-replay-{conn.username}") if pending else None
        try:
            return await conn.run()
        finally:
            if replaying is not None:
                replaying.cancel()
                pending.cancel()  # type: ignore[union-attr]
            self.remove(conn)

    def _replay_now(self, conn: Connection, audience: Audience) -> asyncio.Future | None:
        """Release the replay at once, or return the awaitable still to be waited for."""
        pops: Any = []
        if audience.agent_id is not None or audience.kind == SUPERVISOR:
            try:
                pops = self.replay(audience.agent_id) if audience.agent_id is not None else self.supervisor_replay()
            except Exception:
                log.exception("ws replay failed user=%s agent=%s", conn.username, audience.agent_id)
            if inspect.isawaitable(pops):
                return asyncio.ensure_future(pops)
        self._release(conn, audience, pops)
        return None

    async def _replay_later(self, conn: Connection, audience: Audience, pending: asyncio.Future) -> None:
        pops: Any = []
        try:
            pops = await pending
        except Exception:
            log.exception("ws replay failed user=%s agent=%s", conn.username, audience.agent_id)
        self._release(conn, audience, pops)

    def _release(self, conn: Connection, audience: Audience, pops: Any) -> None:
        frames: list[bytes] = []
        # An agent's own replay comes masked for agents (the service's replay);
        # the supervisors' state and a watcher's copy, for a reader whose role
        # sees phone numbers partially, are masked for that role here.
        role = _role(conn)
        viewed = audience.kind != AGENT and self.partial_for(role)
        for message in pops or ():
            try:
                if viewed:
                    message = self.shown(message, role)
                frames.append(protocol.encode_frame(message))
            except (TypeError, ValueError):
                log.exception("ws replay skipped a message user=%s agent=%s", conn.username, audience.agent_id)
        if frames:
            log.info("ws replay user=%s agent=%s pops=%d", conn.username, audience.agent_id, len(frames))
        conn.release(frames)

    def _hello(self, user: Any, audience: Audience) -> protocol.Hello:
        who = {"username": getattr(user, "username", None), "role": getattr(user, "role", None), "agent_id": getattr(user, "agent_id", None)}
        if audience.kind == WATCHER:
            who["watching"] = audience.agent_id
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


def _role(conn: Connection) -> str | None:
    return getattr(conn.user, "role", None)


def _split(conns: Collection[Connection], partial_roles: frozenset[str]) -> tuple[list[Connection], list[Connection]]:
    """``conns`` as (phone numbers whole, partial) by their users' roles."""
    whole, partial = [], []
    for conn in conns:
        (partial if _role(conn) in partial_roles else whole).append(conn)
    return whole, partial
