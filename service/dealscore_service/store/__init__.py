"""The score store: SQLAlchemy tables, Alembic migrations and the repository."""

from dealscore_service.store.repository import (
    CurrencyTotals,
    DealEvent,
    DealFilter,
    DealState,
    ListedDeal,
    ListPageData,
    ListRequest,
    Lookup,
    Recheck,
    ScoreStore,
    ScoreToSave,
    StoredScore,
)

__all__ = ["CurrencyTotals", "DealEvent", "DealFilter", "DealState", "ListPageData", "ListRequest", "ListedDeal",
           "Lookup", "Recheck", "ScoreStore", "ScoreToSave", "StoredScore"]
