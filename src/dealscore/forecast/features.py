"""The time-to-close model's inputs: point-in-time deal features plus where the snapshot sits in its quarter.

Every deal column comes from the one feature pipeline
(:func:`dealscore.features.build_features`), which already guards point-in-time
correctness, including the close-date history (``days_to_expected_close`` as
known at ``as_of``, ``close_date_pushes``). The calendar columns added here are
functions of ``as_of`` and of those columns only, so they cannot see the future
either; ``tests/forecast/test_features.py`` checks that on truncated histories.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from dealscore.forecast.periods import quarter_position

#: Columns of the feature frame the time-to-close model reads (those absent read as missing).
DEAL_COLUMNS: tuple[str, ...] = (
    "declared_stage_order", "days_in_stage", "n_stage_changes", "n_regressions", "max_stage_order",
    "days_since_stage_update", "stage_median_days_won", "stage_time_ratio", "deal_age_days",
    "days_to_expected_close", "close_date_pushes", "n_touches_7d", "n_touches_30d", "n_touches_total",
    "touch_trend", "days_since_last_touch", "n_contacts", "decision_maker_engaged", "champion_engaged",
    "has_meeting", "has_demo", "has_proposal", "has_contract", "pricing_discussed", "days_since_last_proposal",
    "days_since_last_contract", "evidence_stage_order", "employees", "amount", "owner_open_deals",
)
#: Calendar columns derived here.
CALENDAR_COLUMNS: tuple[str, ...] = ("quarter_day", "days_to_quarter_end", "expected_close_before_quarter_end")
CLOSE_TIME_COLUMNS: tuple[str, ...] = DEAL_COLUMNS + CALENDAR_COLUMNS


def close_time_matrix(columns: Mapping[str, np.ndarray] | object, as_of: np.ndarray, n: int) -> np.ndarray:
    """The model's input matrix (rows × :data:`CLOSE_TIME_COLUMNS`) from feature columns and snapshot times.

    ``columns`` is a feature frame or anything with a ``num(name)`` method
    (:class:`dealscore.scoring.columns.Columns`), so training (a frame) and
    scoring (arrays cut from the model block) share this one function.
    """
    out = np.full((n, len(CLOSE_TIME_COLUMNS)), np.nan, dtype=float)
    for j, name in enumerate(DEAL_COLUMNS):
        values = _column(columns, name)
        if values is not None:
            out[:, j] = values
    since, until = quarter_position(as_of)
    k = len(DEAL_COLUMNS)
    out[:, k] = since
    out[:, k + 1] = until
    expected = out[:, DEAL_COLUMNS.index("days_to_expected_close")]
    out[:, k + 2] = np.where(np.isnan(expected), np.nan, (expected < until).astype(float))
    return out


def _column(columns: Mapping[str, np.ndarray] | object, name: str) -> np.ndarray | None:
    num = getattr(columns, "num", None)
    if callable(num):
        v = num(name)
        return None if v is None else np.asarray(v, dtype=float)
    if name in columns:  # type: ignore[operator]
        return np.asarray(columns[name], dtype=float)  # type: ignore[index]
    return None
