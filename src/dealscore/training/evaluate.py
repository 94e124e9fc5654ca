"""Evaluation on the held-out test slice: the model beside its baselines and the oracle.

Every scorer (win model, stage table, naive Bayes, logistic regression, and on
simulated data the oracle) is measured by the same function on the same rows,
so the report compares like with like. Nothing here sees training data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dealscore.training.metrics import age_band, auc_by_group, binary_metrics, stage_metrics


def win_section(y: np.ndarray, p: np.ndarray, frame: pd.DataFrame) -> dict[str, Any]:
    """Headline metrics plus AUC per declared stage and per deal-age band."""
    out: dict[str, Any] = binary_metrics(y, p)
    if "declared_stage" in frame:
        out["by_declared_stage"] = auc_by_group(y, p, frame["declared_stage"].astype(object).to_numpy())
    if "deal_age_days" in frame:
        out["by_age_band"] = auc_by_group(y, p, age_band(frame["deal_age_days"]))
    return out


def oracle_section(y: np.ndarray, p_oracle: np.ndarray | None, model_auc: float | None, frame: pd.DataFrame,
                   reason: str = "") -> dict[str, Any]:
    """The simulator's true probabilities as the ceiling, and how much of it the model reaches."""
    if p_oracle is None:
        return {"available": False, "reason": reason or "not a simulated history (no truth tables)"}
    out = {"available": True, **win_section(y, p_oracle, frame)}
    o_auc = out.get("roc_auc")
    share = None
    if model_auc is not None and o_auc is not None and o_auc > 0.5:
        share = (model_auc - 0.5) / (o_auc - 0.5)
    out["model_auc_share_of_oracle"] = share
    return out


def stage_section(
    real: np.ndarray, inferred: np.ndarray, declared: np.ndarray, confidence: np.ndarray, labels: list[str],
    importance: pd.Series | None = None,
) -> dict[str, dict[str, Any]]:
    """Stage model vs trusting the declared stage, with disagreement and confidence figures."""
    real = np.asarray(real, dtype=object)
    inferred = np.asarray(inferred, dtype=object)
    declared = pd.Series(np.asarray(declared, dtype=object)).fillna("unknown").astype(str).to_numpy(dtype=object)
    confidence = np.asarray(confidence, dtype=float)
    model = stage_metrics(real, inferred, labels)
    disagree = inferred != declared
    right = inferred == real
    model["mean_confidence"] = float(confidence.mean()) if len(confidence) else None
    bands = [(0.0, 0.5), (0.5, 0.7), (0.7, 0.9), (0.9, 1.01)]
    model["accuracy_by_confidence"] = {
        f"{lo:.1f}-{min(hi, 1.0):.1f}": {"n": int(m.sum()), "accuracy": float(right[m].mean()) if m.any() else None}
        for lo, hi in bands for m in [(confidence >= lo) & (confidence < hi)]
    }
    model["disagrees_with_declared_rate"] = float(disagree.mean()) if len(disagree) else None
    model["accuracy_when_disagreeing"] = float(right[disagree].mean()) if disagree.any() else None
    model["declared_right_when_disagreeing"] = float((declared == real)[disagree].mean()) if disagree.any() else None
    if importance is not None and importance.sum() > 0:
        share = importance[[c for c in importance.index if c in ("declared_stage", "declared_stage_order")]].sum()
        model["declared_stage_gain_share"] = float(share / importance.sum())
    declared_metrics = stage_metrics(real, declared, labels)
    return {"model": model, "declared": declared_metrics}
