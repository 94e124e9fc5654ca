"""Calendar periods a forecast speaks about: months and quarters, the current one and the next.

A period is a half-open interval ``[start, end)`` of naive-UTC times, so a deal
closed at midnight on the first of a month belongs to that month and no deal is
counted twice. Everything else in the forecast package (the time-to-close model,
the Monte Carlo, the backtest) asks this module where periods begin and end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from dealscore.errors import ConfigError
from dealscore.times import DAY_NS, naive_utc

PeriodKind = Literal["month", "quarter"]
PERIOD_KINDS: tuple[str, ...] = ("month", "quarter")


@dataclass(frozen=True)
class Period:
    """One calendar month or quarter: ``[start, end)``."""

    kind: str
    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def label(self) -> str:
        """``2025-Q3`` or ``2025-08``: what tables and charts print."""
        if self.kind == "quarter":
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        return f"{self.start.year}-{self.start.month:02d}"

    def contains(self, t: pd.Timestamp) -> bool:
        return bool(self.start <= t < self.end)


def check_kind(kind: str) -> str:
    if kind not in PERIOD_KINDS:
        raise ConfigError(f"unknown forecast period {kind!r}", fix="use --period month or --period quarter")
    return kind


def instant(value: pd.Timestamp | str) -> pd.Timestamp:
    """A time given as text or a Timestamp, in the product's convention (:func:`dealscore.times.naive_utc`),
    in nanoseconds: the forecast takes its times from the command line and the API as well as from histories."""
    return naive_utc(pd.Timestamp(value)).as_unit("ns")


def period_of(t: pd.Timestamp | str, kind: str) -> Period:
    """The month or quarter holding ``t``."""
    check_kind(kind)
    t = instant(t)
    months = 3 if kind == "quarter" else 1
    first_month = ((t.month - 1) // months) * months + 1
    start = pd.Timestamp(year=t.year, month=first_month, day=1).as_unit("ns")
    return Period(kind, start, (start + pd.DateOffset(months=months)).as_unit("ns"))


def following(period: Period, n: int = 1) -> Period:
    """The period ``n`` steps after ``period``."""
    months = 3 if period.kind == "quarter" else 1
    start = (period.start + pd.DateOffset(months=months * n)).as_unit("ns")
    return Period(period.kind, start, (start + pd.DateOffset(months=months)).as_unit("ns"))


def current_and_next(as_of: pd.Timestamp | str, kind: str) -> list[Period]:
    """The period holding ``as_of`` and the one after: what a forecast reports."""
    cur = period_of(as_of, kind)
    return [cur, following(cur)]


def month_grid(as_of: pd.Timestamp | str, n_months: int) -> list[Period]:
    """``n_months`` consecutive months from the one holding ``as_of``: the Monte Carlo's time partition.

    Quarters are unions of three of these months, so one simulation answers months
    and quarters consistently (a quarter's draw is the sum of its months' draws).
    """
    first = period_of(as_of, "month")
    return [following(first, k) for k in range(n_months)]


def months_in(period: Period, grid: list[Period]) -> np.ndarray:
    """Indices of the grid months that make up ``period``."""
    return np.array([i for i, m in enumerate(grid) if period.start <= m.start and m.end <= period.end], dtype=np.int64)


def day_offsets(as_of: pd.Timestamp, periods: list[Period]) -> np.ndarray:
    """Each period's ``[start, end)`` in days after ``as_of`` (clipped at 0: the past is not forecast)."""
    t = instant(as_of).value
    out = np.array([[(p.start.value - t) / DAY_NS, (p.end.value - t) / DAY_NS] for p in periods], dtype=float)
    return np.clip(out, 0.0, None)


def quarter_position(as_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Days since the quarter began and days until it ends, for an array of ``datetime64[ns]``.

    Deals are often pushed to close before a quarter ends; the time-to-close model
    sees where in the quarter its snapshot sits through these two numbers. NumPy's
    month arithmetic keeps this at microseconds for the one-deal scoring path.
    """
    t = np.asarray(as_of, dtype="datetime64[ns]")
    months = t.astype("datetime64[M]").astype(np.int64)
    first = (months - months % 3).astype("datetime64[M]")
    start = first.astype("datetime64[ns]")
    end = (first + 3).astype("datetime64[ns]")
    since = (t - start).astype(np.int64) / DAY_NS
    until = (end - t).astype(np.int64) / DAY_NS
    return since, until


def quarters_between(first: pd.Timestamp, last: pd.Timestamp) -> list[Period]:
    """Every quarter that starts at or after ``first`` and ends at or before ``last``."""
    p = period_of(first, "quarter")
    if p.start < instant(first):
        p = following(p)
    out = []
    while p.end <= instant(last):
        out.append(p)
        p = following(p)
    return out
