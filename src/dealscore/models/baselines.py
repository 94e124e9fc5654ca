"""The baselines every evaluation reports beside the win model, fitted on the same split.

- :class:`StageTableBaseline`: the fixed stage-probability table a CRM ships,
  here learned honestly as the training slice's win rate per declared stage.
- :class:`NaiveBayesBaseline`: a frequency model over stage and profile fields
  (categorical naive Bayes with numerics binned), the approach open-source CRMs
  ship for predictive lead scoring.
- :class:`LogisticBaseline`: a regularized logistic regression on exactly the
  model's features (impute + scale + one-hot), the same one the win model may pick.

If the win model cannot beat these, its complexity is not earning its keep.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.naive_bayes import CategoricalNB

from dealscore.models.inputs import select_features
from dealscore.models.linear import LinearLogit, is_categorical

MISSING = "__missing__"


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
            if is_categorical(Xs[c]):
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


class LogisticBaseline(LinearLogit):
    """L2-regularized logistic regression on the model's own features (impute + scale + one-hot).

    The same regression the win model can choose or blend in (:class:`~dealscore.models.linear.LinearLogit`),
    fitted on the training slice alone: as a baseline it answers whether the boosted trees add anything.
    """
