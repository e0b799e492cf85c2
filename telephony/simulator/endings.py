"""How a connected call ends or moves on: hang-ups and transfers.

Each function continues a :class:`~telephony.simulator.flows.CallBuilder`
whose customer is bridged with ``leg``.  Hang-ups follow
support_answered.ami (agent first) and burst_small.ami (customer first); the
blind transfer follows blind_transfer.ami.  The attended transfer has no
capture: it follows Asterisk's documented AttendedTransfer event and what
bridge_basic does for a DTMF ``atxfer`` (the transferer leaves the customer's
bridge, talks to the target in a second bridge, then the bridges merge).
"""
from __future__ import annotations

from telephony.simulator.ami import Bridge
from telephony.simulator.flows import CallBuilder, Leg
from telephony.simulator.model import Agent


def _final_vars(b: CallBuilder, leg: Leg) -> None:
    answered, answered_ms = b.elapsed(leg.answered_at or 0.0)
    dialed, dialed_ms = b.elapsed(0.0)
    for variable, value in (("ANSWEREDTIME", answered), ("ANSWEREDTIME_MS", answered_ms),
                            ("DIALEDTIME", dialed), ("DIALEDTIME_MS", dialed_ms)):
        b.tl.varset(b.c2, variable, value)


def _agent_complete(b: CallBuilder, leg: Leg, reason: str) -> None:
    if b.queue is None:
        return
    hold = int(max(0.0, (leg.answered_at or b.joined_at) - b.joined_at))
    talk = int(max(0.0, b.tl.offset - (leg.answered_at or b.tl.offset)))
    b.queue_event("AgentComplete", leg, HoldTime=hold, TalkTime=talk, Reason=reason)


def _phone_down(b: CallBuilder, leg: Leg) -> None:
    b.member_status(leg.agent, 1)
    b.tl.device_state(leg.device, "NOT_INUSE")
    b.tl.device_state(leg.device, "NOT_INUSE")
    b.release(leg)


def agent_hangs_up(b: CallBuilder, leg: Leg) -> None:
    """The agent's dialplan reaches Hangup(); everything unwinds."""
    tl, c1, c2, bridge = b.tl, b.c1, b.c2, b.bridge
    assert bridge is not None
    leg.two.priority = 6
    tl.newexten(leg.two, "Hangup")
    tl.hangup_request(leg.two, 16, soft=True)
    tl.hangup_request(leg.one, 16)
    _agent_complete(b, leg, "agent")
    tl.hangup(leg.two, 16)
    tl.varset(leg.one, "BRIDGEPEER", "")
    tl.varset(c2, "BRIDGEPEER", "")
    tl.bridge_leave(bridge, leg.one)
    tl.bridge_leave(bridge, c2)
    _final_vars(b, leg)
    if b.queue is None:
        tl.varset(c2, "DIALSTATUS", "ANSWER")
    tl.hangup(leg.one, 16)
    tl.bridge_destroy(bridge)
    tl.hangup_request(c2, 16, soft=True)
    if b.queue is None:
        tl.varset(c1, "CHANLOCALSTATUS", "ANSWER")
    tl.hangup_request(c1, 16)
    tl.hangup(c2, 16)
    tl.hangup(c1, 16)
    _phone_down(b, leg)
    b.caller_gone()


def caller_hangs_up(b: CallBuilder, leg: Leg) -> None:
    """The customer hangs up first (burst_small.ami at 5.686 s)."""
    tl, c1, c2, bridge = b.tl, b.c1, b.c2, b.bridge
    assert bridge is not None
    tl.hangup_request(c2, 0)
    tl.hangup(c1, 0)
    _agent_complete(b, leg, "caller")
    tl.varset(c2, "BRIDGEPEER", "")
    tl.varset(leg.one, "BRIDGEPEER", "")
    tl.bridge_leave(bridge, c2)
    _final_vars(b, leg)
    tl.hangup_request(c2, 16, soft=True)
    tl.hangup(c2, 16)
    tl.bridge_leave(bridge, leg.one)
    tl.hangup_request(leg.two, 16)
    tl.hangup(leg.one, 16)
    tl.bridge_destroy(bridge)
    tl.hangup_request(leg.two, 16, soft=True)
    tl.hangup(leg.two, 16)
    _phone_down(b, leg)
    b.caller_gone()


