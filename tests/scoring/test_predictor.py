"""The predictor a scorer chooses once: the matrix path if it gives the models' own numbers, else the reference."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dealscore.features import build_feature_block, scoring_snapshots
from dealscore.scoring.predict import ModelRunner
from dealscore.scoring.predictor import FramePredictor, MatrixPredictor, choose_predictor


def _block(trained: Any, small_history: Any, rows: int | None = None) -> Any:
    b = trained.bundle
    snaps = scoring_snapshots(small_history)
    snaps = snaps if rows is None else snaps.iloc[:rows].reset_index(drop=True)
    return build_feature_block(small_history, snaps, spec=b.spec, context=b.context)


@pytest.mark.parametrize("rows", [1, 30])
def test_both_predictors_give_the_same_numbers(trained: Any, small_history: Any, rows: int) -> None:
    b = trained.bundle
    block, order = _block(trained, small_history, rows), list(b.taxonomy.names)
    runner = ModelRunner(b.win_model, b.stage_model)
    matrix, chosen = choose_predictor(runner, b.win_model.feature_names_, block, order)
    assert isinstance(matrix, MatrixPredictor)
    frame = FramePredictor(b.win_model, b.stage_model)
    ref = frame.prepare(block)
    # two blocks in one win-model call: the second as what-if copies of the first's rows
    copies = matrix.prepare(block, copies_of=(chosen.codes, list(range(rows))))
    np.testing.assert_allclose(matrix.win_raw([chosen, copies]), frame.win_raw([ref, ref]), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(matrix.stage_proba(chosen, order), frame.stage_proba(ref, order), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(matrix.contributions(chosen), frame.contributions(ref), rtol=1e-9, atol=1e-9)
    for name in ("amount", "days_since_last_touch", "n_contacts"):
        np.testing.assert_allclose(matrix.columns(chosen).num(name), frame.columns(ref).num(name), equal_nan=True)
    assert list(matrix.columns(chosen).text("declared_stage")) == list(frame.columns(ref).text("declared_stage"))


def test_a_matrix_path_that_disagrees_is_replaced_by_the_reference(trained: Any, small_history: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    b = trained.bundle
    runner = ModelRunner(b.win_model, b.stage_model)
    real = runner.block_matrices
    monkeypatch.setattr(runner, "block_matrices", lambda block, codes=None: tuple(m + 1.0 for m in real(block, codes)))
    with pytest.warns(RuntimeWarning, match="disagrees"):
        block = _block(trained, small_history, 10)
        chosen, inp = choose_predictor(runner, b.win_model.feature_names_, block, b.taxonomy.names)
    assert isinstance(chosen, FramePredictor)
    assert len(chosen.win_raw([inp])) == 10


def test_inputs_of_the_other_predictor_are_refused(trained: Any, small_history: Any) -> None:
    b = trained.bundle
    block = _block(trained, small_history, 3)
    frame_inputs = FramePredictor(b.win_model, b.stage_model).prepare(block)
    with pytest.raises(ValueError, match="frame predictor"):
        MatrixPredictor(ModelRunner(b.win_model, b.stage_model), b.win_model.feature_names_).win_raw([frame_inputs])
