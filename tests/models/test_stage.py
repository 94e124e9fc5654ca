"""StageModel: multiclass over the taxonomy's stages, better than trusting the declared stage."""

from __future__ import annotations

import numpy as np
import pytest

from dealscore.errors import DataValidationError
from dealscore.models.stage import StageModel

STAGES = ["prospecting", "qualification", "discovery", "solution", "proposal", "negotiation"]


@pytest.fixture(scope="module")
def fitted(synthetic):
    tr, va = synthetic["train"], synthetic["validation"]
    return StageModel(STAGES, params={"min_data_in_leaf": 20}, num_boost_round=150,
                      early_stopping_rounds=15).fit(tr[0], tr[2], va[0], va[2])


def test_probabilities_follow_taxonomy_order_and_sum_to_one(fitted, synthetic):
    X = synthetic["test"][0]
    proba = fitted.predict_proba(X)
    assert list(proba.columns) == STAGES
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    conf = fitted.confidence(X)
    assert np.all((conf >= 1 / len(STAGES)) & (conf <= 1))


def test_beats_the_declared_stage(fitted, synthetic):
    X, _, real = synthetic["test"]
    model_acc = (fitted.predict(X) == real).mean()
    declared_acc = (X["declared_stage"].astype(object).to_numpy() == real).mean()
    assert model_acc > declared_acc + 0.05


def test_can_ignore_the_declared_stage(synthetic):
    tr, va = synthetic["train"], synthetic["validation"]
    m = StageModel(STAGES, num_boost_round=20, early_stopping_rounds=5, use_declared_stage=False)
    m.fit(tr[0], tr[2], va[0], va[2])
    assert "declared_stage" not in m.feature_names_


def test_absent_stage_still_gets_a_column(synthetic):
    tr, va = synthetic["train"], synthetic["validation"]
    keep = tr[2] != "negotiation"
    m = StageModel(STAGES, num_boost_round=20, early_stopping_rounds=5)
    m.fit(tr[0][keep], tr[2][keep], va[0], va[2])
    proba = m.predict_proba(synthetic["test"][0])
    assert list(proba.columns) == STAGES and proba["negotiation"].max() < 0.5


def test_unknown_stage_labels_are_clear_errors(synthetic):
    tr, va = synthetic["train"], synthetic["validation"]
    bad = tr[2].copy()
    bad[:3] = "closing"
    with pytest.raises(DataValidationError, match="closing"):
        StageModel(STAGES).fit(tr[0], bad, va[0], va[2])



def test_single_stage_history_gives_a_constant_model_and_a_warning(synthetic):
    tr, va = synthetic["train"], synthetic["validation"]
    m = StageModel(STAGES, num_boost_round=20, early_stopping_rounds=5)
    m.fit(tr[0], np.full(len(tr[2]), "proposal", dtype=object), va[0], va[2])
    assert (m.predict(synthetic["test"][0]) == "proposal").all()
    assert "no evidence of stage progress" in m.warnings_[0]
