"""Probability calibration of raw log-odds: isotonic or Platt, chosen on held-out data.

Boosted trees rank deals well but their raw probabilities drift (early stopping,
shrinkage, imbalance). A calibrator fitted on a *later* time slice than the
booster saw maps raw scores to probabilities that mean what they say. Which
calibrator to use is itself decided on data: both are fitted on the earlier
part of the calibration slice and compared by log loss on its later part, then
the winner is refitted on the whole slice. Isotonic is flexible but needs data;
Platt is a two-parameter logistic that cannot overfit a small slice.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from dealscore.errors import ConfigError

METHODS = ("isotonic", "platt")
_EPS = 1e-4


class Calibrator:
    """Maps raw log-odds to calibrated probabilities.

    ``method`` is ``"isotonic"``, ``"platt"`` or ``"auto"`` (choose by a
    time-ordered hold-out inside the calibration slice, see module docstring).
    Rows passed to :meth:`fit` must be in time order for ``auto`` to be honest.
    """

    def __init__(self, method: str = "auto", holdout_fraction: float = 0.5) -> None:
        self.method = method
        self.holdout_fraction = holdout_fraction

    @staticmethod
    def _fit_one(method: str, raw: np.ndarray, y: np.ndarray) -> Any:
        if method == "isotonic":
            iso = IsotonicRegression(y_min=_EPS, y_max=1 - _EPS, out_of_bounds="clip")
            return iso.fit(raw, y)
        if method == "platt":
            return LogisticRegression(C=1e6, max_iter=1000).fit(raw.reshape(-1, 1), y)
        raise ConfigError(f"unknown calibration method {method!r}; use one of {[*METHODS, 'auto']}")

    @staticmethod
    def _apply(method: str, model: Any, raw: np.ndarray) -> np.ndarray:
        p = _direct(method, model, raw)
        if p is None:
            p = model.predict(raw) if method == "isotonic" else model.predict_proba(raw.reshape(-1, 1))[:, 1]
        return np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)

    def fit(self, raw: np.ndarray, y: np.ndarray) -> Calibrator:
        """Fit on raw log-odds ``raw`` and 0/1 outcomes ``y`` (time-ordered rows)."""
        raw = np.asarray(raw, dtype=float)
        y = np.asarray(y, dtype=float)
        self.selection_: dict[str, float] = {}
        if self.method == "auto":
            k = int(len(raw) * (1 - self.holdout_fraction))
            fit_y, hold_y = y[:k], y[k:]
            if min(len(fit_y), len(hold_y)) < 20 or len(np.unique(fit_y)) < 2 or len(np.unique(hold_y)) < 2:
                chosen = "platt"  # too little to compare: the rigid one is the safe choice
            else:
                for m in METHODS:
                    model = self._fit_one(m, raw[:k], fit_y)
                    self.selection_[m] = float(log_loss(hold_y, self._apply(m, model, raw[k:]), labels=[0, 1]))
                chosen = min(self.selection_, key=self.selection_.__getitem__)
        else:
            chosen = self.method
        self.method_ = chosen
        self.model_ = self._fit_one(chosen, raw, y)
        return self

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for raw log-odds."""
        return self._apply(self.method_, self.model_, np.asarray(raw, dtype=float))


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
    if method == "platt":
        coef, intercept = getattr(model, "coef_", None), getattr(model, "intercept_", None)
        if coef is None or intercept is None or np.shape(coef) != (1, 1) or len(getattr(model, "classes_", ())) != 2:
            return None
        scores = (raw.reshape(-1, 1) @ coef.T + intercept).reshape(-1)
        return expit(scores, out=scores)
    if method == "isotonic":
        f, lo, hi = getattr(model, "f_", None), getattr(model, "X_min_", None), getattr(model, "X_max_", None)
        if f is None or lo is None or hi is None or getattr(model, "out_of_bounds", None) != "clip" or (
                getattr(getattr(model, "X_thresholds_", None), "dtype", np.float64) != np.float64):
            return None
        return np.asarray(f(np.clip(raw, lo, hi)), dtype=np.float64)
    return None
