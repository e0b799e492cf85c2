"""What the fault tests' fixtures share: the demo business databases at
the hardening size (:func:`tests.stack.seed_databases`: 200 customers, seed
5) seeded once per module, under which the ``stack`` fixture
(tests/conftest.py) runs, and a scratch PostgreSQL database per test."""
from __future__ import annotations

import pytest

from tests.pg import scratch_database
from tests.stack import seed_databases


@pytest.fixture(scope="module")
def demo_dbs(tmp_path_factory):
    return seed_databases(tmp_path_factory.mktemp("faults"))


@pytest.fixture
async def database():
    """An empty PostgreSQL database of the test's own, dropped afterwards."""
    async with scratch_database("sp_faults") as dsn:
        yield dsn
