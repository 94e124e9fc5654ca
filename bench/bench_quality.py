"""Win-model quality on every simulator preset: the model beside its baselines and the oracle, same split rules.

For each company preset of ``dealscore.data.simulate.config.PROFILES`` it simulates
a history (same size and seed), trains exactly as ``dealscore train`` does (time
split with the same fractions, model selection by time-series cross-validation,
calibration on out-of-fold scores) and prints, on the held-out test slice, log
loss / ECE / ROC AUC / Brier for the model and the three baselines (CRM stage
table, naive Bayes, logistic regression), the model family that won the
cross-validation, the bootstrap verdict against the best baseline, the oracle AUC
share and the share of open deals (scored at the data cut) outside [0.5 %, 99.5 %].

Targets (issue 15), checked per preset and printed:
- log loss <= the best baseline's;
- ECE <= 0.02 and <= the stage table's ECE + 0.005;
- ROC AUC >= the best baseline's - 0.002;
- on the default preset, (AUC - 0.5) / (oracle AUC - 0.5) >= 0.93.

The real-stage model is trained with fewer rounds (``--stage-rounds``): it does
not enter any win figure and dominates the run time. The last line printed is
one JSON object with every figure.

    python bench/bench_quality.py [--deals 20000] [--seed 11] [--profiles mixed,laggy] [--threads 2] [--config JSON]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import pandas as pd

from dealscore.data.simulate import simulate
from dealscore.data.simulate.config import DEFAULT_PROFILE, profile_names
from dealscore.data.validate import validate_history
from dealscore.features import build_features
from dealscore.training.config import TrainConfig
from dealscore.training.pipeline import train_models

METRICS = ("log_loss", "ece", "roc_auc", "brier")
LOW, HIGH = 0.005, 0.995


def open_deal_scores(result: Any, history: Any) -> np.ndarray:
    """Win probabilities of the deals open at the data cut, scored at the cut with the trained bundle."""
    deals = history.deals
    open_ids = deals.loc[deals["closed_at"].isna(), "deal_id"].to_numpy()
    bundle = result.bundle
    snaps = pd.DataFrame({"deal_id": open_ids, "as_of": [history.data_cut] * len(open_ids)})
    X = build_features(history, snaps, spec=bundle.spec, taxonomy=bundle.taxonomy,
                       context=bundle.context)
    return bundle.win_model.predict_proba(bundle.spec.encode(X))


def one_preset(name: str, deals: int, seed: int, cfg: TrainConfig) -> dict[str, Any]:
    sim = simulate(deals, seed, profile=name)
    history, _ = validate_history(sim.history)
    t = time.perf_counter()
    result = train_models(history, cfg, truth=sim)
    seconds = time.perf_counter() - t
    win = result.report["win"]
    model, base = win["model"], win["baselines"]
    row: dict[str, Any] = {k: {m: round(float(v[m]), 4) for m in METRICS}
                           for k, v in {"model": model, **base}.items()}
    best_ll = min(base.values(), key=lambda b: b["log_loss"])["log_loss"]
    best_auc = max(b["roc_auc"] for b in base.values())
    sel = model.get("selection") or {}
    p_open = open_deal_scores(result, history)
    oracle = win["oracle"]
    row.update({
        "family": model.get("family"), "champion": sel.get("champion"),
        "cv_margin": sel.get("margin"), "calibration": model.get("calibration_method"),
        "bounds": model.get("probability_bounds"),
        "verdicts": {m: win["comparison"][m]["verdict"] for m in ("log_loss", "ece", "roc_auc", "brier")},
        "oracle_auc": oracle.get("roc_auc"), "oracle_share": oracle.get("model_auc_share_of_oracle"),
        "open_deals": len(p_open),
        "open_outside_share": float(((p_open < LOW) | (p_open > HIGH)).mean()) if len(p_open) else 0.0,
        "open_min": float(p_open.min()) if len(p_open) else None,
        "open_max": float(p_open.max()) if len(p_open) else None,
        "train_seconds": round(seconds, 1), "timings": result.timings,
        "learning_curve": [(p["fraction"], round(p["roc_auc"], 4), round(p["log_loss"], 4))
                           for p in (win.get("learning_curve") or {}).get("points", [])],
    })
    row["targets"] = {
        "log_loss_le_best_baseline": model["log_loss"] <= best_ll,
        "ece_le_0.02": model["ece"] <= 0.02,
        "ece_le_stage_table_plus_0.005": model["ece"] <= base["stage_table"]["ece"] + 0.005,
        "auc_ge_best_baseline_minus_0.002": model["roc_auc"] >= best_auc - 0.002,
    }
    if name == DEFAULT_PROFILE:
        share = oracle.get("model_auc_share_of_oracle")
        row["targets"]["oracle_share_ge_0.93"] = share is not None and share >= 0.93
    return row


def print_row(name: str, row: dict[str, Any]) -> None:
    print(f"\n{name}: family {row['family']} ({row['champion']}), calibration {row['calibration']}, "
          f"trained in {row['train_seconds']:.0f}s")
    print(f"  {'scorer':<12} {'log loss':>9} {'ECE':>7} {'ROC AUC':>8} {'Brier':>7}")
    for k in ("model", "stage_table", "naive_bayes", "logistic"):
        r = row[k]
        print(f"  {k:<12} {r['log_loss']:>9.4f} {r['ece']:>7.4f} {r['roc_auc']:>8.4f} {r['brier']:>7.4f}")
    share = row["oracle_share"]
    print(f"  vs best baseline (bootstrap over deals): {row['verdicts']}")
    print(f"  oracle AUC {row['oracle_auc']:.4f}, model share {share:.3f}" if share is not None else "  no oracle")
    print(f"  open deals {row['open_deals']}: {row['open_outside_share']:.2%} outside [{LOW:.1%}, {HIGH:.1%}] "
          f"(min {row['open_min']:.4f}, max {row['open_max']:.4f}); bounds {row['bounds']}")
    print(f"  learning curve (fraction, AUC, log loss): {row['learning_curve']}")
    print(f"  targets: {row['targets']}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deals", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--profiles", default=",".join(profile_names()))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--stage-rounds", type=int, default=60)
    ap.add_argument("--config", type=json.loads, default={},
                    help='training settings over the defaults, as a JSON object: \'{"win": {"max_cv_rows": 100000}}\'')
    args = ap.parse_args()
    extra = args.config
    if not isinstance(extra, dict) or not isinstance(extra.get("stage", {}), dict):
        ap.error(f"--config must be a JSON object of training settings (as in training/configs/default.yaml); "
                 f"got {args.config!r}")
    cfg = TrainConfig.from_dict({**extra, "num_threads": args.threads,
                                 "stage": {**extra.get("stage", {}), "num_boost_round": args.stage_rounds}})
    rows: dict[str, dict[str, Any]] = {}
    for name in args.profiles.split(","):
        rows[name] = one_preset(name, args.deals, args.seed, cfg)
        print_row(name, rows[name])
    ok = all(all(r["targets"].values()) for r in rows.values())
    print(json.dumps({"benchmark": "quality", "deals": args.deals, "seed": args.seed, "all_targets_met": ok,
                      "profiles": rows}, default=str))


if __name__ == "__main__":
    main()
