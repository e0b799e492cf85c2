"""Revision files; Alembic ignores this ``__init__`` (it is only here so the
folder ships as a package)."""
