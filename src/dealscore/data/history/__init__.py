"""`DealHistory`: the tables of one company's CRM history, loaded and typed.

The package holds the type and its point-in-time views (:mod:`.model`), the
typing of one table's columns (:mod:`.columns`), loading a folder or frames
(:mod:`.load`) and writing a folder (:mod:`.write`). Loading only parses and
types the tables; the business rules live in :mod:`dealscore.data.validate`.
"""

from dealscore.data.history.columns import coerce_table, frame_of_columns
from dealscore.data.history.load import META_FILE, from_frames, load_history, parse_cut_at
from dealscore.data.history.model import DealHistory, known_time, refuse_after_cut
from dealscore.data.history.write import write_history

__all__ = [
    "META_FILE",
    "DealHistory",
    "coerce_table",
    "frame_of_columns",
    "from_frames",
    "known_time",
    "load_history",
    "parse_cut_at",
    "refuse_after_cut",
    "write_history",
]
