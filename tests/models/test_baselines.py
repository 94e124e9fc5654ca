"""Baselines: stage table, naive Bayes and logistic regression fitted on the training slice only."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dealscore.models.baselines import LogisticBaseline, NaiveBayesBaseline, StageTableBaseline
from dealscore.models.logistic_fit import SOLVER
from dealscore.training.metrics import safe_auc


def test_stage_table_is_the_smoothed_win_rate_per_declared_stage(synthetic):
    X, y, _ = synthetic["train"]
    table = StageTableBaseline(prior_strength=0.0).fit(X, y)
    expected = pd.Series(y).groupby(X["declared_stage"].astype(object).to_numpy()).mean()
    for stage, rate in expected.items():
        assert abs(table.table_[stage] - rate) < 1e-12
    unseen = X.head(2).copy()
    unseen["declared_stage"] = pd.Categorical([None, None], categories=X["declared_stage"].cat.categories)
    np.testing.assert_allclose(table.predict_proba(unseen), table.overall_rate_)


def test_naive_bayes_bins_numerics_and_tolerates_missing_and_unseen(synthetic):
    X, y, _ = synthetic["train"]
    nb = NaiveBayesBaseline(["declared_stage", "industry", "amount"]).fit(X, y)
    assert "amount" in nb.edges_ and "industry" in nb.vocab_
    test = synthetic["test"][0].copy()
    test.loc[test.index[:5], "amount"] = np.nan
    test.loc[test.index[5:10], "industry"] = "health"  # in the vocabulary, never seen in training
    p = nb.predict_proba(test)
    assert np.all(np.isfinite(p)) and np.all((p > 0) & (p < 1))
    assert safe_auc(synthetic["test"][1], p) > 0.55


def test_logistic_uses_all_features_and_ranks_well(synthetic):
    X, y, _ = synthetic["train"]
    lr = LogisticBaseline().fit(X, y)
    assert set(lr.categories_) == {"declared_stage", "industry"}
    Xt, yt, _ = synthetic["test"]
    p = lr.predict_proba(Xt)
    assert safe_auc(yt, p) > 0.65
    inf = Xt.copy()
    inf.loc[inf.index[0], "amount"] = np.inf
    assert np.isfinite(lr.predict_proba(inf)).all()


def test_logistic_terms_reproduce_scikit_learn_on_the_design_matrix(synthetic):
    """The stored per-feature terms are the fitted regression itself, not an approximation of it."""
    from sklearn.linear_model import LogisticRegression

    X, y, _ = synthetic["train"]
    lr = LogisticBaseline(C=0.5).fit(X, y)
    design, _ = lr._design_fit(lr.matrix(X))  # deterministic: recomputes the same preprocessing
    ref = LogisticRegression(C=0.5, solver=SOLVER, max_iter=500).fit(design, y.astype(int)).decision_function(design)
    np.testing.assert_allclose(lr.predict_raw(X), ref, rtol=1e-6, atol=1e-6)
    Xt = synthetic["test"][0].copy()
    Xt["industry"] = Xt["industry"].cat.set_categories(["tech", "retail", "finance", "health", "new"])
    Xt.loc[Xt.index[:5], "industry"] = "new"
    assert np.isfinite(lr.predict_raw(Xt)).all()  # unknown levels score like missing ones
