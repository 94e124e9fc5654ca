"""Forecast quality and speed on every simulator preset: backtest beside three peers, then timings.

For each preset it simulates ``--deals`` deals over ``--quarters`` quarters,
trains a bundle on the history as known at the first forecast time (week 2 of
the first backtest quarter; a model that saw later outcomes would flatter
itself), and replays every later full quarter: team × quarter bookings forecast
in week 2 from the truncated history, against what was booked. Peers on the same
dates: weighted pipeline (amount × stage win rate, close date in the quarter),
reps' close dates at face value (× the model's p_win) and the run rate of the
last four quarters (see dealscore.forecast.peers).

Targets (issue 19): model MAPE ≥ 30% below the weighted pipeline's and below
each other peer's; P10–P90 coverage in [70%, 90%]. Speed: the whole company's
forecast for 5,000 open deals (Monte Carlo + creation, from scores) beside the
weighted-pipeline sum on the same deals, and the stored-score path the API runs.
The last line is one JSON object.

    python bench/bench_forecast.py [--deals 20000] [--quarters 8] [--profiles mixed,laggy] [--sims 1000]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from typing import Any

import numpy as np
import pandas as pd

from dealscore.data.simulate import simulate
from dealscore.data.simulate.config import SimConfig, profile_names
from dealscore.data.validate import validate_history
from dealscore.forecast.backtest import backtest_quarters, bias_parts, forecast_times, run_backtest
from dealscore.forecast.creation import PipelineCreationModel
from dealscore.forecast.engine import (
    DEFAULT_SIMS,
    OpenPipeline,
    forecast_pipeline,
    pipeline_from_blocks,
    pipeline_from_results,
)
from dealscore.scoring import Scorer
from dealscore.training.config import TrainConfig
from dealscore.training.pipeline import train_models

#: The default training, except a short real-stage model: the forecast reads p_win and the time-to-close model only.
#: Fortnightly snapshots halve the training rows (this machine is shared); --weekly restores the default.
TRAIN = TrainConfig.from_dict({"snapshots": {"every_days": 14},
                               "stage": {"num_boost_round": 40, "early_stopping_rounds": 10}})
TRAIN_WEEKLY = TrainConfig.from_dict({"stage": {"num_boost_round": 40, "early_stopping_rounds": 10}})


def _targets(summary: pd.DataFrame) -> dict[str, Any]:
    s = summary.set_index("method")
    m = s.loc["model", "mape"]
    peers = {p: float(s.loc[p, "mape"]) for p in ("weighted_pipeline", "reps_dates", "run_rate")}
    reduction = 1 - m / peers["weighted_pipeline"]
    cov = float(s.loc["model", "coverage_p10_p90"])
    return {
        "mape_reduction_vs_weighted": round(float(reduction), 4),
        "target_mape_30pct_below_weighted": bool(reduction >= 0.30),
        "target_mape_below_each_peer": bool(all(m < v for v in peers.values())),
        "target_coverage_70_90": bool(0.70 <= cov <= 0.90),
    }


def _tile(pipe: OpenPipeline, n: int) -> OpenPipeline:
    """``n`` open deals drawn (with replacement, fixed seed) from a real pipeline, ids made unique."""
    idx = np.random.default_rng(0).integers(0, len(pipe), n)
    return OpenPipeline(deal_id=np.array([f"X{i:06d}" for i in range(n)], dtype=object), team=pipe.team[idx],
                        owner_id=pipe.owner_id[idx], amount=pipe.amount[idx], p_win=pipe.p_win[idx],
                        pmf=pipe.pmf[idx], scored_at=pipe.scored_at[idx])


def _speed(history: Any, bundle: Any, sims: int) -> dict[str, float]:
    t = history.data_cut
    scorer = Scorer(bundle)
    started = time.perf_counter()
    blocks = list(scorer.score_blocks(history, t))
    score_s = time.perf_counter() - started
    pipe = _tile(pipeline_from_blocks(blocks), 5000)
    creation = PipelineCreationModel().fit(history, t)
    runs, cpu, open_cpu = [], [], []
    for _ in range(3):
        started, c0 = time.perf_counter(), time.process_time()
        forecast_pipeline(pipe, t, kind="quarter", by="team", creation=creation, n_sims=sims, seed=0)
        runs.append(time.perf_counter() - started)
        cpu.append(time.process_time() - c0)
    for _ in range(5):  # open deals only (no creation, no calibration): mostly their draws
        # (what a change to those draws moves; the line above includes new pipeline)
        c0 = time.process_time()
        forecast_pipeline(pipe, t, kind="quarter", by="team", creation=None, n_sims=sims, seed=0)
        open_cpu.append(time.process_time() - c0)
    started = time.perf_counter()
    for _ in range(20):
        float(np.sum(np.nan_to_num(pipe.amount) * pipe.p_win))
    peer_s = (time.perf_counter() - started) / 20
    results = [r for b in blocks for r in b.results()]
    results = [results[i % len(results)].model_copy(update={"deal_id": f"X{i:06d}"}) for i in range(5000)]
    started = time.perf_counter()
    forecast_pipeline(pipeline_from_results(results), t, creation=bundle.pipeline_creation["team"], n_sims=sims,
                      calibration=bundle.forecast_calibration)
    stored_s = time.perf_counter() - started
    api = _api_speed(bundle, results)
    return {"open_deals": 5000, "sims": sims, "forecast_seconds": round(min(runs), 4),
            "forecast_cpu_seconds": round(min(cpu), 4), "open_deals_only_cpu_seconds": round(min(open_cpu), 4),
            "load_average_1m": round(os.getloadavg()[0], 1),
            "peer_sum_seconds": round(peer_s, 6),
            "stored_scores_forecast_seconds": round(stored_s, 4), "score_open_deals_seconds": round(score_s, 3),
            "open_deals_scored": int(sum(len(b) for b in blocks)), "target_under_2s": bool(min(runs) < 2.0), **api}


def _api_speed(bundle: Any, results: list[Any]) -> dict[str, Any]:
    """GET /v1/forecast's use case on a real (SQLite) score store holding 5,000 open deals' latest scores.

    The measurement of ``bench_forecast_api.py`` (first request after a change,
    repeated request, the store read alone), here on SQLite only.
    """
    import tempfile

    from bench_forecast_api import api_speed

    with tempfile.TemporaryDirectory() as tmp:
        r = api_speed(bundle, results, f"sqlite:///{tmp}/scores.db")
    return {"api_sims": r["sims"], "api_store_read_seconds": r["steps_best_seconds"]["store_read"],
            "api_seconds": r["first_request_seconds"], "api_cached_seconds": r["repeated_request_seconds"],
            "api_target_under_200ms": r["target_first_under_200ms"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deals", type=int, default=20000)
    ap.add_argument("--quarters", type=int, default=8, help="history span in quarters (the simulator's span)")
    ap.add_argument("--profiles", default=",".join(profile_names()))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sims", type=int, default=1000)
    ap.add_argument("--weeks", default="2")
    ap.add_argument("--weekly", action="store_true", help="train on weekly snapshots (the default training)")
    ap.add_argument("--cut-date", default="2025-07-01", help="data cut: a quarter start keeps the last quarter whole")
    args = ap.parse_args()
    weeks = [int(w) for w in args.weeks.split(",")]
    out: dict[str, Any] = {}
    for name in args.profiles.split(","):
        started = time.perf_counter()
        sim = simulate(args.deals, args.seed, config=dataclasses.replace(SimConfig(), span_days=91.3 * args.quarters),
                       profile=name, cut_date=args.cut_date)
        history, _ = validate_history(sim.history)
        quarters = backtest_quarters(history)
        first = forecast_times(quarters, weeks)[0][2]
        bundle = train_models(history.as_known_at(first), TRAIN_WEEKLY if args.weekly else TRAIN).bundle
        train_s = time.perf_counter() - started
        result = run_backtest(history, bundle, quarters, weeks=weeks, n_sims=args.sims, seed=args.seed)
        summary = result.summary
        print(f"\n== {name}: {args.deals:,} deals, quarters {quarters[0].label}..{quarters[-1].label} "
              f"({len(quarters)}), trained as known at {first:%Y-%m-%d} ({train_s:.0f}s)")
        print(f"{'week':>4} {'method':<18} {'cells':>5} {'MAPE':>7} {'bias':>7} {'cover':>6} {'CRPS':>12}")
        for r in summary.to_dict("records"):
            cov = "" if pd.isna(r["coverage_p10_p90"]) else f"{r['coverage_p10_p90']:.0%}"
            print(f"{r['week']:>4} {r['method']:<18} {r['cells']:>5} {r['mape']:>7.1%} {r['bias']:>+7.1%} "
                  f"{cov:>6} {r['crps']:>12,.0f}")
        parts = bias_parts(result.rows)
        for r in parts.to_dict("records"):
            print(f"bias parts, week {r['week']}: open deals {r['open']:+.1%} (uncalibrated "
                  f"{r['open_uncalibrated']:+.1%}), new pipeline {r['new_pipeline']:+.1%}; calibration ratio "
                  f"{r['calibration_ratio']:.3f} (predictive error {r['calibration_ratio_sd']:.1%}), spread "
                  f"{r['calibration_spread']:.1%}")
        week2 = summary[summary["week"] == weeks[0]]
        targets = _targets(week2)
        speed = _speed(history, bundle, DEFAULT_SIMS)
        print(f"targets: {targets}")
        print(f"speed: {speed}", flush=True)
        out[name] = {"summary": summary.round(4).to_dict("records"), "bias_parts": parts.round(4).to_dict("records"),
                     "targets": targets, "speed": speed,
                     "quarters": [q.label for q in quarters], "trained_at": str(first)}
    print(json.dumps({"benchmark": "forecast", "deals": args.deals, "quarters": args.quarters, "seed": args.seed,
                      "sims": args.sims, "profiles": out}, default=str))


if __name__ == "__main__":
    main()
