"""The forecasts a sales team already has, computed on the same dates as the model's.

Every peer adds what is already booked in the quarter (known at the forecast
time) to its estimate of the rest, exactly as the model does, so the comparison
is about the open and future pipeline only:

- **weighted pipeline** (what most CRMs show): open deals whose expected close
  date, as known then, falls in the quarter, × the historical win rate of their
  declared stage (learned from deals closed before the forecast time);
- **reps' dates at face value**: the same deals (the reps' own close dates, taken
  as they are), each weighted by the model's calibrated win probability, so this
  peer isolates what the time-to-close model adds;
- **run rate**: the mean bookings of the last four full quarters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dealscore.data.history import DealHistory
from dealscore.forecast.creation import NO_GROUP
from dealscore.forecast.periods import Period, following
from dealscore.times import DAY_NS

PEERS: tuple[str, ...] = ("weighted_pipeline", "reps_dates", "run_rate")


def stage_win_rates(history: DealHistory, as_of: pd.Timestamp) -> dict[str, float]:
    """Per declared stage: the share won among closed deals that were ever recorded in it (known at ``as_of``)."""
    d = history.deals
    closed = d["closed_at"].notna() & (d["closed_at"] <= as_of)
    won = d.loc[closed, ["deal_id", "outcome"]].assign(won=lambda f: f["outcome"] == "won")
    sh = history.stage_history
    seen = sh[sh["deal_id"].isin(won["deal_id"])][["deal_id", "stage"]].drop_duplicates()
    rates = seen.merge(won[["deal_id", "won"]], on="deal_id").groupby("stage")["won"].mean()
    return {str(k): float(v) for k, v in rates.items()}


def peer_forecasts(history: DealHistory, as_of: pd.Timestamp, quarter: Period, open_deals: pd.DataFrame,
                   group: str = "team") -> pd.DataFrame:
    """The three peers per group for one quarter, from the history as known at ``as_of``.

    ``open_deals`` holds one row per deal open at ``as_of`` with ``deal_id``, the
    group column, ``amount``, ``p_win``, ``declared_stage`` and ``days_to_expected_close``
    (all as known then: the scoring and feature pipelines give them).
    """
    rates = stage_win_rates(history, as_of)
    overall = float(np.mean(list(rates.values()))) if rates else 0.0
    t = as_of.value
    exp_close = t + open_deals["days_to_expected_close"].to_numpy(dtype=float) * DAY_NS
    in_q = (exp_close >= quarter.start.value) & (exp_close < quarter.end.value)
    amount = np.nan_to_num(open_deals["amount"].to_numpy(dtype=float), nan=0.0)
    stage_rate = open_deals["declared_stage"].map(lambda s: rates.get(str(s), overall)).to_numpy(dtype=float)
    keys = open_deals[group].astype(object).where(open_deals[group].notna(), NO_GROUP).astype(str).to_numpy()
    frame = pd.DataFrame({
        "group": keys,
        "weighted_pipeline": np.where(in_q, amount * stage_rate, 0.0),
        "reps_dates": np.where(in_q, amount * open_deals["p_win"].to_numpy(dtype=float), 0.0),
    }).groupby("group").sum()
    run = run_rate(history, quarter, group)
    out = frame.reindex(frame.index.union(run.index), fill_value=0.0)
    out["run_rate"] = run.reindex(out.index, fill_value=0.0)
    return out


def bookings(history: DealHistory, start: pd.Timestamp, end: pd.Timestamp, group: str = "team",
             until: pd.Timestamp | None = None) -> pd.Series:
    """Won amount per group with ``closed_at`` in ``[start, end)`` (and at or before ``until`` when given)."""
    d = history.deals
    closed = d["closed_at"]
    sel = (d["outcome"] == "won") & (closed >= start) & (closed < end)
    if until is not None:
        sel &= closed <= until
    keys = d[group].astype(object).where(d[group].notna(), NO_GROUP).astype(str)
    return d.loc[sel, "amount"].fillna(0.0).groupby(keys[sel]).sum().astype(float)


def run_rate(history: DealHistory, quarter: Period, group: str = "team") -> pd.Series:
    """Mean bookings per group over the four full quarters before ``quarter``."""
    first = following(quarter, -4)
    total = bookings(history, first.start, quarter.start, group)
    return total / 4.0


__all__ = ["PEERS", "bookings", "peer_forecasts", "run_rate", "stage_win_rates"]
