"""Per-stage norms stored in the bundle (``bundle.stage_stats``) for warnings and at-risk.

Learned only from the training slice (deals created and closed before the
evaluation periods), so warnings in an evaluation never use the future:
- ``win_rate``: share of snapshots in the declared stage whose deal was won;
- ``median_days_in_stage_won`` / ``p90_days_in_stage_won``: time won deals spent
  in each declared stage (one figure per stage visit);
- ``p90_gap_days``: the 90th percentile gap between consecutive touchpoints of
  won deals, attributed to the stage the deal was in at the later touchpoint.

The norms are compared with point-in-time features of open deals (``days_in_stage``
by the stalled warning), so they read the won deals' stages as the CRM showed them
while the deals were open, the way the features do (``dealscore.features.stage``):
a stage row counts from when it was entered (``recorded_at`` when later than
``changed_at``), rows entered after the close never counted, and a visit is a run
of rows in one stage (a row that only updates the amount or the close date does
not start a new visit, as it does not reset ``days_in_stage``). A visit lasts from
its first row's ``changed_at`` (where ``days_in_stage`` counts from) until the CRM
showed the next stage, or the close: the most ``days_in_stage`` the won deal showed.
Stages with fewer than ``min_deals`` won deals get ``None`` (the scoring layer
then uses documented defaults and says so).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from dealscore.data.history import DealHistory, known_time


def _shown_stage_rows(history: DealHistory, deal_ids: pd.Index) -> pd.DataFrame:
    """The deals' stage rows the CRM showed before each deal closed, in the order it showed them.

    Columns: deal_id, stage, changed_at, seen (when the row was entered), closed.
    """
    sh = history.stage_history
    sh = sh[sh["deal_id"].isin(deal_ids)]
    closed = history.deals.set_index("deal_id")["closed_at"]
    rows = pd.DataFrame({"deal_id": sh["deal_id"].to_numpy(dtype=object), "stage": sh["stage"].to_numpy(dtype=object),
                         "changed_at": sh["changed_at"].to_numpy("datetime64[ns]"),
                         "seen": known_time(sh, "changed_at").to_numpy("datetime64[ns]"),
                         "closed": sh["deal_id"].map(closed).to_numpy("datetime64[ns]")})
    rows = rows[rows["seen"] <= rows["closed"]]
    return rows.sort_values(["deal_id", "seen", "changed_at"], kind="stable").reset_index(drop=True)


def _stage_visits(history: DealHistory, deal_ids: pd.Index) -> pd.DataFrame:
    """One row per stage visit of the given (closed) deals: deal, stage, start, days in stage (module docstring)."""
    rows = _shown_stage_rows(history, deal_ids)
    if rows.empty:
        return pd.DataFrame(columns=["deal_id", "stage", "changed_at", "days"])
    deal, stage = rows["deal_id"], rows["stage"]
    runs = rows[(deal != deal.shift()) | (stage != stage.shift())]
    same_deal_next = runs["deal_id"].shift(-1) == runs["deal_id"]
    end = runs["seen"].shift(-1).where(same_deal_next, runs["closed"])
    days = ((end - runs["changed_at"]).dt.total_seconds() / 86400.0).clip(lower=0.0)
    return pd.DataFrame({"deal_id": runs["deal_id"].to_numpy(), "stage": runs["stage"].to_numpy(),
                         "changed_at": runs["changed_at"].to_numpy(), "days": days.to_numpy()})


def _touch_gaps(history: DealHistory, deal_ids: pd.Index) -> pd.DataFrame:
    """Gaps (days) between consecutive touchpoints, labelled with the stage the CRM showed at the later one."""
    acts = history.activities
    acts = acts[acts["deal_id"].isin(deal_ids)][["deal_id", "occurred_at"]].sort_values(
        ["deal_id", "occurred_at"], kind="stable")
    if acts.empty:
        return pd.DataFrame(columns=["stage", "gap"])
    gap = acts.groupby("deal_id")["occurred_at"].diff().dt.total_seconds() / 86400.0
    acts = acts.assign(gap=gap.to_numpy()).dropna(subset=["gap"])
    shown = _shown_stage_rows(history, deal_ids)[["deal_id", "seen", "stage"]]
    merged = pd.merge_asof(
        acts.assign(deal_id=acts["deal_id"].to_numpy(dtype=object),
                    occurred_at=acts["occurred_at"].to_numpy("datetime64[ns]")).sort_values(
            "occurred_at", kind="stable"),
        shown.sort_values("seen", kind="stable"),  # stable: rows entered at once keep their order, the last wins
        left_on="occurred_at", right_on="seen", by="deal_id", direction="backward",
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
