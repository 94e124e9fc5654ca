"""When a deal closes if it is won: a distribution over close-date buckets, learned point in time.

The model is LightGBM multiclass over buckets of *days from the snapshot to the
close* (a week each at first, wider later), fitted on the weekly snapshots of
deals that were won. Its inputs (:mod:`dealscore.forecast.features`) include the
close-date history the CRM kept (days to the expected close date as known then,
how often it was pushed), so a deal whose rep keeps slipping the date is spread
further out. Within a bucket the close time is taken as uniform, which turns the
class probabilities into a piecewise-constant density: the Monte Carlo draws from
it, and any period's probability is an exact sum of bucket overlaps.

Why conditional on winning: the win model already says *whether*; this says
*when*. Lost deals carry no bookings, so their timing does not matter here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from dealscore.errors import InsufficientDataError
from dealscore.forecast.features import CLOSE_TIME_COLUMNS, close_time_matrix
from dealscore.forecast.periods import Period, day_offsets, month_grid
from dealscore.times import DAY_NS
from dealscore.wording import percent_text

#: Bucket edges in days after the snapshot; the last bucket ends the support (a won deal closing later counts there).
BUCKET_EDGES: tuple[float, ...] = (0, 7, 14, 21, 28, 42, 56, 70, 91, 119, 154, 196, 273, 365, 548)

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "multiclass", "learning_rate": 0.08, "num_leaves": 15, "min_data_in_leaf": 40,
    "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0, "verbose": -1,
}


def bucket_of(days: np.ndarray, edges: tuple[float, ...] = BUCKET_EDGES) -> np.ndarray:
    """The bucket index of each number of days to close (beyond the last edge → the last bucket)."""
    k = np.searchsorted(np.asarray(edges[1:-1], dtype=float), np.asarray(days, dtype=float), side="right")
    return k.astype(np.int64)


def stage_pmf_baseline(stage_order: np.ndarray, days: np.ndarray, edges: tuple[float, ...] = BUCKET_EDGES,
                       ) -> dict[float, np.ndarray]:
    """The peer the model must beat: each declared stage's empirical bucket shares (won deals' snapshots)."""
    k = len(edges) - 1
    out: dict[float, np.ndarray] = {}
    b = bucket_of(days, edges)
    overall = (np.bincount(b, minlength=k) + 1.0) / (len(b) + k)
    out[np.nan] = overall
    for s in np.unique(stage_order[~np.isnan(stage_order)]):
        sel = stage_order == s
        out[float(s)] = (np.bincount(b[sel], minlength=k) + 1.0 * overall * k) / (sel.sum() + k)
    return out


class TimeToCloseModel:
    """Distribution of the close time of an open deal, given that it will be won.

    Parameters are stored as given (scikit-learn style); learned attributes end in ``_``.
    """

    def __init__(self, *, params: dict[str, Any] | None = None, num_boost_round: int = 300,
                 early_stopping_rounds: int = 25, edges: tuple[float, ...] = BUCKET_EDGES, seed: int = 0,
                 num_threads: int = 0) -> None:
        self.params = params
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.edges = edges
        self.seed = seed
        self.num_threads = num_threads

    # ------------------------------------------------------------------ fit

    def fit(self, X: np.ndarray, days_to_close: np.ndarray, X_val: np.ndarray | None = None,
            days_val: np.ndarray | None = None) -> TimeToCloseModel:
        """Fit on model inputs (:func:`close_time_matrix` rows) and the days each snapshot had left until its win."""
        y = bucket_of(days_to_close, self.edges)
        k = len(self.edges) - 1
        if len(y) < 50:
            raise InsufficientDataError(
                f"the time-to-close model needs snapshots of at least 50 won deals' open lives, got {len(y)}",
                fix="train on a longer history (more won deals)",
            )
        params = {**DEFAULT_PARAMS, **(self.params or {}), "num_class": k, "seed": self.seed,
                  "num_threads": self.num_threads, "deterministic": True}
        train = lgb.Dataset(X, label=y, feature_name=list(CLOSE_TIME_COLUMNS), free_raw_data=True)
        callbacks = []
        valid_sets = []
        if X_val is not None and days_val is not None and len(days_val):
            valid_sets = [lgb.Dataset(X_val, label=bucket_of(days_val, self.edges), reference=train)]
            callbacks = [lgb.early_stopping(self.early_stopping_rounds, verbose=False)]
        self.booster_ = lgb.train(params, train, num_boost_round=self.num_boost_round, valid_sets=valid_sets,
                                  callbacks=callbacks)
        self.best_iteration_ = int(self.booster_.best_iteration or self.booster_.current_iteration())
        self.n_classes_ = k
        self.feature_names_ = list(CLOSE_TIME_COLUMNS)
        return self

    # ------------------------------------------------------------------ predict

    def predict_pmf(self, X: np.ndarray) -> np.ndarray:
        """Bucket probabilities (rows × buckets), each row summing to 1."""
        if not len(X):
            return np.zeros((0, self.n_classes_))
        return self.normalise(np.asarray(self.booster_.predict(X, num_iteration=self.best_iteration_), dtype=float))

    @staticmethod
    def normalise(p: np.ndarray) -> np.ndarray:
        """Rows summing to exactly 1 (the booster's softmax is off by rounding)."""
        return p / p.sum(axis=1, keepdims=True)

    def pmf_of(self, columns: Any, as_of: np.ndarray) -> np.ndarray:
        """Bucket probabilities from feature columns (a frame or scoring columns) and snapshot times."""
        as_of = np.asarray(as_of, dtype="datetime64[ns]")
        return self.predict_pmf(close_time_matrix(columns, as_of, len(as_of)))


# ---------------------------------------------------------------------- using a distribution


#: The compact form of a close outlook's bucket probabilities: float64, little-endian, bucket by bucket. The same
#: numbers as the JSON list (8 bytes each, no text to parse); the score store keeps it with each deal's latest score.
PMF_DTYPE = np.dtype("<f8")


def pmf_bytes(probabilities: Sequence[float] | None) -> bytes:
    """A close outlook's bucket probabilities in their compact form (:data:`PMF_DTYPE`); ``b""`` without an outlook."""
    return b"" if probabilities is None else np.asarray(probabilities, dtype=PMF_DTYPE).tobytes()


def period_probabilities(pmf: np.ndarray, offsets: np.ndarray, edges: tuple[float, ...] = BUCKET_EDGES,
                         elapsed: np.ndarray | None = None) -> np.ndarray:
    """P(close in each period | won) per deal: uniform within a bucket, overlap summed exactly.

    ``offsets`` is (periods × 2) or (deals × periods × 2) ``[start, end)`` in days after
    each deal's snapshot. ``elapsed`` (days since the snapshot, per deal) conditions on
    the deal still being open then: the mass before it is dropped and the rest rescaled
    (a stored score read a week later has had a week not to close).
    """
    e = np.asarray(edges, dtype=float)
    width = np.diff(e)
    off = np.asarray(offsets, dtype=float)
    if off.ndim == 2:
        off = np.broadcast_to(off, (len(pmf), *off.shape))
    a, b = off[:, :, 0], off[:, :, 1]
    if elapsed is not None:
        el = np.asarray(elapsed, dtype=float)[:, None]
        a, b = np.maximum(a, el), np.maximum(b, el)
    # Mass spread uniformly within each bucket makes the distribution's CDF piecewise linear, so a
    # period's share is CDF(end) - CDF(start): (deals x periods) work, not (deals x periods x buckets).
    out = np.maximum(_cdf(pmf, e, width, b) - _cdf(pmf, e, width, a), 0.0)
    if elapsed is not None:
        remaining = 1.0 - _cdf(pmf, e, width, np.asarray(elapsed, dtype=float)[:, None])
        out = np.where(remaining > 1e-12, out / np.maximum(remaining, 1e-12), 0.0)
    return out


def _cdf(pmf: np.ndarray, edges: np.ndarray, width: np.ndarray, x: np.ndarray) -> np.ndarray:
    """P(close before ``x`` days | won) per deal (rows of ``x``), mass uniform within each bucket."""
    p = np.asarray(pmf, dtype=float)
    below = np.concatenate([np.zeros((len(p), 1)), np.cumsum(p, axis=1)], axis=1)  # mass before each edge
    k = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(width) - 1)
    rows = np.arange(len(p))[:, None]
    inside = np.clip((x - edges[k]) / width[k], 0.0, 1.0)
    return below[rows, k] + p[rows, k] * inside


