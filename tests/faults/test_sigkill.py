"""``screenpop serve`` killed with SIGKILL and started again.

What "acknowledged" means for the interaction log (screenpop/interactions/
writer.py, spill.py): a call's record is acknowledged once it is committed
to the database, or appended and fsynced to the spill file (the writer's
promise during an outage); an outcome is acknowledged when
``PUT /api/v1/interactions/{id}/outcome`` answered 200 (the store commits
before answering).  What is only in the writer's memory is not acknowledged,
and a SIGKILL may lose it; a restarted node takes calls still in progress up
again from Asterisk's channel list."""
from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
from sqlalchemy.engine import make_url

from adapters.demo import demo_sources
from screenpop.interactions import spill as spill_file
from screenpop.interactions.record import merge
from telephony.simulator import PbxSimulator
from tests.conftest import POSTGRES_DSN
from tests.pg import asyncpg_dsn

from .harness import eventually
from .proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[2]
SCREENPOP = [sys.executable, "-m", "screenpop.cli"]
AMI_SECRET = "sigkill-secret"
PASSWORD = "sigkill-password-0123"
CALLERS = [("+34912345678", "Ana Garcia"), ("+14155550100", "Bob Smith"), ("+34600111222", "Frank Moreno"),
           ("+34955000111", None)]


def toml_config(path: Path, *, ami_port: int, storage: str, spill: Path, sources) -> Path:
    def text(value: str) -> str:
        assert "'''" not in value
        return f"'''\n{value}'''"

    lines = [
        "[ami]", 'host = "127.0.0.1"', f"port = {ami_port}", 'username = "screenpop"',
        "reconnect_min = 0.05", "reconnect_max = 0.5",
        "[agents]", r"""patterns = ['^Local/(?P<agent>\d+)@agents\b']""",
        "[lookup]", 'default_region = "ES"', "deadline_ms = 500",
        "[storage]", f'dsn = "{storage}"',
        "[interactions]", f'spill_path = "{spill}"', "max_pending = 2", "flush_interval = 0.05",
        "[web]", 'host = "127.0.0.1"', "port = 0",
    ]
    for source in sources:
        lines += ["[[sources]]", f'name = "{source.name}"', 'kind = "sql"', f'dsn = "{source.dsn}"',
                  f"fields = {list(source.fields)!r}".replace("'", '"'),
                  f"phones_query = {text(source.phones_query)}", f"record_query = {text(source.record_query)}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class Node:
    """One ``screenpop serve`` process; its log in a file (a pipe nobody
    reads would stall it)."""

    config: Path
    log: Path
    process: asyncio.subprocess.Process | None = None
    url: str = ""

    async def start(self, timeout: float = 20.0) -> str:
        env = {**os.environ, "SCREENPOP_AMI__SECRET": AMI_SECRET, "PYTHONPATH": str(ROOT)}
        self.log.write_text("")
        with open(self.log, "ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                *SCREENPOP, "--config", str(self.config), "serve", cwd=ROOT, env=env,
                stdout=out, stderr=out, stdin=asyncio.subprocess.DEVNULL)

        def started() -> str | None:
            assert self.process.returncode is None, f"serve exited {self.process.returncode}:\n{self.log.read_text()[-3000:]}"
            for line in self.log.read_text(errors="replace").splitlines():
                if line.startswith("screenpop serving "):
                    return line.split()[2]
            return None

        self.url = await eventually(started, timeout, "screenpop serve to start", step=0.05)
        return self.url

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)

    async def wait(self) -> int:
        return await asyncio.wait_for(self.process.wait(), 10)


async def cli(config: Path, *args: str, stdin: bytes = b"") -> None:
    env = {**os.environ, "SCREENPOP_AMI__SECRET": AMI_SECRET, "PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(*SCREENPOP, "--config", str(config), *args, cwd=ROOT, env=env,
                                                   stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(stdin), 30)
    assert process.returncode == 0, out.decode()


async def committed(dsn: str) -> dict[str, dict]:
    conn = await asyncpg.connect(asyncpg_dsn(dsn))
    try:
        rows = await conn.fetch("SELECT call_id, ended_at, end_reason, answered_by, queue, disposition, outcome_by FROM interactions")
    finally:
        await conn.close()
    return {r["call_id"]: dict(r) for r in rows}


def spilled(path: Path) -> dict[str, object]:
    """The records the spill file holds (fsynced: acknowledged), merged per call."""
    out: dict[str, object] = {}
    for candidate in (path.with_name(path.name + ".replay"), path):
        if candidate.exists():
            for record in spill_file.read_chunk(candidate, 0, 1_000_000)[0]:
                out[record.call_id] = merge(out[record.call_id], record) if record.call_id in out else record
    return out


