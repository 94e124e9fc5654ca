"""Every logistic regression is fitted to its optimum, closer than scikit-learn's default solver gets."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from dealscore.models.logistic_fit import logistic_regression


def _objective(model: LogisticRegression, X: np.ndarray, y: np.ndarray, C: float) -> float:
    """scikit-learn's penalised objective: C * sum of log losses + |w|^2 / 2 (intercept unpenalised)."""
    p = np.clip(model.predict_proba(X)[:, 1], 1e-15, 1 - 1e-15)
    return float(-C * (y * np.log(p) + (1 - y) * np.log1p(-p)).sum() + 0.5 * (model.coef_ ** 2).sum())


def test_fit_reaches_the_penalised_optimum_on_many_rows_and_few_columns() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 12)) * rng.uniform(0.1, 10, 12)  # unscaled columns slow first-order solvers
    y = (rng.random(20_000) < 1 / (1 + np.exp(-(X @ rng.normal(0, 0.2, 12))))).astype(int)
    C = 0.5
    ours = logistic_regression(C).fit(X, y)
    p = ours.predict_proba(X)[:, 1]
    grad = np.r_[C * X.T @ (p - y) + ours.coef_.ravel(), C * (p - y).sum()]
    assert np.abs(grad).max() / (C * len(y)) < 2e-5  # stationary: the mean per-row gradient is ~0
    default = LogisticRegression(C=C).fit(X, y)
    assert _objective(ours, X, y, C) <= _objective(default, X, y, C) + 1e-9
