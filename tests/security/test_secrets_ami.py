"""The AMI secret through the code that really sends it: a node logging in
to the PBX simulator (accepted), and one with a wrong secret (rejected,
retried), every logger at DEBUG, panoramisk's included.  Neither the secret
sent nor the one expected may appear in any log line."""
from __future__ import annotations

import asyncio
import logging

from telephony.simulator import PbxSimulator
from tests.security.node import running_node

RIGHT, WRONG = "ami-right-SeCrEt-7319", "ami-wrong-SeCrEt-7319"


async def wait_for(predicate, timeout=5.0):
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_the_ami_secret_never_reaches_the_logs(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    simulator = PbxSimulator(seed=3, secret=RIGHT)
    port = await simulator.start()
    try:
        ami = {"port": port, "secret": RIGHT, "reconnect_min": 0.05, "reconnect_max": 0.2}
        async with running_node(f"sqlite+aiosqlite:///{tmp_path}/a.sqlite3", tmp_path, connect_pbx=True, ami=ami):
            assert await wait_for(lambda: "ami login ok" in caplog.text), "the node never logged in to the simulator"
        wrong = {"port": port, "secret": WRONG, "reconnect_min": 0.05, "reconnect_max": 0.2}
        async with running_node(f"sqlite+aiosqlite:///{tmp_path}/b.sqlite3", tmp_path, connect_pbx=True, ami=wrong):
            assert await wait_for(lambda: "ami login rejected" in caplog.text or "ami login failed" in caplog.text)
    finally:
        await simulator.stop()
    text = "\n".join(r.getMessage() for r in caplog.records) + "\n".join(str(r.args) for r in caplog.records)
    assert "user=screenpop" in text
    assert RIGHT not in text and WRONG not in text
