"""Would more history help? The champion's learning curve at 25, 50 and 100 % of its training deals.

Measured on the last cross-validation fold (the largest training window and the
most recent held-out block, none of it the test slice): the champion's settings
are refitted on the most recent 25 % and 50 % of that fold's training deals
(whole deals, newest kept, as a shorter export would hold), and the 100 % point
is the fold's own out-of-fold score. AUC needs no calibration; log loss is
measured after a Platt calibration cross-fitted on the held-out block (two
halves by deal, each calibrated on the other), so every point is calibrated
alike without touching the test slice.

A curve still rising between 50 % and 100 % says more history would likely
improve the model; :func:`more_data_note` turns that into the sentence the
training run prints.
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
#: A gain from 50 % to 100 % of the deals above either of these says "more history would help".
AUC_GAIN = 0.005
LOG_LOSS_GAIN = 0.003


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
    """One sentence: does the curve still rise between the last two points?"""
    if len(points) < 2 or points[-1]["roc_auc"] is None or points[-2]["roc_auc"] is None:
        return "the learning curve could not be measured (too few deals per fold)"
    a, b = points[-2], points[-1]
    d_auc, d_ll = b["roc_auc"] - a["roc_auc"], a["log_loss"] - b["log_loss"]
    span = f"from {a['train_deals']:,} to {b['train_deals']:,} training deals"
    moves = f"ROC AUC {_moved(d_auc, 'rose', 'fell')} and log loss {_moved(-d_ll, 'rose', 'fell')}"
    if d_auc > AUC_GAIN or d_ll > LOG_LOSS_GAIN:
        return f"more history would likely improve the model: {span} {moves}; export a longer history if you have one"
    return f"the model has about levelled off: {span} {moves}"


def _moved(change: float, up: str, down: str) -> str:
    """"rose by 0.012", "fell by 0.031" or "did not move": the verb carries the sign, the number never does."""
    if round(change, 3) == 0:
        return "did not move"
    return f"{up if change > 0 else down} by {abs(change):.3f}"
