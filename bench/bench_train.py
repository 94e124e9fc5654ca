"""Training benchmark: a full ``dealscore train`` run on a large simulated history, beside raw LightGBM.

Target (issue 4): 100,000 simulated deals end to end (load + validate, snapshots,
features, win model with early stopping and calibration, three baselines, stage
model, evaluation, plots, MLflow logging, registration and the gate) in under
10 minutes on 2 cores. The peer, measured in the same run, is one plain
``lightgbm.train`` with the win model's parameters and best iteration count on a
matrix the size of the training slice: the ratio says what the whole honest pipeline costs over fitting one booster.
The history is written to disk first and loaded like a user's export; generation
is not timed. The MLflow store is a temporary SQLite file.

    python bench/bench_train.py [--deals 100000] [--seed 11] [--threads 2] [--config JSON]

``--config`` runs other training settings (a JSON object as in
training/configs/default.yaml), e.g. ``'{"win": {"selection": false}}'`` for the
pipeline without the cross-validated model choice, to say what each step costs.

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np

from dealscore.data.simulate import simulate, write_simulation
from dealscore.models.win import DEFAULT_WIN_PARAMS
from dealscore.training.config import TrainConfig
from dealscore.training.run import run_training

TARGET_SECONDS = 600.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--config", type=json.loads, default={},
                        help='training settings over the defaults, as a JSON object: \'{"win": {"selection": false}}\'')
    args = parser.parse_args()
    if not isinstance(args.config, dict):
        parser.error(f"--config must be a JSON object of training settings (as in training/configs/default.yaml); "
                     f"got {args.config!r}")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        folder = write_simulation(simulate(args.deals, seed=args.seed), root / "history")
        generate_s = time.perf_counter() - t
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
        print(f"generated {args.deals:,} deals in {generate_s:.1f}s", flush=True)
        t0 = time.perf_counter()
        summary = run_training(folder, TrainConfig.from_dict({**args.config, "num_threads": args.threads}),
                               progress=lambda m: print(f"{time.perf_counter() - t0:8.1f}s  {m}", flush=True))
        total_s = time.perf_counter() - t0

        result = summary.result
        win = result.bundle.win_model
        n_train = result.report["data"]["snapshots"]["train"]
        # Peer: one plain booster fit, same params and rounds, on a matrix the size of the training slice
        # (holdout rows resampled: realistic values, and the training matrix itself is not kept).
        rows = np.random.default_rng(0).integers(0, len(result.test_features), n_train)
        X = result.test_features[win.feature_names_].iloc[rows]
        y = result.holdout["won"].to_numpy()[rows]
        t = time.perf_counter()
        lgb.train({**DEFAULT_WIN_PARAMS, **(win.params or {}), "num_threads": args.threads},
                  lgb.Dataset(X, label=y), num_boost_round=win.best_iteration_)
        peer_s = time.perf_counter() - t

    report = result.report
    win, base = report["win"]["model"], report["win"]["baselines"]
    oracle_share = report["win"]["oracle"].get("model_auc_share_of_oracle")
    stage = report["stage"]
    targets = {
        "auc_vs_stage_table": round(win["roc_auc"] - base["stage_table"]["roc_auc"], 4),  # >= 0.08
        "auc_vs_naive_bayes": round(win["roc_auc"] - base["naive_bayes"]["roc_auc"], 4),  # >= 0.03
        "auc_vs_logistic": round(win["roc_auc"] - base["logistic"]["roc_auc"], 4),  # > 0
        "log_loss_below_all_baselines": all(win["log_loss"] < b["log_loss"] for b in base.values()),
        "ece": round(win["ece"], 4),  # <= 0.03
        "oracle_share": None if oracle_share is None else round(oracle_share, 4),  # >= 0.85
        "stage_accuracy_gain": round(stage["model"]["accuracy"] - stage["declared"]["accuracy"], 4),  # >= 0.15
    }
    out = {
        "bench": "train",
        "deals": args.deals,
        "threads": args.threads,
        "config": args.config,
        "train_deals": len(result.split.ids("train")),
        "snapshots": report["data"]["snapshots"],
        "generate_seconds": round(generate_s, 1),
        "total_seconds": round(total_s, 1),
        "target_seconds": TARGET_SECONDS,
        "meets_target": total_s < TARGET_SECONDS,
        "steps_seconds": report["data"]["timings_seconds"],
        "peer_lightgbm_fit_seconds": round(peer_s, 1),
        "ratio_vs_peer": round(total_s / peer_s, 1) if peer_s > 0 else None,
        "win_auc": report["win"]["model"]["roc_auc"],
        "stage_accuracy": report["stage"]["model"]["accuracy"],
        "gate": summary.decision.alias,
        "quality": targets,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
