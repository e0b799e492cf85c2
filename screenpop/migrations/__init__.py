"""Alembic migrations of the service's own database (interaction log, users).

Run programmatically through :func:`screenpop.interactions.migrate.migrate`;
no ``alembic.ini`` is needed.  A new revision is one file in ``versions/``
whose ``down_revision`` is the current head."""
