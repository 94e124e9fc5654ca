"""Calibrator: isotonic vs Platt chosen on a later sub-slice; never worse than raw scores."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss

from dealscore.errors import ConfigError
from dealscore.models.calibration import Calibrator, probability_bounds, select_calibrator
from dealscore.models.calibration import _beta_features as beta_features


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
        Calibrator("spline").fit(raw, y)


@pytest.mark.parametrize("method", ["platt", "isotonic", "beta"])
def test_transform_equals_scikit_learn_bit_for_bit(method):
    """The direct arithmetic of ``transform`` gives exactly scikit-learn's probabilities (and its errors)."""
    raw, y = _scores(3000, 6, "step")
    cal = Calibrator(method).fit(raw, y)

    def sklearn(x: np.ndarray) -> np.ndarray:
        if method == "isotonic":
            p = cal.model_.predict(x)
        else:
            inputs = x.reshape(-1, 1) if method == "platt" else beta_features(x)
            p = cal.model_.predict_proba(inputs)[:, 1]
        return np.clip(np.asarray(p, dtype=float), cal.floor_, cal.ceiling_)

    probe = np.concatenate([np.random.default_rng(7).normal(0, 4, 5000), [0.0, -0.0, 1e-300, -50.0, 50.0, 1e6],
                            raw[:50]])
    for batch in (probe, probe[:1], probe[-3:], probe[::-1]):
        assert np.array_equal(cal.transform(batch), sklearn(batch))
    with pytest.raises(ValueError):
        cal.transform(np.array([0.1, np.nan]))


def _drifting(n_per_fold: int, shifts: list[float], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Raw scores whose true win rate moves up fold after fold (the model's scores do not know it)."""
    rng = np.random.default_rng(seed)
    raw, y, fold = [], [], []
    for k, shift in enumerate(shifts):
        r = rng.normal(-0.5, 1.5, n_per_fold)
        raw.append(r)
        y.append((rng.random(n_per_fold) < 1 / (1 + np.exp(-(0.8 * r + shift)))).astype(float))
        fold.append(np.full(n_per_fold, k))
    raw_, y_, fold_ = np.concatenate(raw), np.concatenate(y), np.concatenate(fold)
    return raw_, y_, fold_, np.array([f"D{i}" for i in range(len(raw_))])


def test_out_of_fold_calibration_follows_a_drifting_win_rate():
    shifts = [-1.0, -0.4, 0.2, 0.8]
    raw, y, fold, ids = _drifting(1500, shifts, seed=1)
    cal = select_calibrator(raw, y, fold, ids)
    assert cal.variant_.endswith("+recent")  # forward chaining rewards following the drift
    assert set(cal.selection_) == {f"{m}{r}" for m in ("isotonic", "platt", "beta") for r in ("", "+recent")}
    # deals of today (the latest win rate): the chosen calibration is closer to their win rate than a fit that
    # weighs all history equally
    new_raw, new_y, _, _ = _drifting(20000, [shifts[-1]], seed=2)
    equal = Calibrator("platt").fit(raw, y)
    gap_chosen = abs(cal.transform(new_raw).mean() - new_y.mean())
    gap_equal = abs(equal.transform(new_raw).mean() - new_y.mean())
    assert gap_chosen < 0.5 * gap_equal
    assert log_loss(new_y, cal.transform(new_raw)) < log_loss(new_y, equal.transform(new_raw))


def test_a_small_calibration_history_gets_a_rigid_calibrator():
    raw, y, fold, ids = _drifting(12, [0.0, 0.0, 0.0], seed=3)  # folds too small to compare methods on
    cal = select_calibrator(raw, y, fold, ids)
    assert cal.variant_ == "platt" and cal.selection_ == {}
    assert np.isfinite(cal.transform(np.array([-30.0, 0.0, 30.0]))).all()


def test_no_probability_is_0_or_1_and_the_floor_needs_held_out_evidence():
    raw, y, fold, ids = _drifting(1500, [0.0, 0.0, 0.0], seed=4)
    cal = select_calibrator(raw, y, fold, ids)
    p = cal.transform(np.array([-1e6, -50.0, 0.0, 50.0, 1e6]))
    assert (p >= cal.floor_).all() and (p <= cal.ceiling_).all() and p.min() > 0 and p.max() < 1
    assert cal.floor_ == 0.005 and cal.ceiling_ == 0.995  # no deal was scored beyond 0.5 % / 99.5 % here


def test_probability_bounds_rule_counts_deals_with_a_half_deal_prior():
    # 3,000 held-out deals scored below 0.5 % (two snapshots each), one of them won: floor = 1.5 / 3001
    ids = np.repeat([f"D{i}" for i in range(3000)], 2)
    y = np.zeros(6000)
    y[:2] = 1.0
    floor, ceiling, support = probability_bounds(np.full(6000, 0.001), y, ids)
    assert support == {"deals_below": 3000, "won_below": 1, "deals_above": 0, "lost_above": 0}
    assert floor == pytest.approx(1.5 / 3001) and ceiling == 0.995
    # few such deals cannot justify going below 0.5 %
    floor, _, _ = probability_bounds(np.full(40, 0.001), np.zeros(40), ids[:40])
    assert floor == 0.005
