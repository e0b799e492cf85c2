"""AMI event shapes, copied from the real captures.

Asterisk builds most events from a channel *snapshot*: the same fourteen
headers, in the same order, optionally prefixed (``Dest``, ``Transferer``...).
:class:`Chan` is that snapshot, mutable because a channel's state, caller ID
and dialplan position change during a call; every event takes a copy of it at
the moment it is emitted, exactly like Asterisk's stasis snapshots.

Pure code: no clock, no I/O.  :class:`Timeline` only adds offsets.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up"}
PRES_ALLOWED = "0 (Presentation Allowed, Not Screened)"
PRES_RESTRICTED_LEG = "35 (Presentation Prohibited, Network Number)"  # what e_withheld.ami's agent legs say
CAUSE_TEXT = {0: "Unknown", 16: "Normal Clearing", 26: "Answered elsewhere"}

PRIVILEGE = {
    name: "agent,all"
    for name in (
        "QueueMemberStatus", "QueueCallerJoin", "AgentCalled", "QueueCallerAbandon",
        "QueueCallerLeave", "AgentConnect", "AgentRingNoAnswer", "AgentComplete",
    )
}
PRIVILEGE.update({"Newexten": "dialplan,all", "VarSet": "dialplan,all", "FullyBooted": "system,all",
                  "SuccessfulAuth": "security,all"})

# Events that describe the plumbing rather than the call: the tracker must
# survive them, but a benchmark may want them out.  Everything else is "key".
NOISE_EVENTS = frozenset({
    "VarSet", "Newexten", "DeviceStateChange", "QueueMemberStatus", "Newstate", "NewCallerid",
    "NewConnectedLine", "HangupRequest", "SoftHangupRequest", "BridgeCreate", "BridgeEnter",
    "BridgeLeave", "BridgeDestroy", "LocalBridge", "DialState", "OriginateResponse", "Unhold",
    "SuccessfulAuth",
})


@dataclass(slots=True)
class Chan:
    name: str
    state: int
    cid_num: str
    cid_name: str
    conn_num: str
    conn_name: str
    context: str
    exten: str
    priority: int
    uniqueid: str
    linkedid: str

    def snapshot(self, prefix: str = "", **override: object) -> dict[str, object]:
        """The channel headers in Asterisk's order; ``override`` patches single
        values the way some events see a slightly different snapshot."""
        values = dict(zip(_snapshot_keys(prefix), (
            self.name, self.state, STATE_DESC[self.state], self.cid_num, self.cid_name, self.conn_num,
            self.conn_name, "en", "", self.context, self.exten, self.priority, self.uniqueid, self.linkedid)))
        for key, value in override.items():
            values[prefix + key] = value
        return values


SNAPSHOT_FIELDS = ("Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
                   "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten",
                   "Priority", "Uniqueid", "Linkedid")
_KEYS: dict[str, tuple[str, ...]] = {}


def _snapshot_keys(prefix: str) -> tuple[str, ...]:
    keys = _KEYS.get(prefix)
    if keys is None:
        keys = _KEYS[prefix] = tuple(prefix + name for name in SNAPSHOT_FIELDS)
    return keys


@dataclass(slots=True)
class Bridge:
    uniqueid: str
    channels: int = 0

    def headers(self, prefix: str = "Bridge") -> dict[str, object]:
        p = prefix
        return {
            f"{p}Uniqueid": self.uniqueid, f"{p}Type": "basic", f"{p}Technology": "simple_bridge",
            f"{p}Creator": "<unknown>", f"{p}Name": "<unknown>", f"{p}NumChannels": self.channels,
            f"{p}VideoSourceMode": "none",
        }


class Timeline:
    """The events of one call, each at an offset from the call's start.

    Asterisk emits a burst of events for every step of a call, a few tens of
    microseconds apart; :meth:`emit` reproduces that spacing and :meth:`wait`
    the seconds that pass while phones ring or people talk."""

    def __init__(self, start_ts: float, rng: random.Random):
        self.start_ts = start_ts
        self.offset = 0.0
        self.rng = rng
        self.events: list[tuple[float, dict[str, object]]] = []

    def now(self) -> float:
        return self.start_ts + self.offset

    def wait(self, seconds: float) -> None:
        self.offset += max(0.0, seconds)

    def emit(self, name: str, *parts: dict[str, object], **headers: object) -> dict[str, object]:
        self.offset += self.rng.uniform(12e-6, 90e-6)
        event: dict[str, object] = {
            "Event": name, "Privilege": PRIVILEGE.get(name, "call,all"), "Timestamp": f"{self.now():.6f}",
        }
        for part in parts:
            event.update(part)
        event.update(headers)
        self.events.append((self.offset, event))
        return event

    # --- channel events -------------------------------------------------
    def newchannel(self, ch: Chan) -> None:
        self.emit("Newchannel", ch.snapshot())

    def newexten(self, ch: Chan, application: str, data: str = "") -> None:
        self.emit("Newexten", ch.snapshot(), Extension=ch.exten, Application=application, AppData=data)

    def varset(self, ch: Chan, variable: str, value: object = "") -> None:
        self.emit("VarSet", ch.snapshot(), Variable=variable, Value=value)

    def newstate(self, ch: Chan, state: int) -> None:
        ch.state = state
        self.emit("Newstate", ch.snapshot())

    def newcallerid(self, ch: Chan, pres: str) -> None:
        self.emit("NewCallerid", ch.snapshot(), **{"CID-CallingPres": pres})

    def newconnectedline(self, ch: Chan) -> None:
        self.emit("NewConnectedLine", ch.snapshot())

    def local_bridge(self, one: Chan, two: Chan, optimization: bool) -> None:
        self.emit("LocalBridge", one.snapshot("LocalOne"), two.snapshot("LocalTwo"),
                  Context=two.context, Exten=two.exten, LocalOptimization="Yes" if optimization else "No")

    def hangup_request(self, ch: Chan, cause: int, soft: bool = False) -> None:
        self.emit("SoftHangupRequest" if soft else "HangupRequest", ch.snapshot(), Cause=cause)

    def hangup(self, ch: Chan, cause: int) -> None:
        self.emit("Hangup", ch.snapshot(), Cause=cause, **{"Cause-txt": CAUSE_TEXT[cause]})

    def device_state(self, device: str, state: str) -> None:
        self.emit("DeviceStateChange", Device=device, State=state)

    # --- dialing ----------------------------------------------------------
    def dial(self, name: str, caller: Chan | None, dest: Chan, dest_override: dict | None = None,
             **headers: object) -> None:
        parts = [caller.snapshot()] if caller is not None else []
        parts.append(dest.snapshot("Dest", **(dest_override or {})))
        self.emit(name, *parts, **headers)

    # --- bridges ----------------------------------------------------------
    def bridge_create(self, bridge: Bridge) -> None:
        self.emit("BridgeCreate", bridge.headers())

    def bridge_enter(self, bridge: Bridge, ch: Chan) -> None:
        bridge.channels += 1
        self.emit("BridgeEnter", bridge.headers(), ch.snapshot())

    def bridge_leave(self, bridge: Bridge, ch: Chan) -> None:
        bridge.channels -= 1
        self.emit("BridgeLeave", bridge.headers(), ch.snapshot())

    def bridge_destroy(self, bridge: Bridge) -> None:
        self.emit("BridgeDestroy", bridge.headers())
