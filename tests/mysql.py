"""Scratch MySQL/MariaDB databases for tests (Asterisk's CEL table as FreePBX
keeps it): uniquely named, dropped afterwards.  The server on 127.0.0.1:3306
being down FAILS the test that needs it; it never skips."""
from __future__ import annotations

import contextlib
import os
import uuid

import pytest

MYSQL_DSN = os.environ.get("SCREENPOP_TEST_MYSQL_DSN", "mysql+aiomysql://root@127.0.0.1:3306/test")


async def _admin():
    import aiomysql
    from sqlalchemy.engine import make_url

    url = make_url(MYSQL_DSN)
    try:
        return await aiomysql.connect(host=url.host, port=url.port or 3306, user=url.username, password=url.password or "",
                                      connect_timeout=5, autocommit=True)
    except Exception as exc:  # pragma: no cover - the point is to fail loudly
        pytest.fail(f"MySQL/MariaDB is required at {MYSQL_DSN} and is not reachable: {exc}")


@contextlib.asynccontextmanager
async def scratch_mysql_database(prefix: str):
    """A new empty database; yields its SQLAlchemy (aiomysql) DSN."""
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = await _admin()
    try:
        async with conn.cursor() as cur:
            await cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    finally:
        conn.close()
    try:
        yield make_url(MYSQL_DSN).set(database=name).render_as_string(hide_password=False)
    finally:
        conn = await _admin()
        try:
            async with conn.cursor() as cur:
                await cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            conn.close()
