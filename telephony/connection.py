"""The live AMI link to Asterisk: connect, log in, read, stay up.

panoramisk 1.4 is kept for what it does well: :class:`panoramisk.actions.Action`
matches replies by ActionID and gathers an EventList (CoreShowChannels,
QueueStatus) into one result, ``AMIProtocol.handle_message`` routes each reply
to its action, and callers of :meth:`AmiConnection.send_action` get its
:class:`~panoramisk.message.Message` back.  The rest is replaced, because it
loses data or hides failures:

* panoramisk decodes each TCP read on its own (``errors='ignore'``), so a name
  split across two reads loses letters.  Here raw bytes go through
  :class:`telephony.protocol.AmiDecoder`, which frames before it decodes.
* its Manager runs user callbacks inside ``data_received``: one exception kills
  the connection and the events still buffered.  Here the only thing done with
  an event is to queue it, which cannot fail; a slow consumer pauses the socket.
* its ping never checks for a reply, it retries every 2 s forever, a rejected
  login is silent and timings are cast to int.  :class:`AmiConnection` is the
  supervisor instead of its Manager: a ping with a deadline, capped exponential
  backoff with jitter, one log line per failed attempt, float timings.
* on a lost link it replays unanswered actions on the next one; an action may
  already have run, so here they fail with :class:`AmiNotConnected`.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque

from panoramisk import actions
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from screenpop.config import AmiSettings
from telephony.backoff import Backoff
from telephony.link import LinkDown, LinkUp, Snapshot
from telephony.protocol import AmiDecoder, AmiMessage, encode_message

log = logging.getLogger(__name__)


class AmiError(Exception):
    """Base of this module's errors."""


class AmiNotConnected(AmiError, ConnectionError):
    """No logged-in link to send on, or it went down before the reply came."""


class _Action(actions.Action):
    """panoramisk's Action, plus a hook run the moment its reply is complete.

    A done-callback on the future would run only after the rest of the same TCP
    read was queued; LinkUp and Snapshot must sit exactly where the reply sat."""

    def __init__(self, headers, on_reply=None):
        super().__init__(headers)
        self.on_reply = on_reply

    def add_message(self, message):
        finished = super().add_message(message)
        if finished and self.on_reply is not None:
            self.on_reply(self)
        return finished


# Events about the link itself, kept whatever the consumers read.
LINK_EVENTS = frozenset({"Shutdown", "FullyBooted", "Reload"})

def _message(fields: AmiMessage) -> Message:
    """A panoramisk Message (repeated headers as lists, as it builds them) that
    keeps the decoder's dict, so events handed on are exactly what Asterisk sent."""
    headers = {key: value.split("\n") if "\n" in value else value for key, value in fields.items()}
    message = Message(headers, fields.get("Output", ""))
    message.fields = fields
    return message


class _AmiProtocol(AMIProtocol):
    """One TCP connection: bytes framed by AmiDecoder, replies routed by panoramisk."""

    def __init__(self, owner: AmiConnection):
        self.owner = owner

    def connection_made(self, transport):
        super().connection_made(transport)
        self.factory = self.owner  # panoramisk calls factory.dispatch / factory.connection_lost
        self.decoder = AmiDecoder(wanted_events=self.owner.wanted_events)
        self.lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.paused = False
        self.pauses = 0
        self.received = 0  # bytes read: a link that still delivers is alive, even if its pong is late

    def data_received(self, data):
        self.received += len(data)
        for fields in self.decoder.feed(data):
            if self.lost.done():
                break  # dropped mid-read (Shutdown): the rest belongs to a dead session
            if "ActionID" in fields or "Response" in fields or fields.get("Event") == "Shutdown":
                self.handle_message(_message(fields))
            else:
                self.owner._put(fields)  # a plain event: no Message needed

    def handle_message(self, message):
        if message.event == "Shutdown":
            # panoramisk would close first; the consumer should see the event, then LinkDown.
            self.factory.dispatch(message)
            self.drop(f"asterisk shutdown ({message.get('Shutdown', '?')}, restart={message.get('Restart', '?')})")
        else:
            super().handle_message(message)

    def submit(self, action: actions.Action) -> actions.Action:
        """Register and write; encode_message writes UTF-8 and refuses CR/LF injection."""
        payload = encode_message(dict(action.items()))
        if self.lost.done():
            raise AmiNotConnected(f"the AMI link is down ({self.lost.result()})")
        self.responses[action.id] = action
        self.transport.write(payload)
        return action

    def forget(self, action: actions.Action) -> None:
        if self.responses.get(action.id) is action:
            del self.responses[action.id]

    def pause(self) -> None:
        if not self.paused and not self.lost.done():
            self.paused, self.pauses = True, self.pauses + 1
            self.transport.pause_reading()
            self.owner.read_pauses += 1

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            if not self.lost.done():
                self.transport.resume_reading()

    def drop(self, reason: str) -> None:
        """Give up on this link now.  abort(), not close(): a half-open socket never flushes."""
        if not self.lost.done():
            self.lost.set_result(reason)
        if not self.closed:
            self.transport.abort()

    def connection_lost(self, exc):
        self.decoder.close()  # counts a half-received message
        if not self.lost.done():
            self.lost.set_result("closed by peer" if exc is None else f"{type(exc).__name__}: {exc}")
        super().connection_lost(exc)  # -> close() below, then factory.connection_lost

    def close(self):
        """Fail what still waits for a reply, instead of panoramisk's replay on the next link."""
        pending = {id(action): action for action in self.responses.values()}.values()
        self.responses.clear()
        for action in pending:
            if not action.future.done():
                action.future.set_exception(AmiNotConnected("the AMI link went down before the reply"))
        if not self.closed:
            self.closed = True
            self.transport.close()


