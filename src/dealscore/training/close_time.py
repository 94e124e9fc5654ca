"""Training step: the forecast's time-to-close model, on the same snapshots and split as the win model.

Rows are the weekly snapshots of deals that were won (the model says *when*,
given a win); the label is the days from the snapshot to the close. It is fitted
on the train slice, early-stopped on the validation slice and evaluated on the
test slice beside the declared stage's empirical close-time shares (the peer a
CRM could compute), so the report says what the model adds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dealscore.data.history import DealHistory
from dealscore.forecast.close_time import BUCKET_EDGES, TimeToCloseModel, bucket_of, stage_pmf_baseline
from dealscore.forecast.features import close_time_matrix
from dealscore.times import DAY_NS

#: At most this many won snapshots train the model (a seeded sample beyond it).
MAX_ROWS = 150_000


def days_to_close(history: DealHistory, snaps: pd.DataFrame) -> np.ndarray:
    """Days from each snapshot to its deal's close (NaN while the deal is open): a label, hindsight allowed."""
    closed = history.deals.set_index("deal_id")["closed_at"]
    c = pd.DatetimeIndex(snaps["deal_id"].map(closed)).asi8
    t = pd.DatetimeIndex(snaps["as_of"]).asi8
    out = (c - t) / DAY_NS
    return np.where(c == np.iinfo(np.int64).min, np.nan, out)


def fit_close_time(history: DealHistory, snaps: pd.DataFrame, features: pd.DataFrame, won: np.ndarray,
                   slice_of: np.ndarray, *, seed: int = 0, num_threads: int = 0,
                   ) -> tuple[TimeToCloseModel, dict[str, Any]]:
    """Fit and evaluate the time-to-close model; returns it and its report section."""
    days = days_to_close(history, snaps)
    usable = (won == 1) & ~np.isnan(days) & (days > 0)
    X = close_time_matrix(features, snaps["as_of"].to_numpy(dtype="datetime64[ns]"), len(snaps))
    tr, va, te = (usable & (slice_of == s) for s in ("train", "validation", "test"))
    if tr.sum() > MAX_ROWS:
        rows = np.random.default_rng(seed).choice(np.flatnonzero(tr), size=MAX_ROWS, replace=False)
        tr = np.zeros_like(tr)
        tr[rows] = True
    model = TimeToCloseModel(seed=seed, num_threads=num_threads).fit(X[tr], days[tr], X[va], days[va])
    report: dict[str, Any] = {"bucket_edges_days": list(BUCKET_EDGES), "train_rows": int(tr.sum()),
                              "best_iteration": model.best_iteration_}
    if te.sum():
        pmf = model.predict_pmf(X[te])
        y = bucket_of(days[te])
        stage = X[:, 0]  # declared_stage_order is the first deal column
        base = stage_pmf_baseline(stage[tr], days[tr])
        base_pmf = np.array([base.get(float(s), base[np.nan]) if s == s else base[np.nan] for s in stage[te]])
        report["test"] = {
            "rows": int(te.sum()),
            "log_loss": _log_loss(pmf, y), "log_loss_stage_baseline": _log_loss(base_pmf, y),
            "median_abs_error_days": _median_error(pmf, days[te]),
            "median_abs_error_days_stage_baseline": _median_error(base_pmf, days[te]),
        }
    return model, report


def _log_loss(pmf: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(np.clip(pmf[np.arange(len(y)), y], 1e-12, 1.0)).mean())


def _median_error(pmf: np.ndarray, days: np.ndarray) -> float:
    """Median |predicted median close day − actual|, the median read off the bucket distribution."""
    e = np.asarray(BUCKET_EDGES, dtype=float)
    cum = np.cumsum(pmf, axis=1)
    k = (cum < 0.5).sum(axis=1).clip(0, len(e) - 2)
    before = np.where(k > 0, cum[np.arange(len(k)), k - 1], 0.0)
    share = (0.5 - before) / np.maximum(pmf[np.arange(len(k)), k], 1e-12)
    median = e[k] + share * (e[k + 1] - e[k])
    return float(np.median(np.abs(median - days)))


__all__ = ["days_to_close", "fit_close_time"]
