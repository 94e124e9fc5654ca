"""Train from a script: ``python training/train.py HISTORY_DIR [--config training/configs/default.yaml]``.

A thin wrapper over :func:`dealscore.training.run.run_training`, for data
scientists who prefer scripts (or schedulers) to the ``dealscore train`` command;
both do exactly the same thing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dealscore.errors import DealscoreError
from dealscore.training.config import TrainConfig
from dealscore.training.run import run_training

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "default.yaml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("history", type=Path, help="history folder (CSV or Parquet tables)")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="training YAML")
    parser.add_argument("--report-json", type=Path, default=None, help="write the evaluation report here")
    parser.add_argument("--experiment", default=None, help="MLflow experiment name")
    args = parser.parse_args(argv)
    try:
        summary = run_training(args.history, TrainConfig.load(args.config), report_json=args.report_json,
                               experiment=args.experiment, progress=lambda m: print(f"... {m}", flush=True))
    except DealscoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    win = summary.result.report["win"]
    print(json.dumps({"version": summary.version, "alias": summary.decision.alias,
                      "reasons": summary.decision.reasons, "run_id": summary.run.run_id,
                      "roc_auc": win["model"]["roc_auc"], "log_loss": win["model"]["log_loss"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
