"""The steps of a call, each emitting the burst of events Asterisk emits for it.

Every step reproduces a stretch of a real capture (named in its docstring):
the same events, headers and order, including the plumbing (VarSet,
Newexten, DeviceStateChange...) and Asterisk's quirks, such as the doubled
``DialEnd CANCEL``.  Scenarios (:mod:`.scenarios`) chain the steps and decide
how long to wait between them.  Pure code: ids and time come from outside.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from telephony.simulator.ami import PRES_ALLOWED, PRES_RESTRICTED_LEG, Bridge, Chan, Timeline
from telephony.simulator.model import Agent, IdAllocator, Queue

UNKNOWN = "<unknown>"
_DIAL_VARS = ("DIALSTATUS", "DIALEDPEERNUMBER", "DIALEDPEERNAME", "ANSWEREDTIME", "ANSWEREDTIME_MS",
              "DIALEDTIME", "DIALEDTIME_MS", "RINGTIME", "RINGTIME_MS", "PROGRESSTIME", "PROGRESSTIME_MS")
_QUEUE_VARS = ("ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS", "QUEUEWAIT", "QUEUEWAIT_MS")


@dataclass(slots=True)
class Leg:
    """An agent's Local pair: ``one`` is dialed and bridged with the caller,
    ``two`` is the agent's phone running the ``[agents]`` dialplan."""

    agent: Agent
    one: Chan
    two: Chan
    rang_at: float
    answered_at: float | None = None

    @property
    def device(self) -> str:
        return f"Local/{self.agent.id}@agents"


