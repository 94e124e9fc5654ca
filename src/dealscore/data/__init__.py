"""Deal-history data: the contract (DESIGN §3), loading, validation, simulation and importers."""

from dealscore.data.history import DealHistory, load_history, write_history
from dealscore.data.validate import LoadReport, validate_history

__all__ = ["DealHistory", "LoadReport", "load_history", "validate_history", "write_history"]
