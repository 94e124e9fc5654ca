"""Evaluation metrics for win probabilities and stage predictions.

Plain functions over arrays so that the model, every baseline and the oracle are
measured by exactly the same code. Metrics that are undefined on a slice (AUC
with one class present) come back as ``None`` rather than raising, because a
per-stage breakdown on a small history routinely has such cells and the report
must still be written.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    roc_auc_score,
)

EPS = 1e-6
AGE_BANDS: tuple[tuple[float, float, str], ...] = (
    (0, 30, "0-30d"),
    (30, 90, "30-90d"),
    (90, 180, "90-180d"),
    (180, np.inf, "180d+"),
)


def _clip(p: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)


def safe_auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """ROC AUC, or ``None`` when only one class is present."""
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return None
    return float(roc_auc_score(y, p))


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """ECE with equal-width probability bins, weighted by bin size.

    Equal-width bins are the textbook definition and what a reader of a
    reliability diagram sees: |mean predicted - observed win rate| per bin.
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    if len(y) == 0:
        return float("nan")
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            total += m.sum() * abs(p[m].mean() - y[m].mean())
    return float(total / len(y))


def top_decile_lift(y: np.ndarray, p: np.ndarray, fraction: float = 0.1) -> float | None:
    """Win rate among the top ``fraction`` of scores divided by the overall win rate."""
    y = np.asarray(y, dtype=float)
    base = y.mean() if len(y) else 0.0
    if base <= 0:
        return None
    k = max(1, int(np.ceil(len(y) * fraction)))
    order = np.argsort(-np.asarray(p, dtype=float), kind="stable")[:k]
    return float(y[order].mean() / base)


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
    """The headline win-probability metrics on one set of predictions."""
    y = np.asarray(y, dtype=float)
    p = _clip(p)
    both = len(np.unique(y)) == 2
    return {
        "roc_auc": safe_auc(y, p),
        "pr_auc": float(average_precision_score(y, p)) if both else None,
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "top_decile_lift": top_decile_lift(y, p),
        "base_rate": float(y.mean()) if len(y) else None,
        "mean_prediction": float(p.mean()) if len(p) else None,
        "n": len(y),
    }


def age_band(age_days: pd.Series | np.ndarray) -> np.ndarray:
    """Deal-age band label per row (``unknown`` when the age is missing)."""
    age = np.asarray(age_days, dtype=float)
    out = np.full(len(age), "unknown", dtype=object)
    for lo, hi, name in AGE_BANDS:
        out[(age >= lo) & (age < hi)] = name
    return out


def auc_by_group(y: np.ndarray, p: np.ndarray, groups: np.ndarray | pd.Series) -> dict[str, dict[str, Any]]:
    """AUC (and size, win rate) within each group, e.g. per declared stage or age band."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    g = pd.Series(np.asarray(groups, dtype=object)).fillna("unknown").astype(str).to_numpy()
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(set(g)):
        m = g == key
        out[key] = {"roc_auc": safe_auc(y[m], p[m]), "n": int(m.sum()), "win_rate": float(y[m].mean())}
    return out


def stage_metrics(true: np.ndarray, pred: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 and the confusion matrix (rows = real stage, columns = predicted).

    Stage names are turned into integer codes first (the taxonomy's stages first, so
    code ``i`` is ``labels[i]``; any other value gets a code of its own): scikit-learn
    compares object arrays element by element, minutes' worth at a million snapshots.
    """
    true = np.asarray(true, dtype=object)
    pred = np.asarray(pred, dtype=object)
    codes, _ = pd.factorize(pd.Series(np.concatenate([np.asarray(labels, dtype=object), true, pred])), sort=False,
                            use_na_sentinel=False)
    t_code, p_code = codes[len(labels):len(labels) + len(true)], codes[len(labels) + len(true):]
    present = np.unique(t_code[t_code < len(labels)]).tolist()
    cm = confusion_matrix(t_code, p_code, labels=list(range(len(labels))))
    return {
        "accuracy": float(accuracy_score(t_code, p_code)),
        "macro_f1": float(f1_score(t_code, p_code, labels=present, average="macro", zero_division=0)),
        "confusion_matrix": {"labels": list(labels), "matrix": cm.tolist()},
        "n": len(true),
    }