async def test_sigkill_loses_no_acknowledged_record_committed_or_spilled(demo_dbs, tmp_path, database):
    """Proves: a node killed with SIGKILL (no shutdown code runs) and started
    again has lost nothing it acknowledged: every call record that was
    committed before the kill is still there, unchanged; every outcome that
    was answered 200 is still there; and every record that was in the
    spill file at the kill (the node was writing through a PostgreSQL
    outage, max_pending 2, so records were spilled and fsynced) is replayed
    into the database by the new process, once, with what was spilled.

    The outage is a TCP proxy in front of the shared PostgreSQL cutting
    every connection (tests/faults/proxy.py); it is over before the restart,
    as a database that comes back while the node is down."""
    pg = make_url(POSTGRES_DSN)
    proxy = TcpProxy(pg.host or "127.0.0.1", pg.port or 5432)
    await proxy.start()
    simulator = PbxSimulator(seed=21, secret=AMI_SECRET)
    ami_port = await simulator.start()
    spill = tmp_path / "spill.jsonl"
    storage = make_url(database).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    config = toml_config(tmp_path / "node.toml", ami_port=ami_port, storage=storage, spill=spill, sources=demo_sources(demo_dbs))
    node = Node(config, tmp_path / "node.log")
    traffic = None
    try:
        password = tmp_path / "password"
        password.write_text(PASSWORD + "\n")
        await cli(config, "db", "upgrade")
        await cli(config, "users", "add", "boss", "--role", "supervisor", "--password-file", str(password))
        url = await node.start()
        traffic = asyncio.create_task(simulator.run_traffic(0.5, CALLERS, duration=None, speed=3, wait=False))

        # 1. committed rows, and outcomes answered 200
        await eventually(lambda: len(simulator.plans) >= 4, 15, "traffic")
        acked: dict[str, dict] = {}

        async def more_committed():
            acked.update({k: v for k, v in (await committed(database)).items() if v["ended_at"] is not None})
            return len(acked) >= 3
        deadline = time.monotonic() + 15
        while not await more_committed():
            assert time.monotonic() < deadline, "no calls committed"
            await asyncio.sleep(0.1)
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{url}/api/v1/session", json={"username": "boss", "password": PASSWORD, "return_token": True}) as r:
                assert r.status == 200, await r.text()
                token = (await r.json())["token"]
            outcomes = {}
            for call_id in list(acked)[:2]:
                async with http.put(f"{url}/api/v1/interactions/{call_id}/outcome", headers={"Authorization": f"Bearer {token}"},
                                    json={"disposition": "callback", "notes": "call back after the crash test"}) as r:
                    assert r.status == 200, await r.text()
                    outcomes[call_id] = "callback"
        before_outage = await committed(database)

        # 2. the database goes away; records pile up past max_pending and are spilled (fsynced)
        await proxy.cut()
        await eventually(lambda: len([r for r in spilled(spill).values() if r.ended_at]) >= 3, 20, "ended calls spilled")
        on_disk = spilled(spill)

        # 3. SIGKILL, mid-traffic and mid-outage
        node.kill()
        assert await node.wait() == -signal.SIGKILL
        await proxy.restore()
        await node.start()
        await eventually(lambda: not spill.exists() and not spill.with_name(spill.name + ".replay").exists(), 15,
                         "the spill file replayed by the new process")
        after = await committed(database)

        for call_id, row in before_outage.items():
            if row["ended_at"] is not None:  # a finished call's record cannot change any more
                assert after[call_id] == row, call_id
        for call_id, disposition in outcomes.items():
            assert after[call_id]["disposition"] == disposition and after[call_id]["outcome_by"] == "boss"
        assert on_disk, "nothing was spilled: the test proved nothing"
        for call_id, record in on_disk.items():
            assert call_id in after, f"spilled call {call_id} lost"
            row = after[call_id]
            if record.ended_at:
                assert row["ended_at"] is not None and row["end_reason"] == record.end_reason, (call_id, row, record)
            if record.answered_by:
                assert row["answered_by"] == record.answered_by, (call_id, row, record)
        assert "Traceback" not in node.log.read_text()
    finally:
        if traffic is not None:
            traffic.cancel()
            await asyncio.gather(traffic, return_exceptions=True)
        if node.process is not None and node.process.returncode is None:
            node.process.terminate()
            try:
                await node.wait()
            except asyncio.TimeoutError:
                node.kill()
                await node.wait()
        await simulator.stop()
        await proxy.stop()