class _Queue(asyncio.Queue):
    """Tells the connection each time the consumer takes an item, so a paused
    socket resumes (and the backlog moves up) without a polling task."""

    def __init__(self, maxsize: int, on_get):
        super().__init__(maxsize)
        self._on_get = on_get

    def _get(self):
        item = super()._get()
        self._on_get()
        return item


def _consume(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()  # nobody awaits the resync lists; a lost link is reported elsewhere


class AmiConnection:
    """Supervises the link: one session after another, until :meth:`stop`.

    Backpressure: ``queue`` is bounded.  When it is full the socket is paused;
    the rest of the read already in hand waits in a small backlog (one TCP read
    at most, never dropped) and moves up as the consumer drains the queue.
    Reading resumes below half the bound.  A stopped connection is not reused.
    """

    def __init__(self, settings: AmiSettings, *, queue_maxsize: int = 10000, resync: bool = True,
                 wanted_events: frozenset[str] | None = None):
        """``wanted_events``: the events the consumers read (the others are
        skipped unparsed, see :class:`~telephony.protocol.AmiDecoder`); None: all."""
        if queue_maxsize < 1:
            raise ValueError("queue_maxsize must be at least 1")
        self.settings = settings
        self.wanted_events = None if wanted_events is None else frozenset(wanted_events) | LINK_EVENTS
        self.resync = resync
        self.queue: asyncio.Queue = _Queue(queue_maxsize, self._consumed)
        self.low_water = queue_maxsize // 2
        self.state = "disconnected"  # 'connecting' | 'connected' (logged in)
        # Wall-clock time the link was lost (or first tried and failed); None
        # while it is up.  /healthz, /metrics and the screens' banner say it.
        self.down_since: float | None = None
        self.connected_event = asyncio.Event()
        self.banner: str | None = None
        self.logins = 0
        self.read_pauses = 0
        self._backlog: deque = deque()
        self._protocol: _AmiProtocol | None = None
        self._stopping = False
        self._wake = asyncio.Event()
        self._session_task: asyncio.Task | None = None
        self._finished: asyncio.Event | None = None

    @property
    def _where(self) -> str:
        return f"host={self.settings.host} port={self.settings.port}"

    # -- the queue -------------------------------------------------------------

    def _put(self, item) -> None:
        if self._backlog or self.queue.full():
            self._backlog.append(item)
            if self._protocol is not None:
                self._protocol.pause()
        else:
            self.queue.put_nowait(item)

    def _consumed(self) -> None:
        while self._backlog and not self.queue.full():
            self.queue.put_nowait(self._backlog.popleft())
        protocol = self._protocol
        if protocol is not None and protocol.paused and not self._backlog and self.queue.qsize() <= self.low_water:
            protocol.resume()

    def dispatch(self, message: Message) -> None:
        """panoramisk's factory hook: an event that no action claimed."""
        self._put(message.fields)

    def connection_lost(self, exc) -> None:
        """panoramisk's factory hook; the session learns of the loss from ``protocol.lost``."""
        log.debug("ami transport closed %s error=%r", self._where, exc)

    # -- the supervisor --------------------------------------------------------

    async def run(self) -> None:
        if self._finished is not None:
            raise RuntimeError("AmiConnection.run() was already started")
        self._finished = asyncio.Event()
        failures = 0
        try:
            while not self._stopping:
                self._session_task = asyncio.create_task(self._session(), name="ami-session")
                try:
                    logged_in = await self._session_task
                except asyncio.CancelledError:
                    if self._stopping and not asyncio.current_task().cancelling():
                        break  # stop() interrupted a connect or a login
                    raise
                failures = 0 if logged_in else failures + 1
                if self._stopping:
                    break
                delay = self._backoff(failures)
                log.info("ami retry %s delay=%.3f failures=%d", self._where, delay, failures)
                try:
                    await asyncio.wait_for(self._wake.wait(), delay)
                except asyncio.TimeoutError:
                    pass
        finally:
            self.state = "disconnected"
            self._finished.set()

    def _backoff(self, failures: int) -> float:
        """reconnect_min after a good session or a first failure, doubling up to
        reconnect_max, but frequent while the outage is young (see Backoff)."""
        s = self.settings
        schedule = Backoff(s.reconnect_min, s.reconnect_max, getattr(s, "reconnect_fast_seconds", 60.0),
                           max(s.reconnect_min, getattr(s, "reconnect_fast_max", 2.0)))
        outage = time.time() - self.down_since if self.down_since is not None else 0.0
        return schedule.delay(failures, outage)

    @property
    def outage_seconds(self) -> float:
        """How long the link has been down (0 while it is up)."""
        return 0.0 if self.down_since is None else max(0.0, time.time() - self.down_since)

    async def _session(self) -> bool:
        """One connection, from connect to loss.  Returns True if it logged in."""
        s = self.settings
        self.state = "connecting"
        log.info("ami connecting %s", self._where)
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(lambda: _AmiProtocol(self), s.host, s.port), s.connect_timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            error = f"no answer within {s.connect_timeout}s" if isinstance(exc, TimeoutError) else (str(exc) or repr(exc))
            self.state = "disconnected"
            if self.down_since is None:  # never up yet: the outage starts with the first failure
                self.down_since = time.time()
            log.warning("ami connect failed %s error=%s", self._where, error)
            return False
        log.info("ami connected %s", self._where)
        self._protocol = protocol
        reason = "stopped"
        try:
            login = _Action({"Action": "Login", "Username": s.username, "Secret": s.secret, "Events": "on"},
                            on_reply=functools.partial(self._logged_in, protocol))
            try:
                reply = await self._wait_reply(protocol, login, s.connect_timeout)
            except (asyncio.TimeoutError, AmiNotConnected, ValueError) as exc:
                reason = f"login failed: {exc}"
                log.warning("ami login failed %s user=%s error=%s", self._where, s.username, exc)
                return False
            if not reply.success:
                reason = "login rejected"
                log.warning("ami login rejected %s user=%s message=%s", self._where, s.username,
                            reply.message or reply.response)
                return False
            log.info("ami login ok %s user=%s banner=%r", self._where, s.username, self.banner)
            reason = await self._watch(protocol)
            return True
        finally:
            if self._stopping:
                reason = "stopped"
            protocol.drop(reason)
            self._protocol = None
            self.connected_event.clear()
            if self.state == "connected":
                log.log(logging.INFO if self._stopping else logging.WARNING, "ami link lost %s reason=%s",
                        self._where, reason)
                self.down_since = time.time()
                self._put(LinkDown(reason))
            self.state = "disconnected"

    def _logged_in(self, protocol: _AmiProtocol, login: actions.Action) -> None:
        """Runs inside data_received, at the login reply's place in the stream."""
        if not login.responses[0].success or protocol.lost.done():
            return
        if self.down_since is not None:
            log.info("ami link back %s outage_seconds=%.1f", self._where, time.time() - self.down_since)
        self.state = "connected"
        self.down_since = None
        self.connected_event.set()
        self.banner = protocol.decoder.banner
        self._put(LinkUp(reconnect=self.logins > 0, banner=self.banner))
        self.logins += 1
        if not self.resync:
            return
        # Both lists are sent at once; Asterisk answers a session's actions in order.
        lists = [_Action({"Action": "CoreShowChannels"}), _Action({"Action": "QueueStatus"})]

        def complete(_action) -> None:
            if all(action.future.done() for action in lists):
                self._put(_snapshot(lists))
                for action in lists:  # each held this closure, which holds them: freed now, not by a full collection
                    action.on_reply = None

        for action in lists:
            action.on_reply = complete
            action.future.add_done_callback(_consume)
            protocol.submit(action)

    async def _watch(self, protocol: _AmiProtocol) -> str:
        """Wait for the link to end, pinging it: a hung Asterisk or a half-open
        TCP link stays silent rather than closing; only a missing reply shows it."""
        s = self.settings
        while True:
            try:
                return await asyncio.wait_for(asyncio.shield(protocol.lost), s.ping_interval)
            except asyncio.TimeoutError:
                pass
            try:
                await self._wait_reply(protocol, _Action({"Action": "Ping"}), s.ping_timeout, reading_is_alive=True)
            except asyncio.TimeoutError:
                log.warning("ami ping unanswered %s timeout=%s", self._where, s.ping_timeout)
                protocol.drop(f"no reply to ping within {s.ping_timeout}s")
            except AmiNotConnected:
                pass  # the next turn reads the reason from protocol.lost

    async def _wait_reply(self, protocol: _AmiProtocol, action: actions.Action, timeout: float, *,
                          reading_is_alive: bool = False):
        """Send and wait, counting only time spent reading: while the socket is
        paused for a slow consumer the reply may sit unread, not the link's fault.
        With ``reading_is_alive`` (the ping), bytes arriving meanwhile also
        prove the link: a busy node's pong waits behind the events before it."""
        protocol.submit(action)
        try:
            while True:
                pauses, received = protocol.pauses, protocol.received
                try:
                    return await asyncio.wait_for(asyncio.shield(action.future), timeout)
                except asyncio.TimeoutError:
                    still_reading = reading_is_alive and protocol.received != received
                    if not (protocol.paused or protocol.pauses != pauses or still_reading):
                        raise asyncio.TimeoutError(f"no reply to {action['Action']} within {timeout}s") from None
        finally:
            protocol.forget(action)

    # -- public ----------------------------------------------------------------

    async def send_action(self, action: dict, *, timeout: float = 5.0):
        """The reply Message, or a list of Messages for an EventList action.

        Raises AmiNotConnected when not logged in or when the link goes down
        first, asyncio.TimeoutError when no complete reply comes in time."""
        protocol = self._protocol
        if protocol is None or self.state != "connected" or protocol.lost.done():
            raise AmiNotConnected(f"the AMI link to {self.settings.host}:{self.settings.port} is {self.state}")
        return await self._wait_reply(protocol, _Action(dict(action)), timeout)

    async def stop(self) -> None:
        """Log off if logged in, end the session, wait for run() to return."""
        self._stopping = True
        self._wake.set()
        protocol = self._protocol
        if protocol is not None and self.state == "connected":
            try:
                await self._wait_reply(protocol, _Action({"Action": "Logoff"}), min(1.0, self.settings.ping_timeout))
                log.info("ami logged off %s", self._where)
            except (AmiError, asyncio.TimeoutError) as exc:
                log.info("ami logoff unanswered %s error=%s", self._where, exc)
        task = self._session_task
        if task is not None and not task.done():
            task.cancel()
        if self._finished is not None:
            await self._finished.wait()


def _snapshot(lists: list[actions.Action]) -> Snapshot:
    found: dict[str, list[AmiMessage]] = {}
    for action in lists:
        first = action.responses[0]
        if not first.success:  # e.g. app_queue not loaded: nothing of that kind to report
            log.warning("ami resync action failed action=%s message=%s", action["Action"], first.message or first.response)
        for message in action.responses:
            if "event" in message:
                found.setdefault(message["event"], []).append(message.fields)
    snapshot = Snapshot(channels=found.get("CoreShowChannel", []), queue_entries=found.get("QueueEntry", []),
                        queue_members=found.get("QueueMember", []), queue_params=found.get("QueueParams", []))
    log.info("ami resync done channels=%d queue_entries=%d queue_members=%d", len(snapshot.channels),
             len(snapshot.queue_entries), len(snapshot.queue_members))
    return snapshot
