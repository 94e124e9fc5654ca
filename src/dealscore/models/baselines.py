"""The baselines every evaluation reports beside the win model, fitted on the same split.

- :class:`StageTableBaseline`: the fixed stage-probability table a CRM ships,
  here learned honestly as the training slice's win rate per declared stage.
- :class:`NaiveBayesBaseline`: a frequency model over stage and profile fields
  (categorical naive Bayes with numerics binned), the approach open-source CRMs
  ship for predictive lead scoring.
- :class:`LogisticBaseline`: a regularized logistic regression on exactly the
  model's features (impute + scale + one-hot).

If the win model cannot beat these, its complexity is not earning its keep.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import CategoricalNB
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from dealscore.models.win import ID_COLUMNS, select_features

MISSING = "__missing__"


def _is_categorical(s: pd.Series) -> bool:
    return isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object or pd.api.types.is_string_dtype(s)


def _as_labels(s: pd.Series) -> np.ndarray:
    """Categorical values as plain strings with an explicit missing label."""
    return s.astype(object).where(s.notna(), MISSING).astype(str).to_numpy(dtype=object)


class StageTableBaseline:
    """Historical win rate per declared stage (smoothed towards the overall rate)."""

    def __init__(self, column: str = "declared_stage", prior_strength: float = 10.0) -> None:
        self.column = column
        self.prior_strength = prior_strength

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> StageTableBaseline:
        """Learn the table from the training slice."""
        y = np.asarray(y, dtype=float)
        keys = _as_labels(select_features(X, [self.column], who="stage table")[self.column])
        self.overall_rate_ = float(y.mean())
        frame = pd.DataFrame({"k": keys, "y": y}).groupby("k")["y"].agg(["sum", "count"])
        a = self.prior_strength
        rates = (frame["sum"] + a * self.overall_rate_) / (frame["count"] + a)
        self.table_ = {str(k): float(v) for k, v in rates.items()}
        self.counts_ = {str(k): int(v) for k, v in frame["count"].items()}
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """The table's win rate for each row's declared stage."""
        keys = _as_labels(select_features(X, [self.column], who="stage table")[self.column])
        return np.array([self.table_.get(k, self.overall_rate_) for k in keys], dtype=float)


class NaiveBayesBaseline:
    """Categorical naive Bayes over stage and profile fields; numerics binned by training quantiles."""

    def __init__(self, columns: Sequence[str], n_bins: int = 5, alpha: float = 1.0) -> None:
        self.columns = columns
        self.n_bins = n_bins
        self.alpha = alpha

    def _encode(self, X: pd.DataFrame) -> np.ndarray:
        Xs = select_features(X, self.columns_, who="naive Bayes baseline")
        out = np.zeros((len(Xs), len(self.columns_)), dtype=int)
        for j, c in enumerate(self.columns_):
            if c in self.edges_:
                v = pd.to_numeric(Xs[c], errors="coerce").to_numpy(dtype=float)
                codes = np.digitize(v, self.edges_[c]) + 1
                codes[~np.isfinite(v)] = 0  # missing gets its own bin
                out[:, j] = codes
            else:
                lookup = self.vocab_[c]
                out[:, j] = [lookup.get(k, 0) for k in _as_labels(Xs[c])]  # 0 = unseen or missing
        return out

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> NaiveBayesBaseline:
        """Learn bins, vocabularies and the conditional frequency tables from the training slice."""
        self.columns_ = [c for c in self.columns if c in X.columns]
        Xs = select_features(X, self.columns_, who="naive Bayes baseline")
        self.edges_: dict[str, np.ndarray] = {}
        self.vocab_: dict[str, dict[str, int]] = {}
        for c in self.columns_:
            if _is_categorical(Xs[c]):
                labels = sorted(set(_as_labels(Xs[c])) - {MISSING})
                self.vocab_[c] = {k: i + 1 for i, k in enumerate(labels)}
            else:
                v = pd.to_numeric(Xs[c], errors="coerce").to_numpy(dtype=float)
                v = v[np.isfinite(v)]
                qs = np.linspace(0, 1, self.n_bins + 1)[1:-1]
                self.edges_[c] = np.unique(np.quantile(v, qs)) if len(v) else np.array([])
        n_cats = [len(self.edges_[c]) + 2 if c in self.edges_ else len(self.vocab_[c]) + 1 for c in self.columns_]
        self.model_ = CategoricalNB(alpha=self.alpha, min_categories=n_cats)
        self.model_.fit(self._encode(X), np.asarray(y, dtype=int))
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """P(won) per row."""
        proba = self.model_.predict_proba(self._encode(X))
        return proba[:, list(self.model_.classes_).index(1)]


class LogisticBaseline:
    """L2-regularized logistic regression on the model's own features."""

    def __init__(self, feature_names: Sequence[str] | None = None, C: float = 1.0, max_iter: int = 500) -> None:
        self.feature_names = feature_names
        self.C = C
        self.max_iter = max_iter

    def _prepare(self, X: pd.DataFrame) -> pd.DataFrame:
        Xs = select_features(X, self.feature_names_, who="logistic baseline")
        out = {}
        for c in self.feature_names_:
            if c in self.categorical_:
                out[c] = _as_labels(Xs[c])
            else:
                out[c] = pd.to_numeric(Xs[c], errors="coerce").to_numpy(dtype=float)
        frame = pd.DataFrame(out, index=Xs.index)
        num = [c for c in self.feature_names_ if c not in self.categorical_]
        frame[num] = frame[num].replace([np.inf, -np.inf], np.nan)
        return frame

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> LogisticBaseline:
        """Fit the imputer, scaler, encoder and regression on the training slice."""
        names = self.feature_names or [c for c in X.columns if c not in ID_COLUMNS]
        self.feature_names_ = list(names)
        self.categorical_ = [c for c in self.feature_names_ if _is_categorical(X[c])]
        numeric = [c for c in self.feature_names_ if c not in self.categorical_]
        prep = ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                                  StandardScaler()), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore", min_frequency=5), self.categorical_),
        ])
        self.model_ = Pipeline([("prep", prep), ("lr", LogisticRegression(C=self.C, max_iter=self.max_iter))])
        self.model_.fit(self._prepare(X), np.asarray(y, dtype=int))
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """P(won) per row."""
        return self.model_.predict_proba(self._prepare(X))[:, 1]