def _transferer_leaves(b: CallBuilder, leg: Leg, bridge: Bridge) -> None:
    tl = b.tl
    tl.bridge_leave(bridge, leg.one)
    tl.hangup_request(leg.two, 16)
    tl.hangup(leg.one, 16)
    tl.hangup_request(leg.two, 16, soft=True)
    tl.hangup(leg.two, 16)
    _phone_down(b, leg)


def blind_transfer(b: CallBuilder, leg: Leg, target: Agent) -> Leg:
    """The agent sends the customer to ``target`` (blind_transfer.ami at 4.510 s);
    the customer's channel then dials the target from the ``[transfer]`` context."""
    tl, c2, bridge = b.tl, b.c2, b.bridge
    assert bridge is not None
    tl.emit("Unhold", leg.one.snapshot())
    tl.emit("BlindTransfer", {"Result": "Success"}, leg.one.snapshot("Transferer"), c2.snapshot("Transferee"),
            bridge.headers(), IsExternal="Yes", Context="transfer", Extension=target.id)
    tl.varset(c2, "BLINDTRANSFER", leg.one.name)
    tl.varset(leg.one, "BLINDTRANSFER", c2.name)
    c2.context, c2.exten, c2.priority = "transfer", target.id, 1
    tl.newexten(c2, "Dial", f"{target.interface},20")
    _agent_complete(b, leg, "transfer")
    tl.varset(leg.one, "BRIDGEPEER", "")
    tl.varset(c2, "BRIDGEPEER", "")
    _transferer_leaves(b, leg, bridge)
    tl.bridge_leave(bridge, c2)
    tl.bridge_destroy(bridge)
    b.queue = None  # the customer has left Queue(): what follows is a plain Dial()
    tl.varset(c2, "DIALSTATUS", "ANSWER")
    for variable in ("DIALSTATUS", "DIALEDPEERNUMBER", "DIALEDPEERNAME", "ANSWEREDTIME", "ANSWEREDTIME_MS"):
        tl.varset(c2, variable)
    new_leg = b.dial_agent(target, announce=False)
    return new_leg


def attended_transfer(b: CallBuilder, leg: Leg, target: Agent, consult: float) -> Leg:
    """The agent calls ``target``, talks to them for ``consult`` seconds, then
    completes the transfer: the customer ends up bridged with the target."""
    tl, c2, bridge = b.tl, b.c2, b.bridge
    assert bridge is not None
    transferer = leg.one
    tl.varset(transferer, "TRANSFER_CONTEXT", "transfer")
    tl.emit("Hold", c2.snapshot())
    tl.varset(transferer, "BRIDGEPEER", "")
    tl.varset(c2, "BRIDGEPEER", "")
    tl.bridge_leave(bridge, transferer)
    consult_leg = b.dial_agent(target, caller=transferer, announce=False, caller_id=(leg.agent.id, leg.agent.name))
    tl.wait(target.answer_after if target.answer_after is not None else 1.0)
    b.direct_answer(consult_leg, caller=transferer, bridge=False)
    second: Bridge = b.consult_bridge
    tl.bridge_enter(second, consult_leg.one)
    tl.bridge_enter(second, transferer)
    tl.wait(consult)
    tl.emit("Unhold", c2.snapshot())
    tl.emit("AttendedTransfer", {"Result": "Success"}, transferer.snapshot("OrigTransferer"),
            bridge.headers("OrigBridge"), transferer.snapshot("SecondTransferer"), second.headers("SecondBridge"),
            c2.snapshot("Transferee"), consult_leg.one.snapshot("TransferTarget"),
            IsExternal="No", DestType="Bridge", DestBridgeUniqueid=bridge.uniqueid)
    _agent_complete(b, leg, "transfer")
    b.queue = None
    tl.bridge_leave(second, consult_leg.one)
    tl.bridge_enter(bridge, consult_leg.one)
    tl.varset(consult_leg.one, "BRIDGEPEER", c2.name)
    tl.varset(c2, "BRIDGEPEER", consult_leg.one.name)
    _transferer_leaves(b, leg, second)
    tl.bridge_destroy(second)
    # The target now talks to the customer: Asterisk updates its connected line.
    for ch in (consult_leg.one, consult_leg.two):
        ch.conn_num, ch.conn_name = b.num, b.name
        tl.newconnectedline(ch)
    return consult_leg
