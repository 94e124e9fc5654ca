"""A logistic regression written down as one additive term per feature, so it scores a float matrix directly.

The win model may be (or blend in) a logistic regression, and the scorer must then
score one deal as fast as with a booster alone and explain it the same way. A
scikit-learn pipeline (imputer, scaler, one-hot encoder, regression) spends
milliseconds validating a one-row frame; the fitted regression, however, is just

    log-odds = intercept + Σ_numeric slope_c · x_c (median when missing, plus a missing term)
                         + Σ_categorical coefficient_c[category]

so :class:`LinearLogit` keeps exactly those numbers. It reads the same float
matrix the scorer builds for LightGBM (numerics as floats, categoricals as codes
of the training frame's categories, unknown or missing as NaN), and its
contributions are each feature's term minus that term's training mean (the bias
takes the rest), so they sum to the raw score like TreeSHAP's do.

Preprocessing (chosen to match what a careful analyst does and what the baseline
always did): numerics median-imputed with a missing indicator and standardised;
categoricals one-hot with levels seen fewer than ``min_frequency`` times pooled,
and missing/unknown values their own (all-zero) level; L2 penalty ``C``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from dealscore.models.inputs import ID_COLUMNS, select_features
from dealscore.models.logistic_fit import logistic_regression


def is_categorical(s: pd.Series) -> bool:
    """Whether a feature column is categorical (pandas category, object or string dtype)."""
    return isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object or pd.api.types.is_string_dtype(s)


class LinearLogit:
    """L2-regularised logistic regression stored as per-feature additive terms (see module docstring)."""

    def __init__(self, feature_names: Sequence[str] | None = None, C: float = 1.0, max_iter: int = 500,
                 min_frequency: int = 5) -> None:
        self.feature_names = feature_names
        self.C = C
        self.max_iter = max_iter
        self.min_frequency = min_frequency

    # ------------------------------------------------------------------ frame -> matrix

    def matrix(self, X: pd.DataFrame) -> np.ndarray:
        """The float matrix the model reads: numerics as floats, categoricals as codes of ``categories_``."""
        Xs = select_features(X, self.feature_names_, who="linear model")
        out = np.empty((len(Xs), len(self.feature_names_)), dtype=np.float64)
        for j, c in enumerate(self.feature_names_):
            col = Xs[c]
            cats = self.categories_.get(c)
            if cats is None:
                out[:, j] = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            elif isinstance(col.dtype, pd.CategoricalDtype) and list(col.cat.categories) == cats:
                codes = col.cat.codes.to_numpy().astype(np.float64)
                codes[codes < 0] = np.nan
                out[:, j] = codes
            else:
                where = {v: float(i) for i, v in enumerate(cats)}
                out[:, j] = [where.get(v, np.nan) for v in col.astype(object).to_numpy()]
        return out

    # ------------------------------------------------------------------ fit

    def fit(self, X: pd.DataFrame, y: np.ndarray, sample_weight: np.ndarray | None = None) -> LinearLogit:
        """Learn the preprocessing and the regression, then store them as per-feature terms."""
        names = self.feature_names or [c for c in X.columns if c not in ID_COLUMNS]
        self.feature_names_ = list(names)
        Xs = select_features(X, self.feature_names_, who="linear model")
        self.categories_: dict[str, list[Any]] = {}
        for c in self.feature_names_:
            if is_categorical(Xs[c]):
                col = Xs[c]
                self.categories_[c] = (list(col.cat.categories) if isinstance(col.dtype, pd.CategoricalDtype)
                                       else sorted({v for v in col.dropna().astype(object)}, key=str))
        M = self.matrix(X)
        design, layout = self._design_fit(M)
        lr = logistic_regression(self.C, self.max_iter)
        lr.fit(design, np.asarray(y, dtype=int), sample_weight=sample_weight)
        self._store(lr.coef_.ravel(), float(lr.intercept_[0]), layout)
        terms = self._terms(M)
        self.term_mean_ = terms.mean(axis=0) if len(M) else np.zeros(len(self.feature_names_))
        self.term_std_ = terms.std(axis=0) if len(M) else np.zeros(len(self.feature_names_))
        return self

    def _design_fit(self, M: np.ndarray) -> tuple[np.ndarray, list[tuple[str, int, Any]]]:
        """Design matrix (standardised numerics + missing flags, one-hot levels) and what each column means."""
        cols: list[np.ndarray] = []
        layout: list[tuple[str, int, Any]] = []
        self.median_ = np.zeros(M.shape[1])
        self.center_ = np.zeros(M.shape[1])
        self.scale_ = np.ones(M.shape[1])
        self.missing_center_ = np.zeros(M.shape[1])
        self.missing_scale_ = np.ones(M.shape[1])
        self.rare_: dict[int, np.ndarray] = {}
        for j, c in enumerate(self.feature_names_):
            v = M[:, j]
            miss = ~np.isfinite(v)
            if c in self.categories_:
                codes = np.where(miss, -1, v).astype(np.int64)
                counts = np.bincount(codes[codes >= 0], minlength=len(self.categories_[c]))
                frequent = np.flatnonzero(counts >= self.min_frequency)
                for k in frequent:
                    cols.append((codes == k).astype(float))
                    layout.append(("level", j, int(k)))
                rare = (counts > 0) & (counts < self.min_frequency)
                self.rare_[j] = rare
                if rare.any():
                    cols.append(rare[np.maximum(codes, 0)] & (codes >= 0))
                    layout.append(("rare", j, None))
                continue
            med = float(np.median(v[~miss])) if (~miss).any() else 0.0
            filled = np.where(miss, med, v)
            mu, sd = float(filled.mean()), float(filled.std())
            self.median_[j], self.center_[j], self.scale_[j] = med, mu, sd if sd > 0 else 1.0
            cols.append((filled - mu) / self.scale_[j])
            layout.append(("value", j, None))
            if miss.any():
                m = miss.astype(float)
                mm, ms = float(m.mean()), float(m.std())
                self.missing_center_[j], self.missing_scale_[j] = mm, ms if ms > 0 else 1.0
                cols.append((m - mm) / self.missing_scale_[j])
                layout.append(("missing", j, None))
        design = np.column_stack(cols).astype(float) if cols else np.zeros((len(M), 0))
        return design, layout

    def _store(self, coef: np.ndarray, intercept: float, layout: list[tuple[str, int, Any]]) -> None:
        """Fold the regression into per-feature terms: slopes, missing terms and level tables."""
        n = len(self.feature_names_)
        self.slope_ = np.zeros(n)  # per raw unit of a numeric feature
        self.missing_term_ = np.zeros(n)  # added when a numeric value is missing (besides the median's term)
        self.present_term_ = np.zeros(n)  # added when present (the centred missing flag's other side)
        # categorical column -> coefficient per code; the extra last slot is NaN (missing or unknown: zero)
        self.levels_: dict[int, np.ndarray] = {
            j: np.zeros(len(self.categories_[c]) + 1) for j, c in enumerate(self.feature_names_)
            if c in self.categories_}
        offset = intercept
        for w, (kind, j, k) in zip(coef, layout, strict=True):
            if kind == "value":
                self.slope_[j] = w / self.scale_[j]
                offset -= w * self.center_[j] / self.scale_[j]
            elif kind == "missing":
                self.missing_term_[j] = w * (1 - self.missing_center_[j]) / self.missing_scale_[j]
                self.present_term_[j] = w * (0 - self.missing_center_[j]) / self.missing_scale_[j]
            elif kind == "level":
                self.levels_[j][k] = w
            else:  # levels seen fewer than min_frequency times share one coefficient
                self.levels_[j][:-1][self.rare_[j]] = w
        self.intercept_ = float(offset)

    # ------------------------------------------------------------------ predict

    def _terms(self, M: np.ndarray) -> np.ndarray:
        """Each feature's additive term per row, shape (n, n_features): numerics in one vectorised step,
        then one table lookup per categorical column (a one-deal score calls this on a few rows)."""
        miss = ~np.isfinite(M)
        out = self.slope_ * np.where(miss, self.median_, M) + np.where(miss, self.missing_term_, self.present_term_)
        for j, table in self.levels_.items():
            out[:, j] = table[np.where(miss[:, j], -1, M[:, j]).astype(np.int64)]
        return out

    def raw_matrix(self, M: np.ndarray) -> np.ndarray:
        """Log-odds for rows of :meth:`matrix` form."""
        return self._terms(M).sum(axis=1) + self.intercept_

    def contributions_matrix(self, M: np.ndarray) -> np.ndarray:
        """Per-feature log-odds contributions (term minus its training mean) and the bias last."""
        terms = self._terms(M) - self.term_mean_
        bias = np.full((len(M), 1), self.intercept_ + float(self.term_mean_.sum()))
        return np.hstack([terms, bias])

    def predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        """Log-odds per row of a feature frame."""
        return self.raw_matrix(self.matrix(X))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """P(won) per row of a feature frame."""
        return 1.0 / (1.0 + np.exp(-self.predict_raw(X)))
