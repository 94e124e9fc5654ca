"""The score store: SQLAlchemy tables, Alembic migrations and the repository."""

from dealscore_service.store.repository import DealFilter, ScoreStore, ScoreToSave, StoredScore

__all__ = ["DealFilter", "ScoreStore", "ScoreToSave", "StoredScore"]
