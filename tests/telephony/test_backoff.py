"""The retry schedule (telephony.backoff) and the AMI link's outage clock.

A live 25 s AMI cut: the link was back at 14:51:25.85 and screenpop retried
only at 14:51:39.18 (13.4 s of backoff after 6 failures).  While an outage is
young the attempts stay frequent; only an old outage backs off to the cap."""
from __future__ import annotations

import asyncio
import re

import pytest

from telephony.backoff import Backoff
from telephony.connection import AmiConnection
from tests.telephony.test_connection import ami, eventually, running, settings  # noqa: F401  (fixtures)


def test_young_outages_are_retried_every_two_seconds_at_most():
    schedule = Backoff(low=0.5, high=30.0, young_seconds=60.0, young_high=2.0)
    delays = [schedule.delay(n, outage_seconds=min(55.0, n * 2.0), rand=0.0) for n in range(1, 30)]
    assert delays[:3] == [0.5, 1.0, 2.0]
    assert max(delays) == 2.0  # the 25 s cut is retried within 2 s of the PBX coming back


def test_old_outages_back_off_to_the_cap():
    schedule = Backoff(low=0.5, high=30.0)
    assert schedule.delay(10, outage_seconds=61.0, rand=0.0) == 30.0
    assert schedule.delay(3, outage_seconds=61.0, rand=0.0) == 2.0  # doubling goes on from the failures


def test_jitter_takes_up_to_a_fifth_off_and_never_goes_below_the_least_wait():
    schedule = Backoff(low=0.5, high=30.0)
    assert schedule.delay(10, 120.0, rand=1.0) == pytest.approx(24.0)
    assert schedule.delay(1, 0.0, rand=1.0) == 0.5
    assert all(0.5 <= schedule.delay(n, 0.0) <= 2.0 for n in range(1, 50))


async def test_the_link_knows_since_when_it_is_down_and_retries_often_while_young(ami, running, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="telephony.connection")
    conn = running(AmiConnection(settings(ami.port, reconnect_min=0.05, reconnect_max=30.0)))
    await eventually(lambda: conn.state == "connected")
    assert conn.down_since is None and conn.outage_seconds == 0.0
    await ami.stop()
    await eventually(lambda: conn.down_since is not None)
    await asyncio.sleep(4.0)  # doubling from 0.05 s would wait 3.2 s by now
    assert conn.outage_seconds >= 3.9
    delays = [float(re.search(r"delay=([\d.]+)", r.getMessage()).group(1)) for r in caplog.records if "ami retry" in r.getMessage()]
    assert len(delays) >= 7 and max(delays) <= 2.0 and max(delays) >= 1.5  # capped at 2 s: the outage is young
    await ami.start()
    await eventually(lambda: conn.state == "connected", timeout=5.0)
    assert conn.down_since is None
    assert any("ami link back" in r.getMessage() and "outage_seconds=" in r.getMessage() for r in caplog.records)
