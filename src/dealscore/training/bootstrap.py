"""How sure is "better than the baseline"? Bootstrap intervals over deals, not snapshots.

The test slice holds many snapshots per deal, all sharing one outcome; resampling
snapshots would pretend each is independent evidence and give intervals far too
narrow. Each bootstrap replicate therefore draws *deals* with replacement
(a deal drawn twice counts twice, with all its snapshots) and recomputes, on the
same draw, each metric for the model and for the best baseline on that metric
(best by its point value). The interval is the 2.5-97.5 % percentile of the
difference; the verdict is *better* or *worse* when the interval excludes zero
and *tied* otherwise.

Replicates are weights on the fixed rows (how many times each deal was drawn),
so the sort each rank metric needs is done once per scorer, not per replicate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from dealscore.training.metrics import EPS, binary_metrics

#: metric → True when higher is better
METRICS: dict[str, bool] = {"roc_auc": True, "log_loss": False, "brier": False, "ece": False,
                            "top_decile_lift": True}
N_BINS = 10


class _Scorer:
    """One scorer's predictions with what every replicate reuses (sort order, bins, per-row losses)."""

    def __init__(self, y: np.ndarray, p: np.ndarray) -> None:
        p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
        self.y, self.p = y, p
        self.order = np.argsort(-p, kind="stable")
        sp = p[self.order]
        self.group_start = np.r_[True, sp[1:] != sp[:-1]]  # first row of each run of tied scores
        self.loss = -(y * np.log(p) + (1 - y) * np.log1p(-p))
        self.sq = (p - y) ** 2
        self.bins = np.minimum((p * N_BINS).astype(int), N_BINS - 1)

    def metrics(self, w: np.ndarray) -> dict[str, float]:
        """Every metric of :data:`METRICS` with row weights ``w``."""
        y, total = self.y, w.sum()
        wp, wn = w * y, w * (1 - y)
        out = {"log_loss": float(self.loss @ w / total), "brier": float(self.sq @ w / total)}
        cp = np.bincount(self.bins, weights=w * self.p, minlength=N_BINS)
        cy = np.bincount(self.bins, weights=wp, minlength=N_BINS)
        out["ece"] = float(np.abs(cp - cy).sum() / total)
        # AUC: for each positive, the weight of negatives scored lower, plus half the tied ones
        spos, sneg = wp[self.order], wn[self.order]
        gid = np.cumsum(self.group_start) - 1
        gpos, gneg = np.bincount(gid, weights=spos), np.bincount(gid, weights=sneg)
        neg_below = gneg.sum() - np.cumsum(gneg)  # descending order: later groups score lower
        P, N = gpos.sum(), gneg.sum()
        out["roc_auc"] = float((gpos * (neg_below + 0.5 * gneg)).sum() / (P * N)) if P > 0 and N > 0 else np.nan
        # lift: win rate of the top 10 % of the (weighted) rows over the overall rate
        ws = w[self.order]
        cum = np.cumsum(ws)
        top = cum - ws < 0.1 * total  # rows starting before the 10 % mark (ceil(n / 10) rows at unit weights)
        rate = wp.sum() / total
        out["top_decile_lift"] = float(spos[top].sum() / cum[top][-1] / rate) if rate > 0 else np.nan
        return out


def deal_weights(deal_ids: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Row weights of ``n_boot`` replicates (n_boot x rows): how often each row's deal was drawn."""
    codes, uniques = pd.factorize(pd.Series(np.asarray(deal_ids)), sort=False)
    k = len(uniques)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(k, np.full(k, 1.0 / k), size=n_boot).astype(float)
    return draws[:, codes]


def verdict(lo: float, hi: float, higher_is_better: bool) -> str:
    """``better`` / ``worse`` when the interval of (model - baseline) excludes zero, else ``tied``."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "tied"
    if lo > 0:
        return "better" if higher_is_better else "worse"
    if hi < 0:
        return "worse" if higher_is_better else "better"
    return "tied"


def compare_to_baselines(y: np.ndarray, preds: Mapping[str, np.ndarray], deal_ids: np.ndarray, *,
                         model: str = "model", n_boot: int = 200, seed: int = 0) -> dict[str, Any]:
    """Per metric: the best baseline, the model's difference to it, its deal-level 95 % interval and a verdict."""
    y = np.asarray(y, dtype=float)
    scorers = {k: _Scorer(y, v) for k, v in preds.items()}
    point = {k: binary_metrics(y, v) for k, v in preds.items()}  # exactly the report's figures
    baselines = [k for k in preds if k != model]
    weights = deal_weights(deal_ids, n_boot, seed)
    reps = {k: [s.metrics(w) for w in weights] for k, s in scorers.items()}
    out: dict[str, Any] = {}
    for m, higher in METRICS.items():
        best = max(baselines, key=lambda b: point[b][m] if higher else -point[b][m])
        diffs = np.array([r[m] - b[m] for r, b in zip(reps[model], reps[best], strict=True)])
        diffs = diffs[np.isfinite(diffs)]
        lo, hi = (np.percentile(diffs, [2.5, 97.5]) if len(diffs) else (np.nan, np.nan))
        out[m] = {"best_baseline": best, "model": point[model][m], "baseline": point[best][m],
                  "difference": point[model][m] - point[best][m], "interval": [float(lo), float(hi)],
                  "verdict": verdict(float(lo), float(hi), higher), "higher_is_better": higher}
    out["_about"] = {"resampled": "deals", "deals": int(pd.Series(np.asarray(deal_ids)).nunique()),
                     "snapshots": len(y), "replicates": n_boot, "interval": "2.5-97.5 percentile of the difference"}
    return out


def sentence(metric: str, row: Mapping[str, Any]) -> str:
    """The comparison in words, e.g. ``better than the logistic regression by 0.004 (0.001 to 0.007)``."""
    lo, hi = row["interval"]
    what = {"better": "better than", "worse": "worse than", "tied": "tied with"}[row["verdict"]]
    return f"{what} {row['best_baseline']} by {row['difference']:+.4f} (95% interval {lo:+.4f} to {hi:+.4f})"
