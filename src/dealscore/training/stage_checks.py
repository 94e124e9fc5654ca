"""Label-free checks of a real-stage estimate: does it explain what happened next better than the CRM's stage?

A real stage that is closer to the truth should say more about the outcome and
about how long the deal still has to go, and neither needs audited stages. Both
checks key a plain table on the stage, learned on the training slice and applied
to the test slice, once with the inferred stage and once with the declared one:

* **win-rate table AUC**: each stage's training win rate as the score of a test
  snapshot, its ROC AUC against the outcome;
* **time to close**: each stage's median days left to the close in training as
  the prediction for a test snapshot, its mean absolute error in days.

The gain (inferred minus declared; for the error, declared minus inferred) comes
with a 95 % interval from a bootstrap over test *deals* (a deal's snapshots move
together; drawn by :class:`~dealscore.training.bootstrap.DealDraws` like the win
model's comparison). Where the declared stage equals the real one, the two keys coincide
and the gain is zero by construction: the check cannot invent an improvement.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from dealscore.training.bootstrap import DealDraws, rank_metrics, tie_groups

N_BOOT = 100


def _table(key_train: np.ndarray, value: np.ndarray, how: str) -> pd.Series:
    frame = pd.DataFrame({"k": pd.Series(key_train, dtype=object).fillna("unknown"), "v": value})
    return frame.groupby("k")["v"].mean() if how == "mean" else frame.groupby("k")["v"].median()


def _apply(table: pd.Series, key: np.ndarray, default: float) -> np.ndarray:
    return pd.Series(key, dtype=object).fillna("unknown").map(table).fillna(default).to_numpy(dtype=float)


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def label_free_checks(
    train: dict[str, np.ndarray], test: dict[str, np.ndarray], seed: int = 0, n_boot: int = N_BOOT,
) -> dict[str, Any]:
    """Win-rate-table AUC and time-to-close error keyed on the inferred vs the declared stage.

    ``train`` and ``test`` hold arrays ``inferred``, ``declared``, ``won`` (0/1) and
    ``days_left`` (to the close); ``test`` also ``deal`` (for the bootstrap).
    """
    won_tr, won_te = train["won"].astype(float), test["won"].astype(float)
    left_tr, left_te = train["days_left"].astype(float), test["days_left"].astype(float)
    score, eta = {}, {}
    for key in ("inferred", "declared"):
        score[key] = _apply(_table(train[key], won_tr, "mean"), test[key], float(won_tr.mean()))
        eta[key] = _apply(_table(train[key], left_tr, "median"), test[key], float(np.median(left_tr)))
    err = {k: np.abs(eta[k] - left_te) for k in eta}
    auc = {k: _auc(won_te, score[k]) for k in score}
    mae = {k: float(err[k].mean()) for k in err}

    draws = DealDraws(test["deal"], n_boot, seed)
    # AUC per replicate: each row weighted by its deal's count, gathered in the score's order (sorted once)
    order = {k: np.argsort(-score[k], kind="stable") for k in score}
    ties = {k: tie_groups(score[k][order[k]]) for k in score}

    def replicate_auc(key: str, counts: np.ndarray) -> float:
        o = order[key]
        return rank_metrics(won_te[o], ties[key], counts[draws.codes[o]])[0]

    auc_gain = [replicate_auc("inferred", c) - replicate_auc("declared", c) for c in draws.counts]
    auc_gain = [g for g in auc_gain if np.isfinite(g)]  # a replicate holding one outcome has no AUC
    # the error gain: per-deal sums
    sums = draws.counts @ draws.per_deal(np.column_stack([np.ones(len(won_te)), err["declared"] - err["inferred"]]))
    mae_gain = list(sums[:, 1] / sums[:, 0]) if len(won_te) else []

    def interval(v: list[float]) -> list[float] | None:
        return [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] if len(v) >= 10 else None

    return {
        "win_rate_table_auc": {"inferred": auc["inferred"], "declared": auc["declared"],
                               "gain": auc["inferred"] - auc["declared"], "gain_interval_95": interval(auc_gain)},
        "time_to_close_mae_days": {"inferred": mae["inferred"], "declared": mae["declared"],
                                   "gain": mae["declared"] - mae["inferred"],
                                   "gain_interval_95": interval(mae_gain)},
        "n_test_snapshots": len(won_te),
        "n_test_deals": draws.n_deals,
        "bootstrap": n_boot,
    }


__all__ = ["label_free_checks"]
