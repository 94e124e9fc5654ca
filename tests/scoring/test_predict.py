"""The latency path (boosters on float matrices built from a feature block) against the models' own frame methods."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dealscore.features import build_feature_block, scoring_snapshots
from dealscore.scoring.predict import ModelRunner


def _block(trained: Any, small_history: Any, rows: int | None = None) -> Any:
    b = trained.bundle
    snaps = scoring_snapshots(small_history)
    snaps = snaps if rows is None else snaps.iloc[:rows].reset_index(drop=True)
    return build_feature_block(small_history, snaps, spec=b.spec, context=b.context)


@pytest.mark.parametrize("rows", [1, 7, None])
def test_the_matrix_path_gives_the_models_own_numbers(trained: Any, small_history: Any, rows: int | None) -> None:
    b = trained.bundle
    block = _block(trained, small_history, rows)
    frame = block.frame()
    runner = ModelRunner(b.win_model, b.stage_model)
    mw, ms = runner.block_matrices(block)
    np.testing.assert_allclose(runner.win_raw(mw), np.asarray(b.win_model.predict_raw(frame), dtype=float),
                               rtol=1e-9, atol=1e-9)
    order = list(reversed(b.taxonomy.names))  # columns come in the order asked for, not the model's
    want = b.stage_model.predict_proba(frame)
    np.testing.assert_allclose(runner.stage_proba(ms, order), np.asarray(want[order]), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(runner.contributions(mw), np.asarray(b.win_model.contributions(frame), dtype=float),
                               rtol=1e-9, atol=1e-9)
    assert runner.agrees(frame, b.taxonomy.names, mats=(mw, ms))


def test_a_runner_that_disagrees_is_caught(trained: Any, small_history: Any) -> None:
    b = trained.bundle
    block = _block(trained, small_history, 20)
    runner = ModelRunner(b.win_model, b.stage_model)
    mw, ms = runner.block_matrices(block)
    assert not runner.agrees(block.frame(), b.taxonomy.names, mats=(mw + 1.0, ms))


def test_threads_do_not_change_the_numbers(trained: Any, small_history: Any) -> None:
    b = trained.bundle
    block = _block(trained, small_history)
    one, auto = ModelRunner(b.win_model, b.stage_model, threads=1), ModelRunner(b.win_model, b.stage_model)
    mw, _ = one.block_matrices(block)
    np.testing.assert_allclose(one.win_raw(mw), auto.win_raw(mw), rtol=1e-12, atol=1e-12)
