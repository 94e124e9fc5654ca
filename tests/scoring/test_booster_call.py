"""The direct C call gives exactly what ``Booster.predict`` gives, for each kind of prediction."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dealscore.features import build_feature_block, scoring_snapshots
from dealscore.scoring.booster_call import CONTRIB, NORMAL, RAW_SCORE, _through_wrapper, predict_matrix
from dealscore.scoring.predict import ModelRunner


@pytest.mark.parametrize("which", ["win", "stage"])
@pytest.mark.parametrize("kind", [NORMAL, RAW_SCORE, CONTRIB])
@pytest.mark.parametrize("rows", [0, 1, 7])  # no rows: Booster.predict fails on contributions, we give none
def test_direct_call_equals_booster_predict(trained: Any, which: str, kind: int, rows: int) -> None:
    bundle = trained.bundle
    snaps = scoring_snapshots(trained.history).iloc[:max(rows, 1)].reset_index(drop=True)
    block = build_feature_block(trained.history, snaps, spec=bundle.spec, context=bundle.context)
    runner = ModelRunner(bundle.win_model, bundle.stage_model)
    mw, ms = runner.block_matrices(block)
    mat = (mw if which == "win" else ms)[:rows]
    model = bundle.win_model if which == "win" else bundle.stage_model
    booster = model.booster_
    args = {"kind": kind, "iteration": int(model.best_iteration_), "threads": 1}
    got = predict_matrix(booster, mat, models=int(booster.num_model_per_iteration()), **args)
    if rows:
        assert np.array_equal(got, _through_wrapper(booster, mat, **args))
    else:
        assert got.shape == (0,)