_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class CloseDescriptions:
    """Close outlooks of many deals as arrays (see :func:`describe_closes`); :meth:`row` gives one in words."""

    month0: np.ndarray  # each deal's snapshot month, in months since 1970-01
    first: np.ndarray  # offsets (months after month0) of the likely run's first and last month
    last: np.ndarray
    p_quarter: np.ndarray  # P(close in the snapshot's quarter | won)

    def likely(self) -> np.ndarray:
        """"Aug–Sep" (or "Aug" for a one-month run) per deal."""
        names = np.array(_MONTH_NAMES, dtype=object)
        a, b = names[(self.month0 + self.first) % 12], names[(self.month0 + self.last) % 12]
        return np.where(self.first == self.last, a, a + "–" + b)

    def p_this_quarter(self) -> np.ndarray:
        return np.round(np.clip(self.p_quarter, 0.0, 1.0), 4)

    def row(self, i: int) -> dict[str, Any]:
        """The outlook of deal ``i`` in the fields of :class:`~dealscore.scoring.result.CloseOutlook`."""
        m0, q = int(self.month0[i]), float(self.p_quarter[i])
        first, last = int(self.first[i]), int(self.last[i])
        q_first = m0 - m0 % 3
        name = (_MONTH_NAMES[(m0 + first) % 12] if first == last
                else f"{_MONTH_NAMES[(m0 + first) % 12]}–{_MONTH_NAMES[(m0 + last) % 12]}")
        return {
            "likely_months": [_month_label(m0 + k) for k in range(first, last + 1)],
            "likely": name,
            "this_quarter": f"{1970 + q_first // 12}-Q{(q_first % 12) // 3 + 1}",
            "p_this_quarter_if_won": round(min(1.0, max(0.0, q)), 4),
            "text": f"likely to close: {name} ({percent_text(q)} this quarter if won)",
        }


