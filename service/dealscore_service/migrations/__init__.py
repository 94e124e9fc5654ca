"""Alembic migrations of the score store (applied programmatically at start, see ``store.migrate``)."""
