"""``--as-of`` as the commands read it: one parser, so every command accepts and refuses the same texts."""

from __future__ import annotations

import pandas as pd

from dealscore.errors import DataValidationError
from dealscore.times import naive_utc


def as_of_time(as_of: str | None) -> pd.Timestamp | None:
    """``--as-of`` as a naive UTC time (None: the command's default, usually the history's data cut)."""
    if as_of is None:
        return None
    try:
        t = pd.Timestamp(as_of)
    except (ValueError, TypeError) as exc:
        raise DataValidationError(f"--as-of {as_of!r} is not a date or time",
                                  fix="use ISO 8601, e.g. 2024-06-30 or 2024-06-30T18:00:00") from exc
    return naive_utc(t)