class CallBuilder:
    """One customer call, built step by step on a :class:`Timeline`.

    ``c1``/``c2`` are the customer's Local pair (``c2`` is the side in the
    queue and in the bridges), set by :meth:`originate`."""

    c1: Chan
    c2: Chan
    linkedid: str
    consult_bridge: Bridge

    def __init__(self, tl: Timeline, ids: IdAllocator, caller_number: str | None, caller_name: str | None, *,
                 exten: str, withheld: bool = False, membership: Mapping[str, Sequence[Queue]] | None = None,
                 patience: float = 60.0):
        self.tl, self.ids, self.exten = tl, ids, exten
        self.num = caller_number or ("anonymous" if withheld else UNKNOWN)
        self.name = caller_name or ("Anonymous" if withheld and not caller_number else UNKNOWN)
        self.pres = PRES_RESTRICTED_LEG if withheld else PRES_ALLOWED  # on the agents' ;2 legs
        self.membership = membership or {}
        self.patience = patience
        self.busy: dict[str, list[float]] = {}  # agent id -> [first, last] offset it was tied up
        self.talked: list[str] = []  # agents who answered, in order (their after-call work follows the call)
        self.queue: Queue | None = None
        self.joined_at = 0.0
        self.bridge: Bridge | None = None
        self.login_time = int(tl.start_ts) - 3600

    # --- helpers ------------------------------------------------------------
    def _chan(self, name: str, state: int, context: str, exten: str, linkedid: str | None = None) -> Chan:
        uid = self.ids.uniqueid(self.tl.now())
        return Chan(name, state, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, context, exten, 1, uid, linkedid or uid)

    def elapsed(self, since: float) -> tuple[int, int]:
        elapsed = max(0.0, self.tl.offset - since)
        return int(elapsed), int(elapsed * 1000)

    def member_status(self, agent: Agent, status: int) -> None:
        for queue in self.membership.get(agent.id, ()):
            self.tl.emit("QueueMemberStatus", Queue=queue.name, MemberName=agent.name, Interface=agent.interface,
                         StateInterface=agent.interface, Membership="static", Penalty=0, CallsTaken=0, LastCall=0,
                         LastPause=0, LoginTime=self.login_time, InCall=0, Status=status, Paused=0,
                         PausedReason="", Ringinuse=int(queue.ringinuse), Wrapuptime=int(agent.wrapup_seconds))

    def queue_event(self, name: str, leg: Leg, **headers: object) -> None:
        assert self.queue is not None
        self.tl.dial(name, self.c2, leg.one, Queue=self.queue.name, Interface=leg.agent.interface,
                     MemberName=leg.agent.name, **headers)

    def _new_leg(self, agent: Agent) -> Leg:
        base = f"Local/{agent.id}@agents-{self.ids.local()}"
        one = self._chan(base + ";1", 0, "agents", agent.id, self.linkedid)
        two = self._chan(base + ";2", 4, "agents", agent.id, self.linkedid)
        self.tl.newchannel(one)
        self.tl.newchannel(two)
        self.busy.setdefault(agent.id, [self.tl.offset, self.tl.offset])
        return Leg(agent, one, two, self.tl.offset)

    def release(self, leg: Leg) -> None:
        self.busy[leg.agent.id][1] = self.tl.offset

    def _phone_rings(self, leg: Leg, queue: Queue | None = None) -> None:
        a1, a2, tl = leg.one, leg.two, self.tl
        tl.newexten(a2, "NoOp", f"agent {leg.agent.id}")
        a2.priority = 2
        tl.newexten(a2, "Ringing")
        if queue is not None:
            a1.exten, a1.conn_num, a1.conn_name = queue.name, self.num, self.name
        tl.newstate(a1, 5)
        if queue is not None:
            tl.newexten(a1, "AppQueue", "(Outgoing Line)")
            tl.newconnectedline(a1)
        a2.priority = 3
        answer_after = leg.agent.answer_after
        tl.newexten(a2, "Wait", str(int(answer_after)) if answer_after is not None else "60")

    def _phone_answers(self, leg: Leg) -> None:
        leg.two.priority = 4
        self.tl.newexten(leg.two, "Answer")
        self.tl.newstate(leg.two, 6)
        self.tl.newstate(leg.one, 6)
        leg.answered_at = self.tl.offset
        if leg.agent.id not in self.talked:
            self.talked.append(leg.agent.id)

    def _bridge_up(self, leg: Leg, bridge: Bridge | None = None) -> None:
        """BridgeCreate/BridgeEnter/BRIDGEPEER as in support_answered.ami at 2.008 s."""
        tl = self.tl
        if bridge is None:
            bridge = Bridge(self.ids.bridge())
            tl.bridge_create(bridge)
        tl.bridge_enter(bridge, leg.one)
        tl.bridge_enter(bridge, self.c2)
        tl.varset(leg.one, "BRIDGEPEER", self.c2.name)
        tl.varset(self.c2, "BRIDGEPEER", leg.one.name)
        self.bridge = bridge

    def start_talking(self, leg: Leg, talk: float, until: float | None = None) -> None:
        """The agent's dialplan reaches its talk Wait() half a second after
        answering; the call then lasts ``talk`` seconds, or ``until`` seconds
        after the answer when something else (a transfer) ends the talk."""
        self.tl.wait(0.5)
        leg.two.priority = 5
        self.tl.newexten(leg.two, "Wait", str(int(talk)))
        self.tl.wait(talk if until is None else until - 0.5)

    # --- the caller ---------------------------------------------------------
    def originate(self) -> None:
        """The customer's Local pair comes up (first 0.5 s of every capture)."""
        tl = self.tl
        base = f"Local/{self.exten}@caller-sim-{self.ids.local()}"
        self.c1 = c1 = self._chan(base + ";1", 0, "caller-sim", self.exten)
        self.linkedid = c1.uniqueid
        self.c2 = c2 = self._chan(base + ";2", 4, "caller-sim", self.exten, self.linkedid)
        tl.newchannel(c1)
        tl.newchannel(c2)
        tl.newexten(c1, "AppDial2", "(Outgoing Line)")
        c1.cid_num, c1.cid_name = self.num, self.name
        # As a live Asterisk 22 does: a withheld caller's own channels say
        # "allowed"; only the legs dialed for the agents carry the restriction.
        tl.newcallerid(c1, PRES_ALLOWED)
        c1.conn_num, c1.conn_name = self.num, self.name
        tl.newconnectedline(c1)
        c2.cid_num, c2.cid_name, c2.conn_num, c2.conn_name = self.num, self.name, self.num, self.name
        tl.newcallerid(c2, PRES_ALLOWED)
        tl.newconnectedline(c2)
        tl.local_bridge(c1, c2, True)
        tl.dial("DialBegin", None, c1, DialString=f"{self.exten}@caller-sim")
        tl.newexten(c2, "Answer")
        tl.newstate(c1, 6)
        tl.newstate(c2, 6)
        tl.dial("DialEnd", None, c1, DialStatus="ANSWER")
        tl.emit("OriginateResponse", ActionID=f"sim-{c1.uniqueid}", Response="Success", Channel=c1.name,
                Application="Wait", Data=str(int(self.patience)), Reason=4, Uniqueid=c1.uniqueid,
                CallerIDNum=self.num, CallerIDName=self.name)
        tl.device_state(f"Local/{self.exten}@caller-sim", "INUSE")
        tl.device_state(f"Local/{self.exten}@caller-sim", "INUSE")
        tl.wait(0.5)

    def caller_gone(self) -> None:
        """The last DeviceStateChanges of a call."""
        self.tl.device_state(f"Local/{self.exten}@caller-sim", "NOT_INUSE")
        self.tl.device_state(f"Local/{self.exten}@caller-sim", "NOT_INUSE")

    # --- queues ---------------------------------------------------------------
    def enter_queue(self, queue: Queue) -> None:
        """Queue() starts: QueueCallerJoin (support_answered.ami at 1.004 s)."""
        tl, c2 = self.tl, self.c2
        c2.priority = 2
        tl.newexten(c2, "Queue", f"{queue.name},,,,60")
        for variable in _QUEUE_VARS:
            tl.varset(c2, variable)
        tl.device_state(f"Queue:{queue.name}", "RINGING")
        tl.emit("QueueCallerJoin", c2.snapshot(), Queue=queue.name, Position=1, Count=1)
        self.queue, self.joined_at = queue, tl.offset

    def ring_members(self, agents: Sequence[Agent]) -> list[Leg]:
        """The queue dials members at once: AgentCalled + DialBegin, then the phones ring.

        app_queue walks its member container backwards for ring-all (1002
        before 1001 in support_answered.ami); the legs come back in member order."""
        tl, c2, queue = self.tl, self.c2, self.queue
        assert queue is not None
        legs = []
        for agent in reversed(agents):
            leg = self._new_leg(agent)
            a1, a2 = leg.one, leg.two
            a1.cid_num, a1.cid_name = self.num, self.name
            tl.newexten(a1, "AppQueue", "(Outgoing Line)")
            tl.newcallerid(a1, PRES_ALLOWED)
            tl.varset(a1, "DIALEDPEERNUMBER", f"{agent.id}@agents/n")
            tl.varset(a2, "DIALEDPEERNUMBER", f"{agent.id}@agents/n")
            a2.cid_num, a2.cid_name, a2.conn_num, a2.conn_name = self.num, self.name, self.num, self.name
            tl.newcallerid(a2, self.pres)
            tl.newconnectedline(a2)
            tl.local_bridge(a1, a2, False)
            tl.dial("AgentCalled", c2, a1, {"ConnectedLineNum": self.num, "ConnectedLineName": self.name,
                                             "Exten": queue.name},
                    Queue=queue.name, Interface=agent.interface, MemberName=agent.name)
            tl.dial("DialBegin", c2, a1, DialString=agent.interface)
            legs.insert(0, leg)
        for leg in legs:
            self._phone_rings(leg, queue)
        for leg in legs:
            tl.device_state(leg.device, "INUSE")
            self.member_status(leg.agent, 2)
            tl.dial("DialState", c2, leg.one, DialStatus="RINGING")
        if legs:
            tl.device_state(f"Queue:{queue.name}_avail", "INUSE")
        return legs

    def _leave_queue(self) -> None:
        assert self.queue is not None
        self.tl.emit("QueueCallerLeave", self.c2.snapshot(), Queue=self.queue.name, Position=1, Count=0)
        self.tl.varset(self.c2, "QUEUEPOSITION", 1)

    def _cancel(self, leg: Leg) -> None:
        """A ringing phone that lost the race (support_answered.ami at 2.008 s)."""
        self.tl.hangup_request(leg.two, 26)
        self.tl.hangup_request(leg.two, 16, soft=True)
        self.tl.hangup(leg.two, 26)
        self.tl.hangup(leg.one, 26)
        self.release(leg)

    def queue_answer(self, winner: Leg, losers: Sequence[Leg]) -> None:
        """One member answers, the others stop ringing; AgentConnect; bridge."""
        tl, c2, queue = self.tl, self.c2, self.queue
        assert queue is not None
        self._phone_answers(winner)
        tl.device_state(winner.device, "INUSE")
        tl.dial("DialEnd", c2, winner.one, DialStatus="ANSWER")
        tl.device_state(winner.device, "INUSE")
        for leg in losers:
            tl.dial("DialEnd", c2, leg.one, DialStatus="CANCEL")
            tl.dial("DialEnd", c2, leg.one, DialStatus="CANCEL")
            self._cancel(leg)
        tl.device_state(f"Queue:{queue.name}", "NOT_INUSE")
        self._leave_queue()
        hold, hold_ms = self.elapsed(self.joined_at)
        tl.varset(c2, "QUEUEWAIT", hold)
        tl.varset(c2, "QUEUEWAIT_MS", hold_ms)
        self.queue_event("AgentConnect", winner, HoldTime=hold, RingTime=round(winner.answered_at - winner.rang_at))
        for leg in losers:
            tl.device_state(leg.device, "NOT_INUSE")
            self.member_status(leg.agent, 1)
        self._bridge_up(winner)

    def ring_no_answer(self, leg: Leg) -> None:
        """The queue gives up on a member (sales_no_answer_then_next.ami at 5.009 s)."""
        tl, queue = self.tl, self.queue
        assert queue is not None
        self.queue_event("AgentRingNoAnswer", leg, RingTime=int(queue.timeout * 1000))
        self.tl.dial("DialEnd", self.c2, leg.one, DialStatus="NOANSWER")
        self.tl.dial("DialEnd", self.c2, leg.one, DialStatus="CANCEL")
        tl.hangup_request(leg.two, 0)
        tl.hangup(leg.one, 0)
        tl.hangup_request(leg.two, 16, soft=True)
        tl.hangup(leg.two, 0)
        self.member_status(leg.agent, 1)
        tl.device_state(leg.device, "NOT_INUSE")
        tl.device_state(leg.device, "NOT_INUSE")
        self.release(leg)

    def abandon(self, ringing: Sequence[Leg]) -> None:
        """The customer hangs up while waiting (billing_abandoned.ami at 5.508 s)."""
        tl, c1, c2, queue = self.tl, self.c1, self.c2, self.queue
        assert queue is not None
        tl.hangup_request(c2, 0)
        for leg in ringing:
            tl.dial("DialEnd", c2, leg.one, DialStatus="CANCEL")
        tl.hangup(c1, 0)
        for leg in ringing:
            tl.dial("DialEnd", c2, leg.one, DialStatus="CANCEL")
            tl.hangup_request(leg.two, 0)
            tl.hangup(leg.one, 0)
        hold, hold_ms = self.elapsed(self.joined_at)
        dialed, dialed_ms = self.elapsed(0.0)
        for variable, value in (("QUEUEWAIT", hold), ("QUEUEWAIT_MS", hold_ms), ("DIALEDTIME", dialed),
                                ("DIALEDTIME_MS", dialed_ms), ("ANSWEREDTIME", 0), ("ANSWEREDTIME_MS", 0),
                                ("ABANDONED", "TRUE")):
            tl.varset(c2, variable, value)
        tl.emit("QueueCallerAbandon", c2.snapshot(), Queue=queue.name, Position=1, OriginalPosition=1,
                HoldTime=hold)
        tl.device_state(f"Queue:{queue.name}", "NOT_INUSE")
        self._leave_queue()
        tl.hangup_request(c2, 16, soft=True)
        tl.hangup(c2, 0)
        for leg in ringing:
            tl.hangup_request(leg.two, 16, soft=True)
            tl.hangup(leg.two, 0)
        self.caller_gone()
        for leg in ringing:
            tl.device_state(leg.device, "NOT_INUSE")
            self.member_status(leg.agent, 1)
            self.release(leg)

    # --- dialing an agent directly ---------------------------------------------
    def dial_agent(self, agent: Agent, *, caller: Chan | None = None, announce: bool = True,
                   caller_id: tuple[str, str] | None = None) -> Leg:
        """Dial(Local/NNNN@agents/n) from the dialplan (direct_call.ami at 1.003 s).

        ``caller`` is the dialing channel: the customer's by default, the
        transferring agent's for the consultation leg of an attended transfer,
        whose phone shows that agent (``caller_id``) rather than the customer."""
        tl = self.tl
        dialer = caller or self.c2
        shown_num, shown_name = caller_id or (dialer.cid_num, dialer.cid_name)
        if announce:
            if dialer is self.c2 and dialer.context == "caller-sim":
                dialer.priority = 2
            tl.newexten(dialer, "Dial", f"{agent.interface},20")
            for variable in _DIAL_VARS:
                tl.varset(dialer, variable)
        leg = self._new_leg(agent)
        a1, a2 = leg.one, leg.two
        tl.varset(a1, "DIALEDPEERNUMBER", f"{agent.id}@agents/n")
        a1.cid_num, a1.cid_name, a1.exten = dialer.exten or agent.id, shown_name, dialer.exten or agent.id
        a1.conn_num, a1.conn_name = shown_num, shown_name
        tl.newexten(a1, "AppDial", "(Outgoing Line)")
        pres = PRES_ALLOWED if caller_id else self.pres
        tl.newcallerid(a1, pres)
        tl.newconnectedline(a1)
        tl.varset(a2, "DIALEDPEERNUMBER", f"{agent.id}@agents/n")
        a2.cid_num, a2.cid_name = shown_num, shown_name
        a2.conn_num, a2.conn_name = a1.cid_num, a1.cid_name
        tl.newcallerid(a2, pres)
        tl.newconnectedline(a2)
        tl.local_bridge(a1, a2, False)
        tl.dial("DialBegin", dialer, a1, DialString=f"{agent.id}@agents/n")
        self._phone_rings(leg)
        tl.varset(dialer, "RINGTIME", 0)
        tl.varset(dialer, "RINGTIME_MS", 0)
        tl.dial("DialState", dialer, a1, DialStatus="RINGING")
        self.member_status(agent, 2)
        tl.device_state(leg.device, "INUSE")
        return leg

    def direct_answer(self, leg: Leg, *, caller: Chan | None = None, bridge: bool = True) -> None:
        """The dialed agent answers and is bridged with the dialer."""
        tl, dialer = self.tl, caller or self.c2
        self._phone_answers(leg)
        tl.varset(dialer, "DIALSTATUS", "ANSWER")
        tl.varset(dialer, "DIALEDPEERNAME", leg.one.name)
        tl.varset(dialer, "DIALEDPEERNUMBER", f"{leg.agent.id}@agents/n")
        leg.one.exten = ""
        tl.dial("DialEnd", dialer, leg.one, DialStatus="ANSWER")
        new_bridge = Bridge(self.ids.bridge())
        tl.bridge_create(new_bridge)
        tl.device_state(leg.device, "INUSE")
        tl.newexten(leg.one, "AppDial", "(Outgoing Line)")
        if bridge:
            self._bridge_up(leg, new_bridge)
        else:
            self.consult_bridge = new_bridge
