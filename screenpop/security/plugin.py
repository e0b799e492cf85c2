"""The security parts of one node, built once from the settings and the
service's database engine: integration tokens, the audit trail, the masking
rules.  ``agent_ui.app.build_app`` builds and starts them with the web app
(:meth:`Security.attach`), so nothing here needs the service's own wiring."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiohttp import web

from screenpop.security.audit import AuditRetention, AuditStore, AuditTrail
from screenpop.security.privacy import PrivacyRules
from screenpop.security.tokens import IntegrationTokens, TokenStore

log = logging.getLogger(__name__)


@dataclass
class Security:
    billing_tokens: IntegrationTokens
    audit: AuditTrail | None
    audit_store: AuditStore | None
    privacy: PrivacyRules
    retention: AuditRetention | None = None  # [security] audit_retention_days > 0 and an audit log

    @classmethod
    def build(cls, settings, engine=None) -> "Security":
        """``engine``: the service database's (None: config-file tokens only, no audit)."""
        s = settings.security
        store = TokenStore(engine) if engine is not None else None
        tokens = IntegrationTokens(store, "billing", [settings.billing.token] if settings.billing.token else [],
                                   cache_seconds=s.token_cache_seconds)
        audit_store = AuditStore(engine) if engine is not None else None
        audit = AuditTrail(audit_store, max_pending=s.audit_max_pending, flush_interval=s.audit_flush_interval) if audit_store else None
        retention = AuditRetention(audit_store, s.audit_retention_days) if audit_store and s.audit_retention_days else None
        return cls(tokens, audit, audit_store, PrivacyRules.from_settings(settings.privacy), retention)

    def attach(self, app: web.Application) -> None:
        """Load the tokens before the first request, reload them while the app
        runs, run the audit writer and the audit retention (purge at start,
        then hourly); stop them (flushing the audit) at cleanup."""

        async def lifecycle(app: web.Application):
            try:
                count = await self.billing_tokens.refresh()
                log.info("integration tokens loaded scope=billing active=%d", count)
            except Exception as exc:  # the config-file token still works; the reload retries
                log.warning("integration tokens load failed reason=%s", type(exc).__name__)
            reload = asyncio.create_task(self.billing_tokens.run(), name="integration-tokens-reload")
            if self.audit is not None:
                await self.audit.start()
            tasks = [reload]
            if self.retention is not None:
                log.info("audit retention days=%d", self.retention.days)
                tasks.append(asyncio.create_task(self.retention.run(), name="audit-retention"))
            yield
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.audit is not None:
                await self.audit.stop()

        app.cleanup_ctx.append(lifecycle)


SECURITY = web.AppKey("security", Security)
