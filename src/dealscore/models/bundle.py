"""The model bundle: everything needed to score a deal, saved as one folder.

Scoring needs more than the two boosters: the feature spec (so features are
built exactly as in training), the stage taxonomy, the playbook the actions come
from, the stage statistics behind the warnings, and the training window and
metrics that say what the model is worth. Keeping them in one versioned folder
means a scorer can never pair a model with the wrong feature definition.

Layout: ``bundle.json`` (manifest, window, metrics, stats), ``spec.json``,
``taxonomy.yaml``, ``playbook.yaml``, ``win_model.joblib``, ``stage_model.joblib`` and
``context.joblib`` (the feature context, when present), ``time_to_close.joblib`` and
``pipeline_creation.joblib``, ``forecast_calibration.joblib`` (the forecast's models, when present).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import yaml

from dealscore.errors import BundleFormatError, ModelNotReadyError
from dealscore.features import FeatureContext, FeatureSpec
from dealscore.forecast.calibration import OpenDealCalibration
from dealscore.forecast.close_time import TimeToCloseModel
from dealscore.forecast.creation import PipelineCreationModel
from dealscore.models.stage import StageModel
from dealscore.models.win import WinModel
from dealscore.taxonomy import StageTaxonomy

FORMAT_VERSION = 1
MANIFEST = "bundle.json"


def to_jsonable(obj: Any) -> Any:
    """Recursively turn numpy / pandas scalars and timestamps into JSON types."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        v = float(obj)
        return None if np.isnan(v) else v
    if isinstance(obj, float) and np.isnan(obj):
        return None
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    return obj


def _optional(file: Path) -> Any:
    """A joblib part of the bundle that older bundles lack (None then)."""
    return joblib.load(file) if file.is_file() else None


def _spec_from_dict(raw: dict[str, Any]) -> FeatureSpec:
    return FeatureSpec.from_dict(raw)


@dataclass
class ModelBundle:
    """A trained, versioned scoring bundle (see module docstring)."""

    spec: FeatureSpec
    taxonomy: StageTaxonomy
    win_model: WinModel
    stage_model: StageModel
    playbook: dict[str, Any] = field(default_factory=dict)
    stage_stats: dict[str, Any] = field(default_factory=dict)
    training_window: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    version: str = "unregistered"
    history_stats: dict[str, Any] = field(default_factory=dict)
    #: Fitted on the training history: the cross-deal aggregates
    #: (owner/account win rates, stage norms) the API needs when it scores a single deal.
    context: FeatureContext | None = None
    #: Recording habits learned with the real-stage labels: the company's and each rep's lag, share of stages
    #: typed in ahead of their evidence and of stages skipped (``StageLabeler.habits_summary``).
    recording_habits: dict[str, Any] = field(default_factory=dict)
    #: When an open deal closes if won (None in older bundles).
    time_to_close: TimeToCloseModel | None = None
    #: ``{"team": PipelineCreationModel, "owner_id": ...}`` fitted at the data cut: bookings from deals not created
    #: yet, for forecasts made from stored scores (the service has no history to learn them from).
    pipeline_creation: dict[str, PipelineCreationModel] | None = None
    #: Fitted at the data cut: how far open deals' forecast
    #: bookings were off in past windows (scale) and how much a team's deals move together (spread).
    forecast_calibration: OpenDealCalibration | None = None

    @property
    def feature_names(self) -> list[str]:
        """The feature columns the win model expects, in order."""
        return list(self.win_model.feature_names_)

    def save(self, folder: str | Path) -> Path:
        """Write the bundle folder (created if needed; existing files are replaced)."""
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        spec = self.spec.to_dict() if hasattr(self.spec, "to_dict") else self.spec
        (path / "spec.json").write_text(json.dumps(to_jsonable(spec), indent=2), encoding="utf-8")
        (path / "taxonomy.yaml").write_text(yaml.safe_dump(self.taxonomy.to_dict(), sort_keys=False), encoding="utf-8")
        (path / "playbook.yaml").write_text(yaml.safe_dump(to_jsonable(self.playbook), sort_keys=False),
                                            encoding="utf-8")
        joblib.dump(self.win_model, path / "win_model.joblib")
        joblib.dump(self.stage_model, path / "stage_model.joblib")
        for name in ("context", "time_to_close", "pipeline_creation", "forecast_calibration"):
            if getattr(self, name) is not None:
                joblib.dump(getattr(self, name), path / f"{name}.joblib")
        manifest = {
            "format_version": FORMAT_VERSION,
            "version": self.version,
            "stage_stats": self.stage_stats,
            "training_window": self.training_window,
            "metrics": self.metrics,
            "history_stats": self.history_stats,
            "recording_habits": self.recording_habits,
        }
        (path / MANIFEST).write_text(json.dumps(to_jsonable(manifest), indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> ModelBundle:
        """Read a bundle folder written by :meth:`save`."""
        path = Path(folder)
        if not (path / MANIFEST).is_file():
            raise ModelNotReadyError(
                f"{path} is not a model bundle (no {MANIFEST}); train one with `dealscore train DIR`"
            )
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("format_version") != FORMAT_VERSION:
            raise BundleFormatError(
                f"bundle at {path} has format {manifest.get('format_version')}, this dealscore reads "
                f"{FORMAT_VERSION}; retrain it with this version"
            )
        return cls(
            spec=_spec_from_dict(json.loads((path / "spec.json").read_text(encoding="utf-8"))),
            taxonomy=StageTaxonomy.from_dict(yaml.safe_load((path / "taxonomy.yaml").read_text(encoding="utf-8"))),
            win_model=joblib.load(path / "win_model.joblib"),
            stage_model=joblib.load(path / "stage_model.joblib"),
            playbook=yaml.safe_load((path / "playbook.yaml").read_text(encoding="utf-8")) or {},
            stage_stats=manifest.get("stage_stats", {}),
            training_window=manifest.get("training_window", {}),
            metrics=manifest.get("metrics", {}),
            version=str(manifest.get("version", "unregistered")),
            history_stats=manifest.get("history_stats", {}),
            recording_habits=manifest.get("recording_habits", {}),
            context=_optional(path / "context.joblib"),
            time_to_close=_optional(path / "time_to_close.joblib"),
            pipeline_creation=_optional(path / "pipeline_creation.joblib"),
            forecast_calibration=_optional(path / "forecast_calibration.joblib"),
        )

    def predict_frame(self, features: pd.DataFrame) -> pd.DataFrame:
        """Both predictions for a feature frame: p_win, inferred stage, confidence, stage probabilities.

        This is what the MLflow pyfunc serves; the scoring layer adds reasons,
        warnings and actions on top.
        """
        p_win = self.win_model.predict_proba(features)
        stages = self.stage_model.predict_proba(features)
        out = pd.DataFrame(index=features.index)
        for c in ("deal_id", "as_of"):
            if c in features:
                out[c] = features[c]
        out["p_win"] = p_win
        out["inferred_stage"] = np.asarray(stages.columns, dtype=object)[stages.to_numpy().argmax(axis=1)]
        out["inferred_stage_probability"] = stages.to_numpy().max(axis=1)
        for s in stages.columns:
            out[f"p_stage_{s}"] = stages[s].to_numpy()
        return out
