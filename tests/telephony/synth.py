"""Hand-built AMI sequences for the cases the real captures lack.

Modelled on the captures (same event names, headers and ordering), but each
step is explicit so a test can drop, duplicate or reorder one.  Only the
headers the tracker reads, plus a little noise, are produced.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Chan:
    name: str
    uid: str
    linkedid: str
    num: str = "<unknown>"
    cid_name: str = "<unknown>"


@dataclass
class Pbx:
    clock: float = 1795383000.0
    counter: int = 0
    events: list[dict] = field(default_factory=list)

    def tick(self, seconds: float = 0.001) -> None:
        self.clock += seconds

    def _ev(self, name: str, ch: Chan | None = None, **headers) -> dict:
        self.tick()
        event = {"Event": name, "Privilege": "call,all", "Timestamp": f"{self.clock:.6f}"}
        if ch is not None:
            event.update(
                Channel=ch.name, CallerIDNum=ch.num, CallerIDName=ch.cid_name, Uniqueid=ch.uid, Linkedid=ch.linkedid
            )
        event.update({k.replace("_", "-") if k.startswith("CID") else k: v for k, v in headers.items()})
        self.events.append(event)
        return event

    def channel(self, name: str, linkedid: str | None = None, num: str = "<unknown>", cid_name: str = "<unknown>") -> Chan:
        uid = f"{int(self.clock)}.{self.counter}"
        self.counter += 1
        ch = Chan(name, uid, linkedid or uid, num, cid_name)
        self._ev("Newchannel", ch, ChannelStateDesc="Down")
        return ch

    def local_pair(self, base: str, linkedid: str | None = None, num: str = "<unknown>", cid_name: str = "<unknown>") -> tuple[Chan, Chan]:
        one = self.channel(f"{base};1", linkedid, num, cid_name)
        two = self.channel(f"{base};2", linkedid or one.linkedid, num, cid_name)
        self._ev("LocalBridge", LocalOneChannel=one.name, LocalOneUniqueid=one.uid, LocalTwoChannel=two.name, LocalTwoUniqueid=two.uid)
        return one, two

    def callerid(self, ch: Chan, num: str, cid_name: str, pres: str = "0 (Presentation Allowed, Not Screened)") -> None:
        ch.num, ch.cid_name = num, cid_name
        self._ev("NewCallerid", ch, CID_CallingPres=pres)

    def noise(self, ch: Chan) -> None:
        self._ev("VarSet", ch, Variable="QUEUEPOSITION", Value="1")
        self._ev("Newexten", ch, Application="Queue", AppData="support")

    def dest_headers(self, dest: Chan) -> dict:
        return {"DestChannel": dest.name, "DestUniqueid": dest.uid, "DestLinkedid": dest.linkedid, "DestCallerIDNum": dest.num}

    def queue_join(self, ch: Chan, queue: str, position: int = 1) -> None:
        self._ev("QueueCallerJoin", ch, Queue=queue, Position=str(position), Count=str(position))

    def queue_leave(self, ch: Chan, queue: str) -> None:
        self._ev("QueueCallerLeave", ch, Queue=queue, Position="1", Count="0")

    def abandon(self, ch: Chan, queue: str, hold: int = 4) -> None:
        self._ev("QueueCallerAbandon", ch, Queue=queue, Position="1", OriginalPosition="1", HoldTime=str(hold))

    def ring_agent(self, caller: Chan, agent: str, queue: str | None = None, tech: str = "local") -> tuple[Chan, Chan | None]:
        """A queue (AgentCalled + DialBegin) or direct (DialBegin) ring."""
        if tech == "local":
            leg, leg2 = self.local_pair(f"Local/{agent}@agents-{self.counter:08x}", caller.linkedid)
        else:
            leg, leg2 = self.channel(f"PJSIP/{agent}-{self.counter:08x}", caller.linkedid), None
        if queue:
            interface = f"Local/{agent}@agents/n" if tech == "local" else f"PJSIP/{agent}"
            self._ev("AgentCalled", caller, Queue=queue, Interface=interface, MemberName=f"Agent {agent}", **self.dest_headers(leg))
        self._ev("DialBegin", caller, DialString=f"{agent}", **self.dest_headers(leg))
        self._ev("DialState", caller, DialStatus="RINGING", **self.dest_headers(leg))
        return leg, leg2

    def dial(self, src: Chan, dest: Chan) -> None:
        self._ev("DialBegin", src, **self.dest_headers(dest))

    def dial_end(self, src: Chan, dest: Chan, status: str) -> None:
        self._ev("DialEnd", src, DialStatus=status, **self.dest_headers(dest))

    def agent_connect(self, caller: Chan, leg: Chan, queue: str) -> None:
        self._ev("AgentConnect", caller, Queue=queue, HoldTime="1", RingTime="1", **self.dest_headers(leg))

    def bridge(self, *chans: Chan) -> str:
        bridge_id = f"bridge-{self.counter}"
        self.counter += 1
        self._ev("BridgeCreate", BridgeUniqueid=bridge_id)
        for ch in chans:
            self._ev("BridgeEnter", ch, BridgeUniqueid=bridge_id)
        return bridge_id

    def hangup(self, *chans: Chan, cause: str = "16") -> None:
        for ch in chans:
            self._ev("Hangup", ch, Cause=cause, **{"Cause-txt": "Normal Clearing"})

    def blind_transfer(self, transferer: Chan, transferee: Chan, extension: str, context: str = "transfer") -> None:
        self._ev(
            "BlindTransfer",
            Result="Success",
            TransfererChannel=transferer.name,
            TransfererUniqueid=transferer.uid,
            TransfererLinkedid=transferer.linkedid,
            TransfereeChannel=transferee.name,
            TransfereeUniqueid=transferee.uid,
            TransfereeLinkedid=transferee.linkedid,
            IsExternal="Yes",
            Context=context,
            Extension=extension,
        )

    def attended_transfer(self, orig: Chan, second: Chan, transferee: Chan, target: Chan | None, result: str = "Success", **extra) -> None:
        headers = dict(
            Result=result,
            OrigTransfererChannel=orig.name,
            OrigTransfererUniqueid=orig.uid,
            SecondTransfererChannel=second.name,
            SecondTransfererUniqueid=second.uid,
            TransfereeChannel=transferee.name,
            TransfereeUniqueid=transferee.uid,
            DestType="Bridge",
        )
        if target is not None:
            headers.update(TransferTargetChannel=target.name, TransferTargetUniqueid=target.uid, TransferTargetCallerIDNum=target.num)
        headers.update(extra)
        self._ev("AttendedTransfer", **headers)

    def caller(self, scenario: str, num: str, cid_name: str, pres: str | None = None) -> tuple[Chan, Chan]:
        """The captures' caller: an originated Local pair; ;2 runs the dialplan."""
        one, two = self.local_pair(f"Local/{scenario}@caller-sim-{self.counter:08x}")
        for ch in (one, two):
            self.callerid(ch, num, cid_name, pres or "0 (Presentation Allowed, Not Screened)")
        self.noise(two)
        return one, two