def describe_closes(pmf: np.ndarray, as_of: Any, edges: tuple[float, ...] = BUCKET_EDGES,
                    mass: float = 0.5) -> CloseDescriptions:
    """Deals' close outlooks: the likeliest months and this quarter's share, all deals in one pass.

    The likely months are the shortest run of consecutive months holding at least
    ``mass`` of the close-time distribution (e.g. "Aug–Sep"). Month arithmetic is
    NumPy's (``datetime64[M]``), and every step is an array operation over deals:
    a batch scores every snapshot of a backtest through here.
    """
    p = np.atleast_2d(np.asarray(pmf, dtype=float))
    t = np.atleast_1d(np.asarray(as_of))
    if t.dtype.kind != "M":  # Timestamps or text: through pandas; datetime64 (the scorer's) as it is
        t = np.asarray(pd.DatetimeIndex(t).as_unit("ns").asi8).view("datetime64[ns]")
    t = t.astype("datetime64[ns]", copy=False)
    n = int(np.ceil(edges[-1] / 28)) + 2
    m0 = t.astype("datetime64[M]")
    starts = (m0[:, None] + np.arange(n + 1)[None, :]).astype("datetime64[ns]")
    days = np.clip((starts - t[:, None]).astype(np.int64) / DAY_NS, 0.0, None)
    probs = period_probabilities(p, np.stack([days[:, :-1], days[:, 1:]], axis=2), edges)
    csum = np.concatenate([np.zeros((len(p), 1)), np.cumsum(probs, axis=1)], axis=1)
    first, last = np.zeros(len(p), dtype=np.int64), np.full(len(p), n - 1, dtype=np.int64)
    todo = np.ones(len(p), dtype=bool)
    for length in range(1, n + 1):
        if not todo.any():
            break
        sums = csum[:, length:] - csum[:, :-length]
        hit = todo & (sums.max(axis=1) >= mass - 1e-9)
        i = sums.argmax(axis=1)
        first[hit], last[hit] = i[hit], i[hit] + length - 1
        todo &= ~hit
    month0 = m0.astype(np.int64)
    q_first = month0 - month0 % 3
    months = month0[:, None] + np.arange(n)[None, :]
    in_q = (months >= q_first[:, None]) & (months < q_first[:, None] + 3)
    return CloseDescriptions(month0, first, last, (probs * in_q).sum(axis=1))


def describe_close(pmf: np.ndarray, as_of: np.datetime64 | pd.Timestamp, edges: tuple[float, ...] = BUCKET_EDGES,
                   mass: float = 0.5) -> dict[str, Any]:
    """One deal's close outlook in words and numbers (:func:`describe_closes` on one row)."""
    return describe_closes(np.asarray(pmf)[None, :], [pd.Timestamp(as_of)], edges, mass).row(0)


def _month_label(months_since_epoch: int) -> str:
    return f"{1970 + months_since_epoch // 12}-{months_since_epoch % 12 + 1:02d}"


def month_probabilities(pmf: np.ndarray, as_of: pd.Timestamp, n_months: int,
                        edges: tuple[float, ...] = BUCKET_EDGES) -> tuple[list[Period], np.ndarray]:
    """P(close in each of the next ``n_months`` calendar months | won) for deals all scored at ``as_of``."""
    grid = month_grid(as_of, n_months)
    return grid, period_probabilities(pmf, day_offsets(as_of, grid), edges)


__all__ = [
    "BUCKET_EDGES",
    "PMF_DTYPE",
    "CloseDescriptions",
    "TimeToCloseModel",
    "bucket_of",
    "describe_close",
    "describe_closes",
    "month_probabilities",
    "period_probabilities",
    "pmf_bytes",
    "stage_pmf_baseline",
]
