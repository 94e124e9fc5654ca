from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dealscore.errors import ConfigError
from dealscore.forecast.periods import (
    current_and_next,
    day_offsets,
    month_grid,
    period_of,
    quarter_position,
    quarters_between,
)


def test_quarter_and_month_boundaries_are_half_open() -> None:
    q = period_of("2025-09-30T23:59:59", "quarter")
    assert (q.label, q.start, q.end) == ("2025-Q3", pd.Timestamp("2025-07-01"), pd.Timestamp("2025-10-01"))
    assert period_of("2025-10-01", "quarter").label == "2025-Q4"
    assert [p.label for p in current_and_next("2025-12-15", "month")] == ["2025-12", "2026-01"]
    assert [p.label for p in current_and_next("2025-11-15", "quarter")] == ["2025-Q4", "2026-Q1"]
    with pytest.raises(ConfigError):
        period_of("2025-01-01", "week")


def test_grid_offsets_clip_the_past_and_quarter_position() -> None:
    t = pd.Timestamp("2025-05-16")
    grid = month_grid(t, 3)
    off = day_offsets(t, grid)
    assert off[0, 0] == 0 and off[0, 1] == 16 and off[1, 1] == 16 + 30
    since, until = quarter_position(np.array([t.asm8]))
    assert since[0] == 45 and until[0] == 46
    assert [q.label for q in quarters_between(pd.Timestamp("2024-02-10"), pd.Timestamp("2024-12-31"))] == [
        "2024-Q2", "2024-Q3"]
