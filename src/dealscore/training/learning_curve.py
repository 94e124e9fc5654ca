"""Would more history help? The champion's learning curve at 25, 50 and 100 % of its training deals.

Measured on the last cross-validation fold (the largest training window and the
most recent held-out block, none of it the test slice): the champion's settings
are refitted on the most recent 25 % and 50 % of that fold's training deals
(whole deals, newest kept, as a shorter export would hold), and the 100 % point
is the fold's own out-of-fold score. AUC needs no calibration; log loss is
measured after a Platt calibration cross-fitted on the held-out block (two
halves by deal, each calibrated on the other), so every point is calibrated
alike without touching the test slice.

:func:`more_data_note` reads all three points into the sentence the training
run prints (see there for the rule): still rising at 100 %, levelled off,
falling as older deals are added, or too noisy to tell.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss

from dealscore.models.logistic_fit import logistic_regression
from dealscore.training.metrics import safe_auc
from dealscore.training.selection import Selection, fit_components, sample_rows

FRACTIONS = (0.25, 0.5, 1.0)
#: Changes between two points of the curve smaller than these are read as noise (refits on another sample of
#: deals, a few hundred held-out deals), not as a trend: ROC AUC and calibrated log loss.
AUC_NOISE = 0.005
LOG_LOSS_NOISE = 0.003


def cross_fitted_log_loss(raw: np.ndarray, y: np.ndarray, deal_ids: np.ndarray) -> float:
    """Log loss after Platt calibration fitted on the other half of the deals (two halves, each way)."""
    codes, _ = pd.factorize(pd.Series(np.asarray(deal_ids)), sort=False)
    half = codes % 2 == 0
    p = np.empty(len(y))
    for a, b in ((half, ~half), (~half, half)):
        if len(np.unique(y[a])) < 2:
            p[b] = y[a].mean() if a.any() else 0.5
            continue
        lr = logistic_regression(1e6).fit(raw[a].reshape(-1, 1), y[a])
        p[b] = lr.predict_proba(raw[b].reshape(-1, 1))[:, 1]
    return float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6), labels=[0, 1]))


def learning_curve(selection: Selection, X: pd.DataFrame, y: np.ndarray, deal_ids: np.ndarray, names: Sequence[str],
                   *, base_params: Mapping[str, Any] | None = None, linear_c: float = 1.0,
                   max_rows: int | None = None, seed: int = 0, fractions: Sequence[float] = FRACTIONS
                   ) -> dict[str, Any]:
    """AUC and calibrated log loss of the champion's settings at each fraction of the last fold's training deals.

    ``X``/``y``/``deal_ids`` are the pool rows selection ran on (same order).
    """
    y = np.asarray(y, dtype=float)
    ids = np.asarray(deal_ids)
    fold = selection.fold
    last = int(fold.max())
    train, held = fold < last, fold == last
    train_deals = pd.unique(pd.Series(ids[train]))  # creation order: the newest last
    points = []
    for f in fractions:
        if f >= 1:
            raw = selection.oof_raw[held]
            n_deals = len(train_deals)
        else:
            n_deals = max(1, round(f * len(train_deals)))
            # pandas' hash lookup: np.isin compares object ids pairwise (minutes at 100,000 deals)
            keep = train & pd.Series(ids).isin(train_deals[-n_deals:]).to_numpy()
            rows = sample_rows(keep, max_rows, seed)
            if len(np.unique(y[rows])) < 2:
                continue
            model = fit_components(selection.best, X.iloc[rows], y[rows], names, base_params=base_params,
                                   linear_c=linear_c, seed=seed)
            raw = model.predict_raw(X[held])
        points.append({"fraction": float(f), "train_deals": int(n_deals), "roc_auc": safe_auc(y[held], raw),
                       "log_loss": cross_fitted_log_loss(raw, y[held], ids[held])})
    return {"points": points, "evaluated_on": f"cross-validation fold {last + 1} (held-out deals)",
            "held_out_deals": int(pd.Series(ids[held]).nunique()), "note": more_data_note(points)}


def more_data_note(points: Sequence[Mapping[str, Any]]) -> str:
    """One sentence on whether more history would help, read from every point of the curve.

    The rule, per metric (ROC AUC, and log loss read the other way up), with
    changes within :data:`AUC_NOISE` / :data:`LOG_LOSS_NOISE` counted as noise:

    - *swinging*: one step better and another worse, each by more than noise (25 %
      of the deals nearly as good as 100 %, say): the curve cannot tell;
    - *rising*: the last step and the whole curve better by more than noise;
    - *falling*: the whole curve worse by more than noise (older deals hurt);
    - *levelled*: better by more than noise overall, but not on the last step;
    - *flat*: no change beyond noise: the curve cannot tell either.

    The sentence says "too noisy to tell" when either metric swings or the two point
    opposite ways or neither moves beyond noise; otherwise rising over falling over
    levelled. Every point's figures are quoted, so the reader can judge too.
    """
    usable = [p for p in points if p.get("roc_auc") is not None and p.get("log_loss") is not None]
    if len(usable) < 2:
        return "the learning curve could not be measured (too few deals per fold)"
    shapes = {_shape([p["roc_auc"] for p in usable], AUC_NOISE),
              _shape([-p["log_loss"] for p in usable], LOG_LOSS_NOISE)}
    figures = (f"at {_joined(usable, 'train_deals', ',')} training deals ROC AUC was "
               f"{_joined(usable, 'roc_auc', '.3f')} and log loss {_joined(usable, 'log_loss', '.3f')}")
    if "swinging" in shapes or ("falling" in shapes and shapes & {"rising", "levelled"}):
        return (f"the learning curve is too noisy to tell whether more history would help: {figures} "
                f"(it moves both ways by more than noise)")
    if "rising" in shapes:
        return (f"more history would likely improve the model: {figures}, still improving on the last step; "
                f"export a longer history if you have one")
    if "falling" in shapes:
        return (f"older history made the model worse: {figures}; the older deals may follow another sales process "
                f"(split.max_train_deals trains on the most recent deals only)")
    if "levelled" in shapes:
        return f"the model has about levelled off: {figures}"
    return (f"the learning curve is too noisy to tell whether more history would help: {figures} "
            f"(no change beyond noise: ROC AUC {AUC_NOISE}, log loss {LOG_LOSS_NOISE})")


def _shape(values: Sequence[float], noise: float) -> str:
    """``swinging``, ``rising``, ``falling``, ``levelled`` or ``flat``: one metric's curve, higher is better (see
    :func:`more_data_note`)."""
    steps = np.diff(np.asarray(values, dtype=float))
    total = float(values[-1] - values[0])
    if (steps > noise).any() and (steps < -noise).any():
        return "swinging"
    if steps[-1] > noise and total > noise:
        return "rising"
    if total < -noise:
        return "falling"
    return "levelled" if total > noise else "flat"


def _joined(points: Sequence[Mapping[str, Any]], key: str, spec: str) -> str:
    """One figure of every point in order: ``0.876 → 0.864 → 0.881``."""
    return " → ".join(format(p[key], spec) for p in points)
