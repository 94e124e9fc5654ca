"""Bootstrap intervals resample deals, not snapshots, and say better / tied / worse."""

from __future__ import annotations

import numpy as np

from dealscore.training.bootstrap import DealDraws, _Scorer, basic_interval, compare_to_baselines, verdict
from dealscore.training.metrics import binary_metrics


def _one_row_per_deal(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.35).astype(float)
    good = np.clip(0.35 + 0.35 * (y - 0.35) + rng.normal(0, 0.2, n), 0.02, 0.98)
    weak = np.clip(0.35 + 0.15 * (y - 0.35) + rng.normal(0, 0.2, n), 0.02, 0.98)
    return y, {"model": good, "stage_table": weak, "logistic": np.full(n, 0.35)}, np.array([f"D{i}" for i in range(n)])


def test_intervals_are_computed_over_deals_so_repeating_snapshots_does_not_narrow_them():
    y, preds, ids = _one_row_per_deal(400, 1)
    once = compare_to_baselines(y, preds, ids, n_boot=100, seed=3)
    rep = np.repeat(np.arange(len(y)), 6)  # six snapshots per deal, same outcome and scores
    many = compare_to_baselines(y[rep], {k: v[rep] for k, v in preds.items()}, ids[rep], n_boot=100, seed=3)
    for metric in ("roc_auc", "log_loss", "brier"):
        np.testing.assert_allclose(many[metric]["interval"], once[metric]["interval"], rtol=1e-9, atol=1e-12)
    assert many["_about"]["deals"] == 400 and many["_about"]["snapshots"] == 2400


def test_replicate_weights_draw_whole_deals():
    ids = np.array(["a", "a", "b", "c", "c", "c"])
    draws = DealDraws(ids, 50, seed=0)
    w = np.array([draws.row_weights(b) for b in range(50)])
    assert w.shape == (50, 6)
    assert (w[:, 0] == w[:, 1]).all() and (w[:, 3] == w[:, 5]).all()
    assert (w[:, [0, 2, 3]].sum(axis=1) == 3).all()  # three deals drawn per replicate


def test_verdicts_follow_the_interval_and_the_metric_direction():
    y, preds, ids = _one_row_per_deal(600, 2)
    out = compare_to_baselines(y, preds, ids, n_boot=100, seed=0)
    assert out["roc_auc"]["best_baseline"] == "stage_table"
    assert out["roc_auc"]["verdict"] == "better" and out["log_loss"]["verdict"] == "better"
    lo, hi = out["log_loss"]["interval"]
    assert lo <= out["log_loss"]["difference"] <= hi < 0
    assert verdict(-0.1, 0.2, True) == "tied" and verdict(0.01, 0.2, False) == "worse"
    assert verdict(-0.2, -0.01, True) == "worse" and verdict(float("nan"), 1.0, True) == "tied"


def test_every_replicate_equals_the_metrics_of_its_resampled_rows():
    rng = np.random.default_rng(4)
    deal = rng.integers(0, 60, 300)
    y = (deal % 3 == 0).astype(float)  # one outcome per deal, several snapshots each
    p = np.clip(0.3 + 0.3 * (y - 0.3) + rng.normal(0, 0.2, 300), 0.02, 0.98).round(2)  # ties on purpose
    draws = DealDraws(np.array([f"D{d}" for d in deal]), 5, seed=1)
    reps = _Scorer(y, p, draws).metrics()
    for b in range(5):
        rows = np.repeat(np.arange(300), draws.row_weights(b).astype(int))  # the replicate's rows, written out
        direct = binary_metrics(y[rows], p[rows])
        for m in ("roc_auc", "log_loss", "brier"):
            assert abs(reps[m][b] - direct[m]) < 1e-9, m


def test_the_interval_is_the_replicates_reflected_about_the_observed_difference():
    reps = np.array([0.0, 0.01, 0.02, 0.03, 0.04, np.nan] * 50)
    q_lo, q_hi = np.percentile(reps[np.isfinite(reps)], [2.5, 97.5])
    assert basic_interval(0.05, reps) == (0.1 - q_hi, 0.1 - q_lo)
    assert np.isnan(basic_interval(0.05, np.array([np.nan]))).all()


def test_a_calibration_error_twice_the_baselines_is_not_called_tied():
    """ECE's replicates do not centre on the observed difference: the model's ECE 0.075 against a calibrated
    baseline's 0.037 had replicates with median +0.027 and a percentile interval from -0.001, called "tied"."""
    rng = np.random.default_rng(4)
    truth = rng.beta(2, 3, 500)
    y = (rng.random(500) < truth).astype(float)
    ids = np.array([f"D{i}" for i in range(500)])
    out = compare_to_baselines(y, {"model": np.clip(truth + 0.045, 0.01, 0.99), "calibrated": truth}, ids,
                               n_boot=400, seed=1)
    ece = out["ece"]
    assert ece["model"] > 1.8 * ece["baseline"]
    lo, hi = ece["interval"]
    assert ece["verdict"] == "worse" and 0 < lo < ece["difference"] < hi, ece
