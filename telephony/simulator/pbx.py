"""What the simulated PBX knows right now: live channels, queue callers, members.

The state is driven by the very events the simulator sends, at the moment it
sends them, so ``CoreShowChannels`` and ``QueueStatus`` answer exactly what a
client that followed the event stream would believe.  A few headers only the
live PBX can know (a caller's position among the others waiting, a member's
calls taken) are filled in here, at send time.  No I/O.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from telephony.simulator.ami import SNAPSHOT_FIELDS
from telephony.simulator.model import Agent, IdAllocator, Queue

_SNAPSHOT = SNAPSHOT_FIELDS
_AGENT_CHANNEL = re.compile(r"^Local/(?P<agent>[^@]+)@agents-")

Message = dict[str, object]


@dataclass(slots=True)
class LiveChannel:
    headers: dict[str, object]
    created: float
    application: str = "AppDial2"
    app_data: str = "(Outgoing Line)"
    bridge: str = ""


@dataclass(slots=True)
class Waiting:
    """A caller in a queue; ``original`` is the position it joined at."""

    channel: str
    uniqueid: str
    joined: float
    original: int


@dataclass(slots=True)
class MemberStats:
    calls_taken: int = 0
    last_call: int = 0
    in_call: int = 0


@dataclass(slots=True)
class QueueStats:
    completed: int = 0
    abandoned: int = 0
    hold_total: float = 0.0
    talk_total: float = 0.0
    entries: list[Waiting] = field(default_factory=list)


class PbxState:
    def __init__(self, agents: Mapping[str, Agent], queues: Mapping[str, Queue], *, ids: IdAllocator,
                 login_time: float):
        self.agents = dict(agents)
        self._agent_ids = list(self.agents)
        self.queues = dict(queues)
        self.ids = ids
        self.login_time = int(login_time)
        self.channels: dict[str, LiveChannel] = {}
        self.stats = {name: QueueStats() for name in self.queues}
        self.members: dict[str, MemberStats] = {}  # per agent: app_queue counts per member, close enough
        self.legs: dict[str, int] = {}  # agent id -> live channels of that agent
        self.busy_until: dict[str, float] = {}  # agent id -> virtual time its reservation ends

    # --- reservations (traffic never books an agent twice) ------------------
    def is_free(self, agent: str, now: float) -> bool:
        return self.busy_until.get(agent, 0.0) <= now and not self.legs.get(agent)

    def free_members(self, queue: str, now: float, limit: int | None = None, start: int = 0) -> list[str]:
        """Free members in member order, beginning at index ``start`` and
        wrapping around; stops after ``limit`` so a 2,000-agent queue costs
        what a small one does."""
        members = self.queues[queue].members
        found: list[str] = []
        count = len(members)
        for index in range(count):
            agent = members[(start + index) % count]
            if self.is_free(agent, now):
                found.append(agent)
                if limit is not None and len(found) >= limit:
                    break
        return found

    def free_agents(self, now: float, limit: int | None = None, start: int = 0) -> list[str]:
        everyone = list(self.agents) if limit is None else self._agent_ids
        count = len(everyone)
        found: list[str] = []
        for index in range(count):
            agent = everyone[(start + index) % count]
            if self.is_free(agent, now):
                found.append(agent)
                if limit is not None and len(found) >= limit:
                    break
        return found

    def next_free_member(self, queue: str, now: float) -> tuple[str | None, float]:
        """The member whose reservation ends first, and when (``now`` if one is
        free already): who a caller waiting in ``queue`` will be offered to.
        Reservations are made when calls are planned, so this is known ahead."""
        best, at = None, float("inf")
        for agent in self.queues[queue].members:
            until = max(self.busy_until.get(agent, 0.0), now)
            if until < at:
                best, at = agent, until
        return best, at

    def idle_first(self, agents: Iterable[str]) -> list[str]:
        """``agents`` longest idle first (app_queue's leastrecent)."""
        return sorted(agents, key=lambda agent: self.busy_until.get(agent, 0.0))

    def reserve(self, busy: Mapping[str, tuple[float, float]], start: float,
                after: Mapping[str, float] | None = None) -> None:
        """Book each agent until the end of its part in a call starting at
        ``start``, plus ``after`` seconds of after-call work for those given."""
        for agent, (_, last) in busy.items():
            until = start + last + (after or {}).get(agent, 0.0)
            self.busy_until[agent] = max(self.busy_until.get(agent, 0.0), until)

    # --- following the event stream ---------------------------------------------
    def apply(self, event: Message, now: float) -> None:
        """Update the state with one event about to be sent, completing the
        headers that depend on other calls (queue positions, member counts)."""
        if "ChannelState" in event:
            live = self.channels.get(event["Channel"])  # type: ignore[arg-type]
            if live is not None:
                live.headers = {key: event[key] for key in _SNAPSHOT}
        handler = _HANDLERS.get(event["Event"])  # type: ignore[arg-type]
        if handler is not None:
            handler(self, event, now)

    def _newchannel(self, event: Message, now: float) -> None:
        channel = str(event["Channel"])
        self.channels[channel] = LiveChannel({key: event[key] for key in _SNAPSHOT}, now)
        match = _AGENT_CHANNEL.match(channel)
        if match:
            self.legs[match["agent"]] = self.legs.get(match["agent"], 0) + 1

    def _hangup(self, event: Message, now: float) -> None:
        channel = str(event["Channel"])
        if self.channels.pop(channel, None) is None:
            return
        match = _AGENT_CHANNEL.match(channel)
        if match:
            self.legs[match["agent"]] -= 1

    def _newexten(self, event: Message, now: float) -> None:
        live = self.channels.get(event["Channel"])  # type: ignore[arg-type]
        if live is not None:
            live.application, live.app_data = str(event["Application"]), str(event["AppData"])

    def _bridge(self, event: Message, now: float) -> None:
        live = self.channels.get(event["Channel"])  # type: ignore[arg-type]
        if live is not None:
            live.bridge = str(event["BridgeUniqueid"]) if event["Event"] == "BridgeEnter" else ""

    def _join(self, event: Message, now: float) -> None:
        stats = self.stats.setdefault(str(event["Queue"]), QueueStats())
        position = len(stats.entries) + 1
        stats.entries.append(Waiting(str(event["Channel"]), str(event["Uniqueid"]), now, position))
        event["Position"], event["Count"] = position, position

    def _find(self, event: Message) -> tuple[QueueStats, int]:
        stats = self.stats.setdefault(str(event["Queue"]), QueueStats())
        for index, entry in enumerate(stats.entries):
            if entry.uniqueid == event["Uniqueid"]:
                return stats, index
        return stats, -1

    def _leave(self, event: Message, now: float) -> None:
        stats, index = self._find(event)
        if index >= 0:
            del stats.entries[index]
            event["Position"], event["Count"] = index + 1, len(stats.entries)

    def _abandon(self, event: Message, now: float) -> None:
        stats, index = self._find(event)
        stats.abandoned += 1
        if index >= 0:
            event["Position"], event["OriginalPosition"] = index + 1, stats.entries[index].original

    def _connect(self, event: Message, now: float) -> None:
        stats = self.stats.setdefault(str(event["Queue"]), QueueStats())
        stats.hold_total += float(event["HoldTime"])  # type: ignore[arg-type]
        self._member(event).in_call = 1

    def _complete(self, event: Message, now: float) -> None:
        stats = self.stats.setdefault(str(event["Queue"]), QueueStats())
        stats.completed += 1
        stats.talk_total += float(event["TalkTime"])  # type: ignore[arg-type]
        member = self._member(event)
        member.calls_taken += 1
        member.last_call, member.in_call = int(now), 0

    def _member(self, event: Message) -> MemberStats:
        agent = str(event["Interface"]).removeprefix("Local/").split("@")[0]
        return self.members.setdefault(agent, MemberStats())

    def _member_status(self, event: Message, now: float) -> None:
        member = self._member(event)
        event.update(CallsTaken=member.calls_taken, LastCall=member.last_call, LoginTime=self.login_time,
                     InCall=member.in_call)

    # --- answering list actions ---------------------------------------------------
    def core_show_channels(self, action_id: str | None, now: float) -> list[Message]:
        items = []
        for live in self.channels.values():
            item: Message = {"Event": "CoreShowChannel"}
            if action_id is not None:
                item["ActionID"] = action_id
            item.update(live.headers)
            seconds = max(0, int(now - live.created))
            item.update(BridgeId=live.bridge, Application=live.application, ApplicationData=live.app_data,
                        Duration=f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}")
            items.append(item)
        return items

    def queue_status(self, action_id: str | None, now: float, queue: str | None = None,
                     member: str | None = None) -> list[Message]:
        tail = {"ActionID": action_id} if action_id is not None else {}
        items: list[Message] = []
        for name, config in self.queues.items():
            if queue and queue != name:
                continue
            stats = self.stats.setdefault(name, QueueStats())
            answered = max(stats.completed, 1)
            items.append({"Event": "QueueParams", "Queue": name, "Max": 0, "Strategy": config.strategy,
                          "Calls": len(stats.entries), "Holdtime": int(stats.hold_total / answered),
                          "TalkTime": int(stats.talk_total / answered), "Completed": stats.completed,
                          "Abandoned": stats.abandoned, "ServiceLevel": 0, "ServicelevelPerf": "0.0",
                          "ServicelevelPerf2": "0.0", "Weight": 0, **tail})
            for agent_id in config.members:
                agent = self.agents.get(agent_id) or Agent(agent_id, f"Agent {agent_id}")
                if member and member not in (agent.interface, agent.name, agent_id):
                    continue
                counts = self.members.get(agent_id, MemberStats())
                items.append({"Event": "QueueMember", "Queue": name, "Name": agent.name,
                              "Location": agent.interface, "StateInterface": agent.interface,
                              "Membership": "static", "Penalty": 0, "CallsTaken": counts.calls_taken,
                              "LastCall": counts.last_call, "LastPause": 0, "LoginTime": self.login_time,
                              "InCall": counts.in_call, "Status": 2 if self.legs.get(agent_id) else 1,
                              "Paused": 0, "PausedReason": "", "Wrapuptime": int(agent.wrapup_seconds), **tail})
            for position, entry in enumerate(stats.entries, 1):
                live = self.channels.get(entry.channel)
                snap = live.headers if live is not None else {}
                items.append({"Event": "QueueEntry", "Queue": name, "Position": position,
                              "Channel": entry.channel, "Uniqueid": entry.uniqueid,
                              "CallerIDNum": snap.get("CallerIDNum", "<unknown>"),
                              "CallerIDName": snap.get("CallerIDName", "<unknown>"),
                              "ConnectedLineNum": snap.get("ConnectedLineNum", "<unknown>"),
                              "ConnectedLineName": snap.get("ConnectedLineName", "<unknown>"),
                              "Wait": max(0, int(now - entry.joined)), "Priority": 0, **tail})
        return items


_HANDLERS = {
    "Newchannel": PbxState._newchannel,
    "Hangup": PbxState._hangup,
    "Newexten": PbxState._newexten,
    "BridgeEnter": PbxState._bridge,
    "BridgeLeave": PbxState._bridge,
    "QueueCallerJoin": PbxState._join,
    "QueueCallerLeave": PbxState._leave,
    "QueueCallerAbandon": PbxState._abandon,
    "AgentConnect": PbxState._connect,
    "AgentComplete": PbxState._complete,
    "QueueMemberStatus": PbxState._member_status,
}


def agents_by_id(agents: Mapping[str, Agent] | Iterable[Agent]) -> dict[str, Agent]:
    if isinstance(agents, Mapping):
        return dict(agents)
    return {agent.id: agent for agent in agents}


def queues_by_name(queues: Mapping[str, Queue] | Iterable[Queue]) -> dict[str, Queue]:
    if isinstance(queues, Mapping):
        return dict(queues)
    return {queue.name: queue for queue in queues}
