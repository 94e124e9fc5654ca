"""One full training run as users start it: folder in, registered (maybe promoted) model out.

Steps: load and validate the history → :func:`~dealscore.training.pipeline.train_models`
→ log the run to MLflow → score the current champion on the new run's holdout →
gate → register the new version with the ``champion`` or ``challenger`` alias.
The CLI (``dealscore train``) and ``training/train.py`` both call :func:`run_training`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dealscore import tracking
from dealscore.data.history import DealHistory
from dealscore.data.validate import load_and_validate
from dealscore.errors import BundleFormatError
from dealscore.models.bundle import to_jsonable
from dealscore.training.config import TrainConfig
from dealscore.training.gate import GateDecision, decide
from dealscore.training.pipeline import Progress, TrainingResult, find_truth, holdout_metrics, train_models


@dataclass
class RunSummary:
    """What the CLI prints after a training run."""

    result: TrainingResult
    run: tracking.TrackedRun
    version: str
    decision: GateDecision
    report_path: Path | None = None
    warnings: list[str] = field(default_factory=list)


def compare_with_champion(
    result: TrainingResult, history: DealHistory, name: str
) -> tuple[dict[str, Any] | None, str | None, str | None, bool]:
    """The champion's win metrics on the new run's holdout, its version, why it could not be scored, and
    whether the new version may replace it uncompared.

    Only a champion written in another bundle format may be replaced without a
    comparison: this installation could not serve it either. Any other failure to
    load or score it (a corrupt or missing artifact, a download or scoring error)
    says nothing about which model is better, and the champion's local copy may
    still be serving: the new version is then held as challenger.
    """
    version = tracking.get_champion_version(name)
    if version is None:
        return None, None, None, False
    try:
        champion = tracking.load_bundle(version, name)
        same_spec = champion.spec.to_dict() == result.bundle.spec.to_dict()
        feats = result.test_features if same_spec else None
        return holdout_metrics(champion, history, result.holdout, feats), version, None, False
    except BundleFormatError as exc:
        return None, version, f"champion v{version} was written in another bundle format ({exc})", True
    except Exception as exc:  # not a comparison: the gate cannot say the new version is better
        return None, version, f"champion v{version} could not be loaded or scored ({type(exc).__name__}: {exc})", False


def run_training(
    folder: str | Path | None = None,
    config: TrainConfig | None = None,
    *,
    history: DealHistory | None = None,
    truth: Any = None,
    report_json: str | Path | None = None,
    experiment: str | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """Train on a history folder (or an already validated ``history``), log, register and gate."""
    cfg = config or TrainConfig()
    say = progress or (lambda _m: None)
    warnings: list[str] = []
    if history is None:
        if folder is None:
            raise ValueError("run_training needs a history folder or a DealHistory")
        say(f"loading and validating {folder}")
        history, load_report = load_and_validate(folder)
        warnings.extend(load_report.warnings)
        if truth is None:
            truth = find_truth(Path(folder))
    result = train_models(history, cfg, truth=truth, progress=say)
    return track_training(result, history, cfg, warnings=warnings, report_json=report_json, experiment=experiment,
                          progress=say)


def track_training(
    result: TrainingResult, history: DealHistory, cfg: TrainConfig, *, warnings: list[str] | None = None,
    report_json: str | Path | None = None, experiment: str | None = None, progress: Progress | None = None,
) -> RunSummary:
    """Log a finished training to MLflow, compare with the champion on its holdout, register and gate.

    Shared by one-machine training and training on a cluster (:mod:`dealscore.scale.train`).
    """
    say = progress or (lambda _m: None)
    warnings = list(warnings or [])
    say("logging the run to MLflow")
    run = tracking.log_training_run(result, experiment=experiment)
    say("comparing with the current champion on the same holdout")
    champ_metrics, champ_version, unusable, replaceable = compare_with_champion(result, history, cfg.model_name)
    new_metrics = {k: result.report["win"]["model"][k] for k in ("roc_auc", "log_loss")}
    champ_small = None if champ_metrics is None else {k: champ_metrics[k] for k in ("roc_auc", "log_loss")}
    decision = decide(new_metrics, champ_small, cfg.gate, champ_version, unusable=unusable, replaceable=replaceable)

    say("registering the bundle")
    version = tracking.register_bundle(result.bundle, run, cfg.model_name)
    if decision.promote:
        tracking.promote(version, cfg.model_name)
    else:
        tracking.set_challenger(version, cfg.model_name)
    tracking.log_gate(run, decision.to_dict(), version, cfg.model_name)

    result.report["data"]["mlflow"] = {"run_id": run.run_id, "experiment_id": run.experiment_id,
                                       "model_name": cfg.model_name, "version": version, "alias": decision.alias}
    result.report["data"]["gate"] = decision.to_dict()
    result.report["data"]["load_warnings"] = warnings
    path = None
    if report_json is not None:
        path = Path(report_json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(to_jsonable(result.report), indent=2), encoding="utf-8")
    return RunSummary(result=result, run=run, version=version, decision=decision, report_path=path,
                      warnings=warnings)
