"""Straightforward per-snapshot feature computation: the peer of bench_features.py and the tests' oracle.

For every snapshot it filters the history's tables down to what was visible at
``as_of`` and computes each feature directly from its definition in
docs/features.md, with no sorting tricks and no shared code with
``dealscore.features`` beyond the spec (names, vocabularies). Being slow and
obvious is the point: the vectorised pipeline must agree with it exactly.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from dealscore.data.history import DealHistory
from dealscore.features.spec import KEY_TYPES, FeatureSpec

DAY = pd.Timedelta(days=1)
WEEK_ANCHOR = pd.Timestamp("1970-01-05")
OWNER_K, ACCOUNT_K = 10.0, 5.0


def _days(delta: pd.Timedelta) -> float:
    return delta.value / DAY.value


def _seen(frame: pd.DataFrame, event: str) -> pd.Series:
    """When a fact had both happened and been recorded."""
    if "recorded_at" not in frame:
        return frame[event]
    rec = frame["recorded_at"]
    return frame[event].where(rec.isna() | (rec <= frame[event]), rec)


def _stage_rows(history: DealHistory, deal_id: str, as_of: pd.Timestamp) -> pd.DataFrame:
    sh = history.stage_history
    rows = sh[sh["deal_id"] == deal_id].copy()
    rows["seen"] = _seen(rows, "changed_at")
    rows = rows[rows["seen"] <= as_of]
    return rows.sort_values(["seen", "changed_at"], kind="stable")


def _runs(rows: pd.DataFrame) -> list[tuple[str, pd.Timestamp]]:
    """(stage, entered at) for each run of equal stages, in visible order."""
    runs: list[tuple[str, pd.Timestamp]] = []
    for stage, changed in zip(rows["stage"], rows["changed_at"], strict=True):
        if not runs or runs[-1][0] != stage:
            runs.append((stage, changed))
    return runs


_DURATIONS: dict[tuple[int, str], dict[str, float]] = {}


def won_deal_durations(history: DealHistory, deal_id: str, closed: pd.Timestamp) -> dict[str, float]:
    """Days a won deal spent in each stage, from its stage history as it stood at the close (cached)."""
    key = (id(history), deal_id)
    if key not in _DURATIONS:
        runs = _runs(_stage_rows(history, deal_id, closed))
        totals: dict[str, float] = {}
        for i, (stage, begin) in enumerate(runs):
            end = runs[i + 1][1] if i + 1 < len(runs) else closed
            totals[stage] = totals.get(stage, 0.0) + max(_days(end - begin), 0.0)
        _DURATIONS[key] = totals
    return _DURATIONS[key]


def stage_medians(history: DealHistory, stages: list[str], checkpoint: pd.Timestamp) -> dict[str, float]:
    """Median days won deals closed before the checkpoint spent in each stage."""
    d = history.deals
    won = d[(d["outcome"] == "won") & d["closed_at"].notna() & (d["closed_at"] < checkpoint)]
    per_stage: dict[str, list[float]] = {s: [] for s in stages}
    for deal_id, closed in zip(won["deal_id"], won["closed_at"], strict=True):
        for stage, days in won_deal_durations(history, deal_id, closed).items():
            per_stage[stage].append(days)
    return {s: float(np.median(v)) if v else math.nan for s, v in per_stage.items()}


def _rate(wins: float, n: float, prior: float, k: float) -> float:
    return (wins + k * prior) / (n + k)


def reference_features(history: DealHistory, snapshots: pd.DataFrame, spec: FeatureSpec | None = None
                       ) -> pd.DataFrame:
    """Features of each snapshot, computed one snapshot at a time from the definitions."""
    spec = spec or FeatureSpec.default()
    stages = spec.stages
    order = {s: i + 1 for i, s in enumerate(stages)}
    d = history.deals
    acc = history.accounts.set_index("account_id")
    cut = history.data_cut
    acts_all = history.activities.copy()
    acts_all["seen"] = _seen(acts_all, "occurred_at")
    norm_cache: dict[pd.Timestamp, dict[str, float]] = {}
    _DURATIONS.clear()
    rows: list[dict[str, Any]] = []
    for deal_id, t in zip(snapshots["deal_id"], snapshots["as_of"], strict=True):
        t = pd.Timestamp(t)
        deal = d[d["deal_id"] == deal_id].iloc[0]
        f: dict[str, Any] = {"deal_id": deal_id, "as_of": t}
        # ---- stage
        sr = _stage_rows(history, deal_id, t)
        runs = _runs(sr)
        if len(sr):
            cur = sr.iloc[-1]
            f["declared_stage"] = cur["stage"]
            f["declared_stage_order"] = float(order[cur["stage"]])
            f["days_in_stage"] = _days(t - runs[-1][1])
            f["days_since_stage_update"] = _days(t - cur["seen"])
            f["max_stage_order"] = float(max(order[s] for s in sr["stage"]))
        else:
            f["declared_stage"] = None
            for k in ("declared_stage_order", "days_in_stage", "days_since_stage_update", "max_stage_order"):
                f[k] = math.nan
        seq = [order[s] for s in sr["stage"]]
        steps = [b - a for a, b in pairwise(seq)]
        f["n_stage_changes"] = float(sum(1 for s in steps if s != 0))
        f["n_regressions"] = float(sum(1 for s in steps if s < 0))
        f["n_skipped_stages"] = float(sum(s - 1 for s in steps if s > 1))
        ecds = [e for e in sr["expected_close_date"] if not pd.isna(e)]
        f["close_date_pushes"] = float(sum(1 for a, b in pairwise(ecds) if b > a))
        amounts = [a for a in sr["amount"] if not pd.isna(a)]
        f["amount"] = float(amounts[-1]) if amounts else float(deal["amount"])
        if ecds:
            ecd = ecds[-1]
        elif t >= cut:
            ecd = deal["expected_close_date"]
        else:
            ecd = pd.NaT
        f["days_to_expected_close"] = math.nan if pd.isna(ecd) else _days(ecd - t)
        f["deal_age_days"] = _days(t - deal["created_at"])
        cp = WEEK_ANCHOR + ((t - WEEK_ANCHOR) // pd.Timedelta(days=7)) * pd.Timedelta(days=7)
        if cp not in norm_cache:
            norm_cache[cp] = stage_medians(history, stages, cp)
        med = norm_cache[cp].get(f["declared_stage"], math.nan) if f["declared_stage"] else math.nan
        f["stage_median_days_won"] = med
        f["stage_time_ratio"] = f["days_in_stage"] / max(med, 1.0) if not math.isnan(med) else math.nan
        # ---- touchpoints
        a = acts_all[(acts_all["deal_id"] == deal_id) & (acts_all["seen"] <= t)]
        inbound, outbound = a[a["direction"] == "inbound"], a[a["direction"] == "outbound"]
        for w in (7, 30, 90):
            f[f"n_touches_{w}d"] = float((a["occurred_at"] > t - w * DAY).sum())
        f["n_touches_total"] = float(len(a))
        for typ in spec.activity_types:
            at = a[a["type"] == typ]
            for w in (7, 30, 90):
                f[f"n_{typ}_{w}d"] = float((at["occurred_at"] > t - w * DAY).sum())
            f[f"n_{typ}_total"] = float(len(at))
        last30 = (a["occurred_at"] > t - 30 * DAY).sum()
        prev30 = ((a["occurred_at"] > t - 60 * DAY) & (a["occurred_at"] <= t - 30 * DAY)).sum()
        f["touch_trend"] = math.log2((last30 + 1) / (prev30 + 1))
        f["days_since_last_touch"] = _days(t - a["occurred_at"].max()) if len(a) else math.nan
        f["n_inbound_30d"] = float((inbound["occurred_at"] > t - 30 * DAY).sum())
        f["n_outbound_30d"] = float((outbound["occurred_at"] > t - 30 * DAY).sum())
        f["n_inbound_total"], f["n_outbound_total"] = float(len(inbound)), float(len(outbound))
        directed = len(inbound) + len(outbound)
        f["inbound_share"] = len(inbound) / directed if directed else math.nan
        first_out = outbound["occurred_at"].min() if len(outbound) else pd.NaT
        replies = float((inbound["occurred_at"] > first_out).sum()) if len(outbound) else 0.0
        f["n_replies"] = replies
        f["reply_rate"] = replies / len(outbound) if len(outbound) else math.nan
        last_in = inbound["occurred_at"].max() if len(inbound) else pd.NaT
        f["n_outbound_unanswered"] = float(
            len(outbound) if pd.isna(last_in) else (outbound["occurred_at"] > last_in).sum()
        )
        f["days_since_last_inbound"] = _days(t - last_in) if len(inbound) else math.nan
        f["n_contacts"] = float(a["contact_id"].dropna().nunique())
        f["decision_maker_engaged"] = float((a["contact_role"] == "decision_maker").any())
        f["champion_engaged"] = float((a["contact_role"] == "champion").any())
        for typ in KEY_TYPES:
            at = a[a["type"] == typ]
            f[f"has_{typ}"] = float(len(at) > 0)
            f[f"days_since_last_{typ}"] = _days(t - at["occurred_at"].max()) if len(at) else math.nan
        f["pricing_discussed"] = float(a["type"].isin(["proposal", "contract"]).any())
        facts = {
            "outbound_touch": len(outbound) > 0, "inbound_reply": len(inbound) > 0,
            "first_meeting": f["has_meeting"] > 0, "meeting": f["has_meeting"] > 0,
            "decision_maker": f["decision_maker_engaged"] > 0, "champion": f["champion_engaged"] > 0,
        }
        reached = 0.0
        for i, s in enumerate(stages, start=1):
            tokens = spec.evidence.get(s, [])
            if not tokens:
                f[f"evidence_{s}"] = math.nan
                continue
            share = float(np.mean([facts[k] if k in facts else (a["type"] == k).any() for k in tokens]))
            f[f"evidence_{s}"] = share
            if share >= 1.0:
                reached = float(i)
        f["evidence_stage_order"] = reached
        # ---- profile
        account = acc.loc[deal["account_id"]] if deal["account_id"] in acc.index else None
        for key, col in (("industry", "industry"), ("region", "region")):
            f[key] = None if account is None else account.get(col)
        f["employees"] = math.nan if account is None else float(account.get("employees", math.nan))
        revenue = math.nan if account is None else float(account.get("annual_revenue", math.nan))
        f["annual_revenue"] = revenue
        created = None if account is None else account.get("created_at")
        f["account_age_days"] = math.nan if created is None or pd.isna(created) else _days(t - created)
        f["amount_to_revenue"] = f["amount"] / revenue if revenue > 0 else math.nan
        f["product"], f["source"] = deal.get("product"), deal.get("source")
        # ---- other deals, closed before as_of
        others = d[d["deal_id"] != deal_id]
        closed = others[others["closed_at"].notna() & (others["closed_at"] < t)]
        prior = (closed["outcome"] == "won").mean() if len(closed) else math.nan
        mine = closed[closed["owner_id"] == deal["owner_id"]]
        f["owner_closed_deals"] = float(len(mine))
        f["owner_win_rate"] = _rate(float((mine["outcome"] == "won").sum()), len(mine), prior, OWNER_K)
        owner_all = others[(others["owner_id"] == deal["owner_id"]) & (others["created_at"] <= t)]
        f["owner_open_deals"] = float((owner_all["closed_at"].isna() | (owner_all["closed_at"] > t)).sum())
        account_all = others[others["account_id"] == deal["account_id"]]
        f["account_prior_deals"] = float((account_all["created_at"] <= t).sum())
        acc_closed = closed[closed["account_id"] == deal["account_id"]]
        f["account_closed_deals"] = float(len(acc_closed))
        f["account_win_rate"] = _rate(float((acc_closed["outcome"] == "won").sum()), len(acc_closed), prior,
                                      ACCOUNT_K)
        rows.append(f)
    frame = pd.DataFrame(rows, columns=["deal_id", "as_of", *spec.feature_names])
    for name in spec.categorical_names:
        frame[name] = pd.Categorical(frame[name].astype(object), dtype=spec.dtype(name, frame[name]))
    frame.index = snapshots.index
    return frame
