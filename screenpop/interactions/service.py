"""The interaction log as the service uses it: migrate, one engine, the store
and a started writer, closed in the right order.

Why one object: the HTTP layer needs the store, the orchestrator the writer,
and both must share the engine; shutting down must stop the writer (which
flushes or spills) before the engine goes away.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from screenpop.db import create_engine
from screenpop.interactions.migrate import migrate
from screenpop.interactions.record import InteractionRecord, merge
from screenpop.interactions.store import DEFAULT_DISPOSITIONS, InteractionStore
from screenpop.interactions.writer import InteractionWriter

log = logging.getLogger(__name__)


@dataclass
class InteractionLog:
    engine: AsyncEngine
    store: InteractionStore
    writer: InteractionWriter

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        dispositions=DEFAULT_DISPOSITIONS,
        migrate_first: bool = True,
        default_region: str = "ES",
        **writer_options: Any,
    ) -> "InteractionLog":
        """Migrate (safe at every start), connect, start the writer.
        ``default_region``: how a searched number is read (``[lookup]``);
        ``writer_options``: :class:`InteractionWriter`'s keywords (spill_path, …)."""
        if migrate_first:
            await migrate(dsn)
        engine = create_engine(dsn)
        store = InteractionStore(engine, dispositions, default_region=default_region)
        writer = InteractionWriter(store, **writer_options)
        await writer.start()
        log.info("interaction log open dsn=%s spill=%s", engine.url.render_as_string(hide_password=True), writer.spill_path)
        return cls(engine, store, writer)

    @classmethod
    async def from_settings(cls, settings, *, migrate_first: bool = True) -> "InteractionLog":
        """From ``[storage] dsn``, ``[interactions]`` and ``[lookup] default_region``."""
        s = settings.interactions
        return await cls.open(
            settings.storage.dsn,
            dispositions=s.dispositions,
            migrate_first=migrate_first,
            default_region=settings.lookup.default_region,
            spill_path=s.spill_path or None,
            max_pending=s.max_pending,
            batch_size=s.batch_size,
            flush_interval=s.flush_interval,
            retry_max=s.retry_max_seconds,
        )

    async def get(self, call_id: str) -> InteractionRecord | None:
        """The stored record with what the writer has not written yet."""
        stored = await self.store.get(call_id)
        pending = self.writer.peek(call_id)
        if pending is None:
            return stored
        if stored is None:
            return pending
        return dataclasses.replace(merge(stored, pending), notes=stored.notes)

    async def close(self, timeout: float = 10.0) -> None:
        await self.writer.stop(timeout)
        await self.store.close()
        await self.engine.dispose()
