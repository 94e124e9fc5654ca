"""Aggregate figures of a simulated CRM: what docs/simulator.md quotes and the tests check.

They are computed from the history as exported (closed deals at the cut) plus,
for stage agreement, the audited real stages, so the same numbers describe what a
user of the generated folder would see.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dealscore.data.simulate.config import STAGES
from dealscore.data.simulate.core import SimulatedCRM

_SHIFT = np.int64(2) ** 34  # seconds since 1970 fit below it until the year 2514


def _seconds(t: np.ndarray) -> np.ndarray:
    """Whole seconds since 1970 (floor), as int64."""
    return t.astype("datetime64[ns]").astype("datetime64[s]").astype(np.int64)


def _stage_at(frame: pd.DataFrame, time_col: str, deals: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Order (0-5) of the last stage row of each deal at or before t; -1 when none."""
    f = frame.sort_values(["deal_id", time_col], kind="stable")
    codes, uniques = pd.factorize(f["deal_id"], sort=True)
    keys = codes.astype(np.int64) * _SHIFT + _seconds(f[time_col].to_numpy())
    q_codes = pd.Index(uniques).get_indexer(deals)
    q_keys = q_codes.astype(np.int64) * _SHIFT + _seconds(np.asarray(t))
    pos = np.searchsorted(keys, q_keys, side="right") - 1
    ok = (q_codes >= 0) & (pos >= 0) & (codes[np.maximum(pos, 0)] == q_codes)
    order = pd.Index(STAGES).get_indexer(f["stage"]).astype(np.int64)
    return np.where(ok, order[np.maximum(pos, 0)], -1)


def weekly_snapshots(sim: SimulatedCRM) -> pd.DataFrame:
    """(deal_id, as_of) every 7 days from one day after creation while the deal is open, up to the cut."""
    d = sim.history.deals
    cut = sim.history.data_cut
    end = d["closed_at"].fillna(cut).to_numpy()
    created = d["created_at"].to_numpy()
    n = ((end - created) / np.timedelta64(7, "D")).astype(np.int64) + 1
    n = np.maximum(n, 0)
    rep = np.repeat(np.arange(len(d)), n)
    k = np.arange(len(rep)) - np.repeat(np.cumsum(n) - n, n)
    as_of = created[rep] + (1 + 7 * k) * np.timedelta64(1, "D")
    keep = as_of < end[rep]
    return pd.DataFrame({"deal_id": d["deal_id"].to_numpy()[rep][keep], "as_of": as_of[keep]})


def aggregate_figures(sim: SimulatedCRM) -> dict[str, float]:
    """Headline figures: outcomes, cycle, touchpoints, declared-vs-real stage agreement, episodes."""
    h = sim.history
    d = h.deals
    closed = d[d["outcome"].notna()]
    cycle = (closed["closed_at"] - closed["created_at"]) / pd.Timedelta(days=1)
    touches = h.activities.groupby("deal_id").size().reindex(closed["deal_id"], fill_value=0).to_numpy()
    won = closed["outcome"].to_numpy() == "won"

    snaps = weekly_snapshots(sim)
    sh = h.stage_history.assign(known=h.stage_history[["changed_at", "recorded_at"]].max(axis=1))
    declared = _stage_at(sh, "known", snaps["deal_id"].to_numpy(), snaps["as_of"].to_numpy())
    assert h.stage_truth is not None
    real = _stage_at(h.stage_truth, "as_of", snaps["deal_id"].to_numpy(), snaps["as_of"].to_numpy())
    valid = (declared >= 0) & (real >= 0)
    truth = sim.truth["deal_truth"].set_index("deal_id").loc[closed["deal_id"]]
    acts = h.activities
    pushes = h.stage_history["deal_id"].eq(h.stage_history["deal_id"].shift()) & (
        h.stage_history["expected_close_date"] > h.stage_history["expected_close_date"].shift())
    return {
        "deals": float(len(d)),
        "accounts": float(len(h.accounts)),
        "owners": float(d["owner_id"].nunique()),
        "activities": float(len(acts)),
        "stage_history_rows": float(len(h.stage_history)),
        "open_deals": float(d["outcome"].isna().sum()),
        "won_deals": float(won.sum()),
        "lost_deals": float((~won).sum()),
        "win_rate": float(won.mean()) if len(won) else float("nan"),
        "median_cycle_days": float(np.median(cycle)) if len(cycle) else float("nan"),
        "median_cycle_days_won": float(np.median(cycle[won])) if won.any() else float("nan"),
        "median_cycle_days_lost": float(np.median(cycle[~won])) if (~won).any() else float("nan"),
        "touches_median": float(np.median(touches)) if len(touches) else float("nan"),
        "touches_p05": float(np.quantile(touches, 0.05)) if len(touches) else float("nan"),
        "touches_p95": float(np.quantile(touches, 0.95)) if len(touches) else float("nan"),
        "touches_share_5_80": float(((touches >= 5) & (touches <= 80)).mean()) if len(touches) else float("nan"),
        "declared_real_agreement": float((declared[valid] == real[valid]).mean()),
        "declared_ahead": float((declared[valid] > real[valid]).mean()),
        "declared_behind": float((declared[valid] < real[valid]).mean()),
        "stalled_share": float(truth["stalled"].mean()),
        "gone_quiet_share": float(truth["gone_quiet"].mean()),
        "gone_quiet_share_lost": float(truth["gone_quiet"][~won].mean()) if (~won).any() else float("nan"),
        "single_threaded_share": float(truth["single_threaded"].mean()),
        "activities_logged_late": float((acts["recorded_at"] > acts["occurred_at"]).mean()),
        "close_date_pushes_per_deal": float(pushes.sum() / max(len(d), 1)),
    }
