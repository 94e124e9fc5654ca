"""Metric functions: hand-checkable values and graceful undefined cases."""

from __future__ import annotations

import numpy as np

from dealscore.training.metrics import (
    age_band,
    auc_by_group,
    binary_metrics,
    expected_calibration_error,
    stage_metrics,
    top_decile_lift,
)


def test_ece_is_zero_for_perfectly_calibrated_bins_and_measures_the_gap():
    p = np.array([0.25] * 4 + [0.75] * 4)
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    assert expected_calibration_error(y, p) == 0.0
    assert abs(expected_calibration_error(np.ones(8), p) - 0.5) < 1e-12


def test_top_decile_lift():
    y = np.array([1] + [0] * 9 + [1] * 0 + [0] * 10, dtype=float)  # 1 win in 20
    p = np.linspace(1, 0, 20)
    assert top_decile_lift(y, p) == 10.0  # top 2 rows hold the only win: 0.5 / 0.05
    assert top_decile_lift(np.zeros(5), np.ones(5)) is None


def test_binary_metrics_handles_one_class():
    m = binary_metrics(np.zeros(10), np.full(10, 0.2))
    assert m["roc_auc"] is None and m["pr_auc"] is None and m["log_loss"] > 0


def test_groups_and_bands():
    y = np.array([0, 1, 0, 1, 1, 1], dtype=float)
    p = np.array([0.1, 0.9, 0.2, 0.8, 0.5, 0.6])
    out = auc_by_group(y, p, np.array(["a", "a", "a", "a", "b", None], dtype=object))
    assert out["a"]["roc_auc"] == 1.0 and out["b"]["roc_auc"] is None and out["unknown"]["n"] == 1
    assert list(age_band([5, 45, 120, 400, np.nan])) == ["0-30d", "30-90d", "90-180d", "180d+", "unknown"]


def test_stage_metrics_confusion_rows_are_real_stages():
    out = stage_metrics(np.array(["a", "a", "b"]), np.array(["a", "b", "b"]), ["a", "b", "c"])
    assert out["confusion_matrix"]["matrix"] == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
    assert abs(out["accuracy"] - 2 / 3) < 1e-12


def test_stage_metrics_equal_scikit_learn_on_the_names_with_unknown_predictions():
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    rng = np.random.default_rng(0)
    labels = ["a", "b", "c", "d"]
    true = rng.choice(labels[:3], 500).astype(object)
    pred = rng.choice([*labels, "other"], 500).astype(object)
    out = stage_metrics(true, pred, labels)
    assert out["accuracy"] == accuracy_score(true, pred)
    assert abs(out["macro_f1"] - f1_score(true, pred, labels=labels[:3], average="macro", zero_division=0)) < 1e-12
    assert out["confusion_matrix"]["matrix"] == confusion_matrix(true, pred, labels=labels).tolist()
