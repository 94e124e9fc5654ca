"""The two predictors: boosters on block matrices (the latency path) against the models' own frame methods."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dealscore.features import build_feature_block, scoring_snapshots
from dealscore.scoring.predict import CategoryCodes, FramePredictor, MatrixPredictor


def _block(trained: Any, rows: int | None = None) -> Any:
    b = trained.bundle
    snaps = scoring_snapshots(trained.history)
    snaps = snaps if rows is None else snaps.iloc[:rows].reset_index(drop=True)
    return build_feature_block(trained.history, snaps, spec=b.spec, context=b.context)


@pytest.fixture(scope="module")
def block(trained: Any) -> Any:
    return _block(trained)


@pytest.mark.parametrize("rows", [1, 7, None])
def test_the_matrix_path_gives_the_models_own_numbers(trained: Any, rows: int | None) -> None:
    b = trained.bundle
    part = _block(trained, rows)
    fast, ref = MatrixPredictor(b.win_model, b.stage_model), FramePredictor(b.win_model, b.stage_model)
    got, want = fast.inputs(part, CategoryCodes(part)), ref.inputs(part, CategoryCodes(part))
    np.testing.assert_allclose(fast.win_raw(got), ref.win_raw(want), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(fast.win_raw(got, got), ref.win_raw(want, want), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(fast.contributions(got), ref.contributions(want), rtol=1e-9, atol=1e-9)
    order = list(reversed(b.taxonomy.names))  # columns come in the order asked for, not the model's
    np.testing.assert_allclose(fast.stage_proba(got, order), ref.stage_proba(want, order), rtol=1e-9, atol=1e-9)
    for name in ("declared_stage", "amount", "days_in_stage"):
        fc, rc = fast.columns(got), ref.columns(want)
        if name == "declared_stage":
            assert list(fc.text(name)) == list(rc.text(name))
        else:
            np.testing.assert_allclose(fc.num(name), rc.num(name), equal_nan=True)


def test_the_matrix_path_threads_by_block_size(trained: Any, block: Any) -> None:
    b = trained.bundle
    one = MatrixPredictor(b.win_model, b.stage_model, threads=1)
    auto = MatrixPredictor(b.win_model, b.stage_model)
    inp = one.inputs(block, CategoryCodes(block))
    assert np.array_equal(one.win_raw(inp), auto.win_raw(inp))
