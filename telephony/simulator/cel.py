"""The simulator's CEL rows: what Asterisk's ``cel_pgsql`` would have written.

Asterisk makes its Channel Event Log from the same channel and bridge
messages its AMI events come from, so the rows here follow the simulator's
own events (all of them, the plumbing included, whether or not a client is
connected): ``Newchannel`` -> CHAN_START, an application starting
(``Newexten``) -> APP_END of the last one and APP_START, the channel going
Up -> ANSWER, ``BridgeEnter``/``BridgeLeave`` -> BRIDGE_ENTER/EXIT (the
bridge id in ``extra``), ``Hangup`` -> HANGUP (the cause in ``extra``) and
CHAN_END, the last channel of a linkedid -> LINKEDID_END, transfers ->
BLINDTRANSFER / ATTENDEDTRANSFER.  Row shapes are those of the real rows in
tests/fixtures/cdr (naive UTC times, '' for empty columns).  Pure: the rows
go to a sink; tests write them to a database in Asterisk's schema.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Mapping

COLUMNS = ("eventtype", "eventtime", "userdeftype", "cid_name", "cid_num", "cid_ani", "cid_rdnis", "cid_dnid",
           "exten", "context", "channame", "appname", "appdata", "amaflags", "accountcode", "peeraccount",
           "uniqueid", "linkedid", "userfield", "peer", "extra")
UP = 6


class CelRecorder:
    def __init__(self) -> None:
        self._app: dict[str, tuple[str, str]] = {}  # uniqueid -> (app, data) running
        self._answered: set[str] = set()
        self._open: dict[str, set[str]] = {}  # linkedid -> channels not hung up

    def feed(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The rows one AMI event makes (often none)."""
        name = event.get("Event")
        uid = str(event.get("Uniqueid") or "")
        out: list[dict[str, Any]] = []
        if name == "Newchannel" and uid:
            self._open.setdefault(str(event.get("Linkedid") or uid), set()).add(uid)
            out.append(self._row("CHAN_START", event, cid=False))
            if int(event.get("ChannelState") or 0) == UP:
                self._answered.add(uid)
        elif name == "Newexten" and uid and event.get("Application"):
            app = (str(event["Application"]), str(event.get("AppData") or ""))
            if uid in self._app:
                out.append(self._row("APP_END", event, app=self._app[uid]))
            self._app[uid] = app
            out.append(self._row("APP_START", event, app=app))
        elif name == "Newstate" and uid and int(event.get("ChannelState") or 0) == UP and uid not in self._answered:
            self._answered.add(uid)
            out.append(self._row("ANSWER", event, app=self._app.get(uid)))
        elif name in ("BridgeEnter", "BridgeLeave") and uid:
            extra = {"bridge_id": str(event.get("BridgeUniqueid") or ""), "bridge_technology": "simple_bridge"}
            out.append(self._row("BRIDGE_ENTER" if name == "BridgeEnter" else "BRIDGE_EXIT", event,
                                 app=self._app.get(uid), extra=extra))
        elif name == "Hangup" and uid:
            app = self._app.pop(uid, None)
            if app is not None:
                out.append(self._row("APP_END", event, app=app))
            extra = {"hangupcause": int(event.get("Cause") or 0), "hangupsource": "", "dialstatus": ""}
            out.append(self._row("HANGUP", event, extra=extra))
            out.append(self._row("CHAN_END", event))
            self._answered.discard(uid)
            linkedid = str(event.get("Linkedid") or uid)
            channels = self._open.get(linkedid)
            if channels is not None:
                channels.discard(uid)
                if not channels:
                    del self._open[linkedid]
                    out.append(self._row("LINKEDID_END", event))
        elif name in ("BlindTransfer", "AttendedTransfer"):
            prefix = "Transferer" if name == "BlindTransfer" else "OrigTransferer"
            headers = {k[len(prefix):]: v for k, v in event.items() if str(k).startswith(prefix)}
            if headers.get("Uniqueid"):
                extra = {"extension": str(event.get("Extension") or ""), "context": str(event.get("Context") or "")}
                out.append(self._row("BLINDTRANSFER" if name == "BlindTransfer" else "ATTENDEDTRANSFER",
                                     {**headers, "Timestamp": event.get("Timestamp")}, extra=extra))
        return out

    @staticmethod
    def _row(kind: str, event: Mapping[str, Any], *, cid: bool = True, app: tuple[str, str] | None = None,
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
        def text(key: str) -> str:
            value = event.get(key)
            return "" if value is None or value in ("<unknown>",) else str(value)

        ts = float(event.get("Timestamp") or 0.0)
        uid = text("Uniqueid")
        return {
            "eventtype": kind, "eventtime": datetime.fromtimestamp(ts, timezone.utc).replace(tzinfo=None),
            "userdeftype": "", "cid_name": text("CallerIDName") if cid else "", "cid_num": text("CallerIDNum") if cid else "",
            "cid_ani": "", "cid_rdnis": "", "cid_dnid": "", "exten": text("Exten"), "context": text("Context"),
            "channame": text("Channel"), "appname": app[0] if app else "", "appdata": app[1] if app else "",
            "amaflags": 3, "accountcode": "", "peeraccount": "", "uniqueid": uid, "linkedid": text("Linkedid") or uid,
            "userfield": "", "peer": "", "extra": json.dumps(extra, separators=(",", ":")) if extra else "",
        }
