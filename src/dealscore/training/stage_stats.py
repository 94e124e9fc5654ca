"""Per-stage norms stored in the bundle (``bundle.stage_stats``) for warnings and at-risk.

Learned only from the training slice (deals created and closed before the
evaluation periods), so warnings in an evaluation never use the future:
- ``win_rate``: share of snapshots in the declared stage whose deal was won;
- ``median_days_in_stage_won`` / ``p90_days_in_stage_won``: time won deals spent
  in each declared stage (one figure per stage visit);
- ``p90_gap_days``: the 90th percentile gap between consecutive touchpoints of
  won deals, attributed to the stage the deal was in at the later touchpoint.
Stages with fewer than ``min_deals`` won deals get ``None`` (the scoring layer
then uses documented defaults and says so).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from dealscore.data.history import DealHistory


def _stage_visits(history: DealHistory, deal_ids: pd.Index) -> pd.DataFrame:
    """One row per stage visit of the given deals: deal, stage, start, days in stage."""
    sh = history.stage_history
    sh = sh[sh["deal_id"].isin(deal_ids)].sort_values(["deal_id", "changed_at"], kind="stable")
    if sh.empty:
        return pd.DataFrame(columns=["deal_id", "stage", "changed_at", "days"])
    closed = history.deals.set_index("deal_id")["closed_at"]
    nxt = sh.groupby("deal_id")["changed_at"].shift(-1)
    end = nxt.fillna(sh["deal_id"].map(closed))
    days = (end - sh["changed_at"]).dt.total_seconds() / 86400.0
    return pd.DataFrame({"deal_id": sh["deal_id"].to_numpy(), "stage": sh["stage"].to_numpy(),
                         "changed_at": sh["changed_at"].to_numpy(), "days": days.to_numpy()})


def _touch_gaps(history: DealHistory, deal_ids: pd.Index) -> pd.DataFrame:
    """Gaps (days) between consecutive touchpoints, labelled with the stage at the later one."""
    acts = history.activities
    acts = acts[acts["deal_id"].isin(deal_ids)][["deal_id", "occurred_at"]].sort_values(
        ["deal_id", "occurred_at"], kind="stable")
    if acts.empty:
        return pd.DataFrame(columns=["stage", "gap"])
    gap = acts.groupby("deal_id")["occurred_at"].diff().dt.total_seconds() / 86400.0
    acts = acts.assign(gap=gap.to_numpy()).dropna(subset=["gap"])
    sh = history.stage_history[history.stage_history["deal_id"].isin(deal_ids)][["deal_id", "changed_at", "stage"]]
    merged = pd.merge_asof(
        acts.sort_values("occurred_at", kind="stable"), sh.sort_values("changed_at", kind="stable"),
        left_on="occurred_at", right_on="changed_at", by="deal_id", direction="backward",
    )
    return merged[["stage", "gap"]]


def learn_stage_stats(
    history: DealHistory, train_deal_ids: pd.Index, win_rates: Mapping[str, float], *, min_deals: int = 5
) -> dict[str, Any]:
    """Norms per declared stage from the training slice's won deals (see module docstring)."""
    deals = history.deals
    won_ids = pd.Index(deals.loc[deals["deal_id"].isin(train_deal_ids) & (deals["outcome"] == "won"), "deal_id"])
    visits = _stage_visits(history, won_ids)
    gaps = _touch_gaps(history, won_ids)
    stages: dict[str, dict[str, Any]] = {}
    names = sorted(set(visits["stage"].dropna()) | set(win_rates) - {"__missing__"})
    for stage in names:
        v = visits[visits["stage"] == stage]
        g = gaps[gaps["stage"] == stage]["gap"].to_numpy(dtype=float)
        enough = v["deal_id"].nunique() >= min_deals
        days = v["days"].dropna().to_numpy(dtype=float)
        stages[str(stage)] = {
            "win_rate": win_rates.get(stage),
            "median_days_in_stage_won": float(np.median(days)) if enough and len(days) else None,
            "p90_days_in_stage_won": float(np.quantile(days, 0.9)) if enough and len(days) else None,
            "p90_gap_days": float(np.quantile(g, 0.9)) if enough and len(g) else None,
            "n_won_deals": int(v["deal_id"].nunique()),
        }
    all_gaps = gaps["gap"].to_numpy(dtype=float)
    all_days = visits["days"].dropna().to_numpy(dtype=float)
    overall = {
        "win_rate": float((deals.loc[deals["deal_id"].isin(train_deal_ids), "outcome"] == "won").mean())
        if len(train_deal_ids) else None,
        "p90_gap_days": float(np.quantile(all_gaps, 0.9)) if len(all_gaps) else None,
        "median_days_in_stage_won": float(np.median(all_days)) if len(all_days) else None,
        "p90_days_in_stage_won": float(np.quantile(all_days, 0.9)) if len(all_days) else None,
        "n_won_deals": len(won_ids),
    }
    return {"stages": stages, "overall": overall, "source": "won deals of the training slice"}
