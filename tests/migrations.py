"""Going back down the Alembic chain, for the migration tests of each package."""
from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from screenpop.db import create_engine
from screenpop.interactions.migrate import alembic_config


async def downgrade_to(dsn: str, revision: str) -> set[str]:
    """Downgrade the database to ``revision``; returns the tables left."""
    engine = create_engine(dsn)
    config = alembic_config()
    try:
        async with engine.begin() as conn:
            def down(sync_conn):
                config.attributes["connection"] = sync_conn
                command.downgrade(config, revision)

            await conn.run_sync(down)
        async with engine.connect() as conn:
            return await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    finally:
        await engine.dispose()
