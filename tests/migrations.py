"""The migration tests' shared steps: a migration's tables against the
models, and going back down the Alembic chain."""
from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from screenpop.db import create_engine, metadata
from screenpop.interactions.migrate import alembic_config


async def schema_against_models(engine: AsyncEngine, mine: set[str]) -> tuple[set[str], list]:
    """The database's tables, and the differences between the database and the
    models (compare_metadata, types included) that touch the tables in ``mine``."""

    def touches_mine(diff) -> bool:
        text = repr(diff)
        return any(f"'{name}'" in text or f"table={name}" in text or f"Table('{name}'" in text for name in mine)

    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        diffs = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}), metadata))
    return tables, [d for d in diffs if touches_mine(d)]


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
