"""Model selection by time-series cross-validation: folds by deal creation, the champion has the lowest CV log loss."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dealscore.errors import ConfigError
from dealscore.training.selection import deal_folds, fit_components, select_win_model
from tests.models.conftest import make_frame

SEARCH = {"base": {"min_data_in_leaf": 40}, "small": {"num_leaves": 4, "min_data_in_leaf": 80}}


@pytest.fixture(scope="module")
def pool():
    frame, won, _ = make_frame(900, seed=11)
    names = [c for c in frame.columns if c not in ("deal_id", "as_of")]
    return frame, won, names


@pytest.fixture(scope="module")
def selection(pool):
    frame, won, names = pool
    return select_win_model(frame, won, frame["deal_id"].to_numpy(), names, search=SEARCH, blends=(0.5,),
                            base_params={"learning_rate": 0.1}, num_boost_round=60, early_stopping_rounds=10)


def test_the_champion_is_never_worse_in_cv_log_loss_than_another_candidate(selection):
    scores = {k: c.cv_log_loss for k, c in selection.candidates.items()}
    assert set(scores) == {"lightgbm:base", "lightgbm:small", "logistic", "blend:0.5"}
    assert all(np.isfinite(v) for v in scores.values())
    assert scores[selection.champion] == min(scores.values())
    margin = selection.margin()
    assert margin["over_runner_up"] >= 0
    assert all(v >= 0 for v in margin["over_best_of_family"].values())
    report = selection.to_dict()
    assert report["champion"] == selection.champion and report["family"] == selection.best.family


def test_folds_follow_deal_creation_and_never_split_a_deal(pool):
    frame, _, _ = pool
    ids = frame["deal_id"].to_numpy()
    fold = deal_folds(ids, 3, 0.5)
    per_deal = pd.Series(fold).groupby(ids).nunique()
    assert (per_deal == 1).all()  # every snapshot of a deal sits in one fold
    first = pd.Series(fold).groupby(ids, sort=False).first().to_numpy()
    assert (np.diff(first) >= 0).all()  # later-created deals never sit in an earlier fold
    assert set(np.unique(fold)) == {-1, 0, 1, 2}
    assert abs((first == -1).mean() - 0.5) < 0.01
    with pytest.raises(ConfigError, match="cv_folds"):
        deal_folds(ids, 1, 0.5)


def test_the_refitted_champion_is_served_with_the_out_of_fold_calibrator(selection, pool):
    frame, won, names = pool
    model = fit_components(selection.best, frame, won, names, base_params={"learning_rate": 0.1}).with_calibrator(
        selection.calibrator)
    assert model.family == selection.best.family
    p = model.predict_proba(frame)
    assert np.all(p >= selection.calibrator.floor_) and np.all(p <= selection.calibrator.ceiling_)
    assert 0 < selection.calibrator.floor_ <= 0.005 and 0.995 <= selection.calibrator.ceiling_ < 1
    np.testing.assert_allclose(model.contributions(frame).sum(axis=1), model.predict_raw(frame), atol=1e-8)
