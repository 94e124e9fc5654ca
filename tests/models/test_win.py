"""WinModel: calibrated LightGBM on time slices, contributions, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from dealscore.errors import DataValidationError, InsufficientDataError
from dealscore.models.baselines import StageTableBaseline
from dealscore.models.win import WinModel
from dealscore.training.metrics import binary_metrics

FAST = {"num_boost_round": 200, "early_stopping_rounds": 20}


@pytest.fixture(scope="module")
def fitted(synthetic):
    tr, va, ca = synthetic["train"], synthetic["validation"], synthetic["calibration"]
    return WinModel(params={"min_data_in_leaf": 20}, **FAST).fit(tr[0], tr[1], va[0], va[1], ca[0], ca[1])


def test_probabilities_are_calibrated_and_beat_the_stage_table(fitted, synthetic):
    X, y, _ = synthetic["test"]
    p = fitted.predict_proba(X)
    assert p.shape == (len(X),) and np.all((p > 0) & (p < 1))
    model = binary_metrics(y, p)
    table = binary_metrics(y, StageTableBaseline().fit(synthetic["train"][0], synthetic["train"][1]).predict_proba(X))
    assert model["roc_auc"] > table["roc_auc"] + 0.03
    assert model["log_loss"] < table["log_loss"]
    assert model["ece"] < 0.06
    assert fitted.calibration_method_ in ("isotonic", "platt", "beta")
    assert set(fitted.calibrator_.selection_) == {"isotonic", "platt", "beta"}
    assert fitted.family == "lightgbm" and fitted.linear is None


def test_feature_names_exclude_snapshot_ids(fitted):
    assert "deal_id" not in fitted.feature_names_ and "as_of" not in fitted.feature_names_
    assert fitted.feature_names_[0] == "declared_stage"


def test_contributions_sum_to_raw_log_odds(fitted, synthetic):
    X = synthetic["test"][0].head(50)
    contrib = fitted.contributions(X)
    assert contrib.shape == (50, len(fitted.feature_names_) + 1)
    np.testing.assert_allclose(contrib.sum(axis=1), fitted.predict_raw(X), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fitted.calibrate(fitted.predict_raw(X)), fitted.predict_proba(X))


def test_early_stopping_uses_the_validation_slice(fitted):
    assert 1 <= fitted.best_iteration_ <= FAST["num_boost_round"]
    assert "validation" in fitted.evals_result_


def test_column_order_does_not_matter_but_missing_columns_are_named(fitted, synthetic):
    X = synthetic["test"][0].head(20)
    shuffled = X[list(reversed(X.columns))]
    np.testing.assert_allclose(fitted.predict_proba(shuffled), fitted.predict_proba(X))
    with pytest.raises(DataValidationError, match="has_demo"):
        fitted.predict_proba(X.drop(columns=["has_demo"]))


def test_one_class_training_slice_is_a_clear_error(synthetic):
    tr, va, ca = synthetic["train"], synthetic["validation"], synthetic["calibration"]
    with pytest.raises(InsufficientDataError, match="every closed deal in it was lost"):
        WinModel(**FAST).fit(tr[0], np.zeros(len(tr[1])), va[0], va[1], ca[0], ca[1])


@pytest.mark.parametrize("weight", [0.0, 0.5])
def test_blend_and_logistic_families_serve_raw_scores_and_contributions_alike(synthetic, weight):
    """A blend (or the logistic regression alone) is one raw score, with contributions summing to it."""
    tr, te = synthetic["train"], synthetic["test"]
    model = WinModel(params={"min_data_in_leaf": 20}, num_boost_round=40, blend_weight=weight).fit_components(
        tr[0], tr[1])
    X = te[0]
    raw = model.predict_raw(X)
    lin = model.linear.predict_raw(X)
    if weight == 0:
        assert model.family == "logistic" and model.booster_ is None
        np.testing.assert_allclose(raw, lin)
    else:
        assert model.family == "blend"
        boost = model.booster_.predict(X[model.feature_names_], num_iteration=40, raw_score=True)
        np.testing.assert_allclose(raw, 0.5 * boost + 0.5 * lin)
    np.testing.assert_allclose(model.contributions(X).sum(axis=1), raw, atol=1e-9)
    assert model.feature_importance().index[0] in model.feature_names_
