"""The interaction log: one record per customer call (record.py, pure), its
tables (models.py) and migrations (migrate.py), the store behind the API
(store.py) and the outage-proof writer the orchestrator feeds (writer.py)."""
from screenpop.interactions.record import InteractionRecord, Note, apply, fold, merge
from screenpop.interactions.validate import InteractionError, InteractionNotFound, InvalidInput, UnknownDisposition

__all__ = [
    "InteractionRecord", "Note", "apply", "fold", "merge",
    "InteractionError", "InteractionNotFound", "InvalidInput", "UnknownDisposition",
]
