"""Probability calibration of raw log-odds: Platt, beta or isotonic, chosen on later held-out data.

Boosted trees rank deals well but their raw probabilities drift (early stopping,
shrinkage, imbalance, a win rate that moves over time). A calibrator fitted on
scores the model produced for deals it did *not* learn from maps raw scores to
probabilities that mean what they say.

Two ways to fit one:

- :meth:`Calibrator.fit` on one time-ordered slice (``auto`` compares the methods
  on the later half of the slice, then refits the winner on all of it);
- :func:`select_calibrator` on the out-of-fold scores of several time folds (what
  training uses): every variant (method x equal or recency weights) is fitted on
  the earlier folds and scored by log loss on the next one (forward chaining, so
  a drifting win rate is judged as it will be met: on later deals), and the
  winner is refitted on all folds. Isotonic is flexible but needs data; Platt (two
  parameters) and beta (three) cannot overfit a small slice; recency weights let
  the calibration follow a moving win rate.

No probability is exactly 0 or 1: :func:`probability_bounds` states the rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import log_loss

from dealscore.errors import ConfigError
from dealscore.models.logistic_fit import logistic_regression

METHODS = ("isotonic", "platt", "beta")
#: Default bounds of a calibrated probability: no open deal is called less than 0.5 % or more than 99.5 %
#: likely to be won unless held-out deals show that (see :func:`probability_bounds`).
LIMIT = 0.005
#: Weight of each older fold relative to the next one in the ``recent`` variants.
RECENCY_DECAY = 0.5
_MIN_ROWS = 20


def _beta_features(raw: np.ndarray) -> np.ndarray:
    """``[ln p, -ln(1 - p)]`` of ``p = sigmoid(raw)``, computed stably (beta calibration's inputs)."""
    with np.errstate(invalid="ignore"):  # NaN scores stay NaN and scikit-learn then names the problem
        return np.column_stack([-np.logaddexp(0.0, -raw), np.logaddexp(0.0, raw)])


class Calibrator:
    """Maps raw log-odds to calibrated probabilities within ``[floor_, ceiling_]``.

    ``method`` is ``"isotonic"``, ``"platt"``, ``"beta"`` or ``"auto"`` (choose by a
    time-ordered hold-out inside the slice, see module docstring). Rows passed to
    :meth:`fit` must be in time order for ``auto`` to be honest.
    """

    def __init__(self, method: str = "auto", holdout_fraction: float = 0.5) -> None:
        self.method = method
        self.holdout_fraction = holdout_fraction

    @staticmethod
    def _fit_one(method: str, raw: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> Any:
        if method == "isotonic":
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            return iso.fit(raw, y, sample_weight=weight)
        if method == "platt":
            return logistic_regression(1e6).fit(raw.reshape(-1, 1), y, sample_weight=weight)
        if method == "beta":
            return logistic_regression(1e6).fit(_beta_features(raw), y, sample_weight=weight)
        raise ConfigError(f"unknown calibration method {method!r}; use one of {[*METHODS, 'auto']}")

    @staticmethod
    def _apply(method: str, model: Any, raw: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
        p = _direct(method, model, raw)
        if p is None:
            if method == "isotonic":
                p = model.predict(raw)
            else:
                p = model.predict_proba(raw.reshape(-1, 1) if method == "platt" else _beta_features(raw))[:, 1]
        return np.clip(np.asarray(p, dtype=float), bounds[0], bounds[1])

    def fit(self, raw: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> Calibrator:
        """Fit on raw log-odds ``raw`` and 0/1 outcomes ``y`` (time-ordered rows)."""
        raw = np.asarray(raw, dtype=float)
        y = np.asarray(y, dtype=float)
        self.selection_: dict[str, float] = {}
        self.floor_, self.ceiling_ = LIMIT, 1 - LIMIT
        if self.method == "auto":
            k = int(len(raw) * (1 - self.holdout_fraction))
            fit_y, hold_y = y[:k], y[k:]
            if min(len(fit_y), len(hold_y)) < _MIN_ROWS or len(np.unique(fit_y)) < 2 or len(np.unique(hold_y)) < 2:
                chosen = "platt"  # too little to compare: the rigid one is the safe choice
            else:
                for m in METHODS:
                    model = self._fit_one(m, raw[:k], fit_y)
                    p = self._apply(m, model, raw[k:], (self.floor_, self.ceiling_))
                    self.selection_[m] = float(log_loss(hold_y, p, labels=[0, 1]))
                chosen = min(self.selection_, key=self.selection_.__getitem__)
        else:
            chosen = self.method
        self.method_ = chosen
        self.model_ = self._fit_one(chosen, raw, y, sample_weight)
        return self

    def with_bounds(self, floor: float, ceiling: float) -> Calibrator:
        """Set the probability bounds (see :func:`probability_bounds`); returns self."""
        if not 0 < floor < ceiling < 1:
            raise ConfigError(f"calibration bounds must satisfy 0 < floor < ceiling < 1; got {floor}, {ceiling}")
        self.floor_, self.ceiling_ = float(floor), float(ceiling)
        return self

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for raw log-odds."""
        bounds = (getattr(self, "floor_", 1e-4), getattr(self, "ceiling_", 1 - 1e-4))
        return self._apply(self.method_, self.model_, np.asarray(raw, dtype=float), bounds)


def _direct(method: str, model: Any, raw: np.ndarray) -> np.ndarray | None:
    """The fitted calibrator's own arithmetic on finite float64 scores, without scikit-learn's input checks.

    Scoring one deal calibrates a handful of numbers, and ``predict_proba`` /
    ``predict`` spend far longer validating them (array-API dispatch, finiteness,
    feature-count checks) than computing: about 0.2 ms against a microsecond.
    These are the same operations in the same order as scikit-learn's
    ``LogisticRegression.predict_proba`` (binary: ``expit(X @ coef_.T + intercept_)``)
    and ``IsotonicRegression.predict`` (clip to the fitted range, then its ``f_``
    interpolator), so the probabilities are bit for bit the same (tested).
    Anything unusual (NaN or infinite scores, a model lacking the attributes)
    returns None and takes scikit-learn's path, with its errors.
    """
    if raw.dtype != np.float64 or raw.ndim != 1 or not np.isfinite(raw).all():
        return None
    if method in ("platt", "beta"):
        width = 1 if method == "platt" else 2
        coef, intercept = getattr(model, "coef_", None), getattr(model, "intercept_", None)
        if (coef is None or intercept is None or np.shape(coef) != (1, width)
                or len(getattr(model, "classes_", ())) != 2):
            return None
        X = raw.reshape(-1, 1) if method == "platt" else _beta_features(raw)
        scores = (X @ coef.T + intercept).reshape(-1)
        return expit(scores, out=scores)
    if method == "isotonic":
        f, lo, hi = getattr(model, "f_", None), getattr(model, "X_min_", None), getattr(model, "X_max_", None)
        if f is None or lo is None or hi is None or getattr(model, "out_of_bounds", None) != "clip" or (
                getattr(getattr(model, "X_thresholds_", None), "dtype", np.float64) != np.float64):
            return None
        return np.asarray(f(np.clip(raw, lo, hi)), dtype=np.float64)
    return None


# --------------------------------------------------------------------------- out-of-fold selection


def _fold_weights(folds: np.ndarray, upto: int, recent: bool) -> np.ndarray | None:
    """Per-row weights for rows of folds ``< upto``: equal, or halving with each fold of age."""
    if not recent:
        return None
    return RECENCY_DECAY ** (upto - 1 - folds).astype(float)


def _usable(y: np.ndarray) -> bool:
    return len(y) >= _MIN_ROWS and len(np.unique(y)) == 2


def select_calibrator(raw: np.ndarray, y: np.ndarray, fold: np.ndarray, deal_ids: np.ndarray,
                      methods: Sequence[str] = METHODS) -> Calibrator:
    """The calibrator variant with the lowest forward-chained log loss over time folds, refitted on all of them.

    ``raw`` are out-of-fold raw scores, ``fold`` the time fold of each row (0 =
    oldest), ``deal_ids`` the deal of each row (for :func:`probability_bounds`).
    Variants are ``method`` or ``method+recent`` (older folds weigh
    :data:`RECENCY_DECAY` times the next). ``selection_`` holds each variant's mean
    log loss over the evaluated folds; with too little data to compare, Platt on
    equal weights is chosen (the rigid one is the safe choice).
    """
    raw, y, fold = np.asarray(raw, dtype=float), np.asarray(y, dtype=float), np.asarray(fold, dtype=int)
    variants = [(m, r) for m in methods for r in (False, True)]
    losses: dict[str, list[float]] = {}
    for k in range(1, int(fold.max()) + 1 if len(fold) else 0):
        past, now = fold < k, fold == k
        if not (_usable(y[past]) and _usable(y[now])):
            continue
        for m, recent in variants:
            model = Calibrator._fit_one(m, raw[past], y[past], _fold_weights(fold[past], k, recent))
            p = Calibrator._apply(m, model, raw[now], (LIMIT, 1 - LIMIT))
            losses.setdefault(_name(m, recent), []).append(float(log_loss(y[now], p, labels=[0, 1])))
    selection = {k: float(np.mean(v)) for k, v in losses.items()}
    best = min(selection, key=selection.__getitem__) if selection else "platt"
    method, recent = best.split("+")[0], best.endswith("+recent")
    cal = Calibrator(method)
    cal.fit(raw, y, _fold_weights(fold, int(fold.max()) + 1, recent) if len(fold) else None)
    cal.selection_ = selection
    cal.variant_ = best
    unbounded = Calibrator._apply(cal.method_, cal.model_, raw, (0.0, 1.0))
    floor, ceiling, support = probability_bounds(unbounded, y, deal_ids)
    cal.with_bounds(floor, ceiling)
    cal.bounds_support_ = support
    return cal


def _name(method: str, recent: bool) -> str:
    return f"{method}+recent" if recent else method


def probability_bounds(p: np.ndarray, y: np.ndarray, deal_ids: np.ndarray, limit: float = LIMIT
                       ) -> tuple[float, float, dict[str, int]]:
    """The rule for how close to 0 or 1 a probability may get: ``[floor, ceiling]`` from held-out deals.

    By default no deal is scored below ``limit`` (0.5 %) or above ``1 - limit``.
    Lower only as far as held-out evidence supports: among the held-out deals
    whose (out-of-fold, calibrated) score fell below ``limit``, counted as
    *deals* (snapshots of one deal are not independent evidence), the floor is
    their add-half win rate ``(won + 0.5) / (deals + 1)`` when that is below
    ``limit``. The ceiling mirrors it with lost deals above ``1 - limit``. With no
    such deals the bounds stay at ``limit``.
    """
    p, y = np.asarray(p, dtype=float), np.asarray(y, dtype=float)
    ids = np.asarray(deal_ids, dtype=object)

    def rate(mask: np.ndarray, event: float) -> tuple[float, int, int]:
        deals = {d: v for d, v in zip(ids[mask], y[mask], strict=True)}
        n = len(deals)
        k = sum(1 for v in deals.values() if v == event)
        return (k + 0.5) / (n + 1), n, k

    lo, n_lo, won_lo = rate(p < limit, 1.0)
    hi, n_hi, lost_hi = rate(p > 1 - limit, 0.0)
    support = {"deals_below": n_lo, "won_below": won_lo, "deals_above": n_hi, "lost_above": lost_hi}
    return min(limit, lo), 1 - min(limit, hi), support
