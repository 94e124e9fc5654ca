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


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_transform_equals_scikit_learn_bit_for_bit(method):
    """The direct arithmetic of ``transform`` gives exactly scikit-learn's probabilities (and its errors)."""
    raw, y = _scores(3000, 6, "step")
    cal = Calibrator(method).fit(raw, y)

    def sklearn(x: np.ndarray) -> np.ndarray:
        p = cal.model_.predict(x) if method == "isotonic" else cal.model_.predict_proba(x.reshape(-1, 1))[:, 1]
        return np.clip(np.asarray(p, dtype=float), 1e-4, 1 - 1e-4)

    probe = np.concatenate([np.random.default_rng(7).normal(0, 4, 5000), [0.0, -0.0, 1e-300, -50.0, 50.0, 1e6],
                            raw[:50]])
    for batch in (probe, probe[:1], probe[-3:], probe[::-1]):
        assert np.array_equal(cal.transform(batch), sklearn(batch))
    with pytest.raises(ValueError):
        cal.transform(np.array([0.1, np.nan]))
