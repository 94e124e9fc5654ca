"""Replay past quarters: forecast each team's bookings from the history as it looked then, compare with what was booked.

For each past quarter and each chosen week of it (week 2 by default), the
forecast time ``T`` is the start of that week. Everything is computed from
``history.as_known_at(T)``: the open deals and their scores, the pipeline
creation rates, what was already booked, and the three peers
(:mod:`dealscore.forecast.peers`). The model bundle is passed in: it must have
been trained on the history as known at or before the first forecast time (the
CLI and the benchmark train it on ``history.as_known_at(first T)``), so no
forecast uses a model that saw its own outcomes.

Metrics per method over team × quarter cells with bookings > 0: MAPE, bias
(Σ(forecast − actual) / Σ actual), coverage of P10–P90 (the model only), and
CRPS (for a point forecast it is the absolute error, so all share one scale).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dealscore.data.history import DealHistory
from dealscore.errors import InsufficientDataError
from dealscore.features import build_features, scoring_snapshots
from dealscore.forecast.calibration import WindowCache
from dealscore.forecast.creation import NO_GROUP, PipelineCreationModel
from dealscore.forecast.engine import booked_so_far, fit_open_calibration, forecast_pipeline, pipeline_from_blocks
from dealscore.forecast.montecarlo import crps_from_draws
from dealscore.forecast.peers import PEERS, bookings, peer_forecasts
from dealscore.forecast.periods import Period, instant, quarters_between
from dealscore.scoring import Scorer

METHODS: tuple[str, ...] = ("model", *PEERS)
#: The model without its open-deal calibration, reported beside it (what the calibration step adds).
UNCALIBRATED = "model_uncalibrated"
Progress = Callable[[str], None]


@dataclass
class BacktestResult:
    """Per-cell rows (quarter × week × team) and the summary per method."""

    rows: pd.DataFrame
    summary: pd.DataFrame
    quarters: list[Period]
    trained_at: pd.Timestamp


def backtest_quarters(history: DealHistory, *, min_history_days: float = 365.0) -> list[Period]:
    """Full past quarters with at least ``min_history_days`` of history before them (the run rate needs a year)."""
    first = instant(history.deals["created_at"].min()) + pd.Timedelta(days=min_history_days)
    quarters = quarters_between(first, instant(history.data_cut))
    if not quarters:
        raise InsufficientDataError(
            f"no full quarter after the first {min_history_days:.0f} days of history to backtest on",
            fix="backtest on a history spanning at least five quarters",
        )
    return quarters


def forecast_times(quarters: Sequence[Period], weeks: Sequence[int]) -> list[tuple[Period, int, pd.Timestamp]]:
    """(quarter, week, T) for each quarter and week number (week 1 starts on the quarter's first day)."""
    out = []
    for q in quarters:
        for w in weeks:
            t = q.start + pd.Timedelta(days=7 * (w - 1))
            if t < q.end:
                out.append((q, int(w), t))
    return out


def run_backtest(history: DealHistory, bundle: Any, quarters: Sequence[Period], *, weeks: Sequence[int] = (2,),
                 group: str = "team", n_sims: int = 1000, seed: int = 0, progress: Progress | None = None,
                 ) -> BacktestResult:
    """Forecast every (quarter, week, team) cell from the truncated history and score it against bookings."""
    say = progress or (lambda _: None)
    scorer = Scorer(bundle)
    rows = []
    times = forecast_times(quarters, weeks)
    cache = WindowCache()
    for q, w, t in times:
        say(f"{q.label} week {w}: forecasting as of {t:%Y-%m-%d}")
        past = history.as_known_at(t)
        blocks = list(scorer.score_blocks(past, t, explain=False, actions=False))
        pipe = pipeline_from_blocks(blocks)
        by = "team" if group == "team" else "owner"
        creation = PipelineCreationModel(group=group, pool="team").fit(past, t)
        # learned from windows that ended by t, read from the history as known at t
        calibration = fit_open_calibration(past, scorer, t, cache=cache)
        so_far = booked_so_far(past.deals, t, [q], by)
        fc = forecast_pipeline(pipe, t, kind="quarter", by=by, creation=creation, booked=so_far, n_sims=n_sims,
                               seed=seed, calibration=calibration)
        raw = forecast_pipeline(pipe, t, kind="quarter", by=by, creation=creation, booked=so_far, n_sims=n_sims,
                                seed=seed)
        opened = _won_in(history, pipe.deal_id, q, group)
        open_deals = _open_deal_frame(past, t, bundle, blocks, group)
        peers = peer_forecasts(past, t, q, open_deals, group)
        booked = bookings(past, q.start, q.end, group, until=t)
        actual = bookings(history, q.start, q.end, group)
        teams = sorted(set(actual.index) | set(fc.table["group"]) - {"company"})
        for g in teams:
            sel = fc.table[(fc.table["group"] == g) & (fc.table["period"] == q.label)]
            rsel = raw.table[(raw.table["group"] == g) & (raw.table["period"] == q.label)]
            draws = fc.draws.get(f"{g}|{q.label}")
            b = float(booked.get(g, 0.0))
            act = float(actual.get(g, 0.0))
            row = {
                "quarter": q.label, "week": w, "as_of": t, "group": g, "actual": float(actual.get(g, 0.0)),
                "booked_at_forecast": b,
                "model": float(sel["p50"].iloc[0]) if len(sel) else b,
                "model_mean": float(sel["expected"].iloc[0]) if len(sel) else b,
                "model_p10": float(sel["p10"].iloc[0]) if len(sel) else b,
                "model_p90": float(sel["p90"].iloc[0]) if len(sel) else b,
                "model_crps": crps_from_draws(draws, act) if draws is not None else abs(b - act),
                UNCALIBRATED: float(rsel["p50"].iloc[0]) if len(rsel) else b,
                f"{UNCALIBRATED}_p10": float(rsel["p10"].iloc[0]) if len(rsel) else b,
                f"{UNCALIBRATED}_p90": float(rsel["p90"].iloc[0]) if len(rsel) else b,
                f"{UNCALIBRATED}_crps": crps_from_draws(raw.draws[f"{g}|{q.label}"], act)
                if f"{g}|{q.label}" in raw.draws else abs(b - act),
                # the bias decomposition: open deals and deals not created yet, forecast (mean) vs booked
                "open_expected": float(sel["open_expected"].iloc[0]) if len(sel) else 0.0,
                "open_expected_uncalibrated": float(rsel["open_expected"].iloc[0]) if len(rsel) else 0.0,
                "actual_open": float(opened.get(g, 0.0)),
                "new_expected": float(sel["new_expected"].iloc[0]) if len(sel) else 0.0,
                "calibration_ratio": float(calibration.ratio_), "calibration_spread": float(calibration.spread_),
                "calibration_ratio_sd": float(getattr(calibration, "ratio_sd_", 0.0)),
            }
            row["actual_new"] = act - b - row["actual_open"]
            for p in PEERS:
                extra = float(peers[p].get(g, 0.0)) if p in peers else 0.0
                row[p] = extra if p == "run_rate" else b + extra
            rows.append(row)
    frame = pd.DataFrame(rows)
    trained = instant(bundle.training_window.get("cut_at") or times[0][2]) if times else pd.NaT
    return BacktestResult(rows=frame, summary=summarize(frame), quarters=list(quarters), trained_at=trained)


def _won_in(history: DealHistory, deal_ids: np.ndarray, q: Period, group: str) -> pd.Series:
    """Won amount per group, inside quarter ``q``, of the given deals (those open at the forecast time)."""
    d = history.deals
    sel = d["deal_id"].isin(pd.Index(deal_ids.astype(str))) & (d["outcome"] == "won") & (d["closed_at"] >= q.start) \
        & (d["closed_at"] < q.end)
    keys = d[group].astype(object).where(d[group].notna(), NO_GROUP).astype(str)
    return d.loc[sel, "amount"].fillna(0.0).groupby(keys[sel]).sum().astype(float)


def _open_deal_frame(past: DealHistory, t: pd.Timestamp, bundle: Any, blocks: list[Any], group: str) -> pd.DataFrame:
    """Open deals at ``t`` with their scores and the CRM fields the peers read (declared stage, expected close)."""
    snaps = scoring_snapshots(past, t)
    feats = build_features(past, snaps, spec=bundle.spec, taxonomy=bundle.taxonomy)
    scored = pd.DataFrame({
        "deal_id": np.concatenate([b.deal_id for b in blocks]) if blocks else [],
        "p_win": np.concatenate([b.p_win for b in blocks]) if blocks else [],
        "amount": np.concatenate([b.amount for b in blocks]) if blocks else [],
        "declared_stage": np.concatenate([b.declared_stage for b in blocks]) if blocks else [],
    })
    meta = past.deals.set_index("deal_id")[group]
    scored[group] = scored["deal_id"].map(meta).to_numpy()
    exp = feats.set_index("deal_id")["days_to_expected_close"]
    scored["days_to_expected_close"] = scored["deal_id"].map(exp).to_numpy(dtype=float)
    return scored


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """MAPE, bias, P10–P90 coverage and CRPS per method (cells with bookings > 0), one row per method and week."""
    out = []
    if not len(rows):
        return pd.DataFrame(columns=["week", "method", "cells", "mape", "bias", "coverage_p10_p90", "crps"])
    for w, sub in rows.groupby("week"):
        cells = sub[sub["actual"] > 0]
        a = cells["actual"].to_numpy(dtype=float)
        for m in (*METHODS, UNCALIBRATED):
            if m not in cells:
                continue
            f = cells[m].to_numpy(dtype=float)
            ranged = m in ("model", UNCALIBRATED)
            crps = cells[f"{m}_crps"].to_numpy(dtype=float) if ranged else np.abs(f - a)
            cover = (float(((cells[f"{m}_p10"] <= a) & (a <= cells[f"{m}_p90"])).mean()) if ranged
                     else np.nan)
            out.append({"week": int(w), "method": m, "cells": len(cells),
                        "mape": float(np.mean(np.abs(f - a) / a)), "bias": float((f - a).sum() / a.sum()),
                        "coverage_p10_p90": cover, "crps": float(crps.mean())})
    return pd.DataFrame(out)


def backtest_figures(result: BacktestResult) -> dict[str, Figure]:
    """Forecast vs actual per cell (model range as error bars, peers as points) and MAPE per method."""
    rows = result.rows
    figs: dict[str, Figure] = {}
    fig = Figure(figsize=(7, 6))
    ax = fig.subplots()
    wk = rows[rows["week"] == rows["week"].min()]
    lo = np.maximum(wk["model"] - wk["model_p10"], 0)
    hi = np.maximum(wk["model_p90"] - wk["model"], 0)
    ax.errorbar(wk["actual"], wk["model"], yerr=[lo, hi], fmt="o", ms=3, alpha=0.6, label="model (P10–P90)")
    ax.scatter(wk["actual"], wk["weighted_pipeline"], s=8, alpha=0.6, label="weighted pipeline")
    top = float(max(wk["actual"].max(), wk["model_p90"].max(), 1.0))
    ax.plot([0, top], [0, top], color="grey", lw=1)
    ax.set_xlabel("booked (actual)")
    ax.set_ylabel("forecast")
    ax.set_title(f"Team × quarter forecasts, week {int(wk['week'].min())}")
    ax.legend(loc="upper left", fontsize=8)
    figs["forecast_vs_actual.png"] = fig
    summ = result.summary
    fig2 = Figure(figsize=(7, 4))
    ax2 = fig2.subplots()
    for m in METHODS:
        s = summ[summ["method"] == m]
        ax2.plot(s["week"], s["mape"], marker="o", label=m)
    ax2.set_xlabel("week of quarter")
    ax2.set_ylabel("MAPE")
    ax2.set_title("Team × quarter MAPE by forecast week")
    ax2.legend(fontsize=8)
    figs["mape_by_week.png"] = fig2
    return figs




def bias_parts(rows: pd.DataFrame) -> pd.DataFrame:
    """Where the bias comes from, per week: open deals (calibrated and not) and deals not created yet.

    Each part is Σ(forecast mean − booked) over all cells, divided by Σ booked in the
    quarter, so the parts add up to the mean forecast's bias (booked-so-far is exact).
    """
    out = []
    for w, sub in rows.groupby("week"):
        total = float(sub["actual"].sum()) or 1.0
        out.append({
            "week": int(w),
            "open": float((sub["open_expected"] - sub["actual_open"]).sum()) / total,
            "open_uncalibrated": float((sub["open_expected_uncalibrated"] - sub["actual_open"]).sum()) / total,
            "new_pipeline": float((sub["new_expected"] - sub["actual_new"]).sum()) / total,
            "calibration_ratio": float(sub["calibration_ratio"].mean()),
            "calibration_spread": float(sub["calibration_spread"].mean()),
            "calibration_ratio_sd": float(sub["calibration_ratio_sd"].mean()),
        })
    return pd.DataFrame(out)


__all__ = ["METHODS", "UNCALIBRATED", "BacktestResult", "backtest_figures", "backtest_quarters", "bias_parts",
           "forecast_times", "run_backtest", "summarize"]
