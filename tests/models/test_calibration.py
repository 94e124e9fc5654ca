"""Calibrator: isotonic vs Platt chosen on a later sub-slice; never worse than raw scores."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss

from dealscore.errors import ConfigError
from dealscore.models.calibration import Calibrator


def _scores(n: int, seed: int, shape: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    raw = rng.normal(0, 2, n)
    # "sigmoid": an overconfident logistic (Platt's family); "step": only isotonic can follow it
    p = 1 / (1 + np.exp(-0.5 * raw)) if shape == "sigmoid" else np.where(raw > 1, 0.8, np.where(raw > -1, 0.4, 0.1))
    return raw, (rng.random(n) < p).astype(float)


@pytest.mark.parametrize("shape", ["sigmoid", "step"])
def test_calibrated_log_loss_beats_raw_sigmoid(shape):
    raw, y = _scores(4000, 1, shape)
    test_raw, test_y = _scores(4000, 2, shape)
    cal = Calibrator("auto").fit(raw, y)
    naive = 1 / (1 + np.exp(-test_raw))
    assert log_loss(test_y, cal.transform(test_raw)) < log_loss(test_y, naive)


def test_auto_picks_isotonic_for_a_step_shape():
    raw, y = _scores(6000, 3, "step")
    assert Calibrator("auto").fit(raw, y).method_ == "isotonic"


def test_tiny_slice_falls_back_to_platt():
    raw, y = _scores(30, 4, "sigmoid")
    cal = Calibrator("auto").fit(raw, y)
    assert cal.method_ == "platt" and cal.selection_ == {}


def test_unknown_method_is_a_config_error():
    raw, y = _scores(100, 5, "sigmoid")
    with pytest.raises(ConfigError, match="unknown calibration method"):
        Calibrator("beta").fit(raw, y)
