"""Training configuration: defaults in code, overridable from a YAML file.

The shipped ``training/configs/default.yaml`` repeats these defaults so a data
scientist sees every knob in one place. Unknown keys are an error (a typo must
not silently fall back to a default).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from dealscore.errors import ConfigError

#: The LightGBM search: the shipped defaults, a smaller/more regularised and a larger/less regularised
#: booster, and the defaults with monotone constraints
#: (:data:`dealscore.training.selection.MONOTONE`).
DEFAULT_SEARCH: dict[str, dict[str, Any]] = {
    "base": {},
    "small": {"num_leaves": 7, "min_data_in_leaf": 500, "lambda_l2": 30.0},
    "large": {"num_leaves": 31, "min_data_in_leaf": 150, "lambda_l2": 5.0},
    "monotone": {"monotone": True},
}
DEFAULT_BLENDS = (0.25, 0.5, 0.75)


@dataclass
class SnapshotConfig:
    """When training snapshots are taken across each deal's open life."""

    every_days: int = 7
    at_stage_changes: bool = True


@dataclass
class SplitConfig:
    """Time split by deal creation (see :mod:`dealscore.training.split`)."""

    fractions: list[float] = field(default_factory=lambda: [0.6, 0.1, 0.1, 0.2])
    horizon_quantile: float = 0.95
    max_train_deals: int | None = None


@dataclass
class ThinConfig:
    """Minimum closed deals per outcome (vendors ask for 40 to 200 won and lost deals)."""

    min_won: int = 40
    min_lost: int = 40


@dataclass
class WinConfig:
    """LightGBM win model settings; ``params`` override the defaults in :mod:`dealscore.models.win`.

    ``max_train_rows`` caps the training snapshots the win model and the baselines
    learn from (a seeded random sample of whole rows): weekly snapshots of one deal
    are highly redundant, so beyond a few hundred thousand rows more of them buy
    little accuracy and cost linear time. Validation, calibration and test slices
    are never sampled.

    Model selection (:mod:`dealscore.training.selection`): ``cv_folds`` rolling time
    origins over the deals before the test slice, the first at ``cv_first_origin``
    of them; ``search`` names LightGBM settings (overrides of ``params``; ``monotone:
    true`` adds the unambiguous monotone constraints); ``blends`` are the booster's
    weights tried in a blend with the logistic regression (C = ``linear_c``);
    ``max_cv_rows`` caps each fold's training rows. ``selection: false`` keeps the
    older three-slice fit (early stopping on validation, calibration on the next
    slice). ``bootstrap_replicates`` resamplings of the test deals give each metric's interval.
    """

    params: dict[str, Any] = field(default_factory=dict)
    num_boost_round: int = 2000
    early_stopping_rounds: int = 50
    calibration: str = "auto"
    max_train_rows: int | None = 300_000
    selection: bool = True
    cv_folds: int = 3
    cv_first_origin: float = 0.5
    max_cv_rows: int | None = 150_000
    search: dict[str, dict[str, Any]] = field(default_factory=lambda: {k: dict(v) for k, v in DEFAULT_SEARCH.items()})
    blends: list[float] = field(default_factory=lambda: list(DEFAULT_BLENDS))
    linear_c: float = 1.0
    bootstrap_replicates: int = 200


@dataclass
class StageConfig:
    """LightGBM stage model settings.

    ``max_train_rows`` caps the training snapshots (a seeded random sample of them):
    the stage is learned well long before that, and multiclass boosting costs one
    tree per stage per round.
    """

    params: dict[str, Any] = field(default_factory=dict)
    num_boost_round: int = 500
    early_stopping_rounds: int = 20
    use_declared_stage: bool = True
    max_train_rows: int | None = 150_000


@dataclass
class BaselineConfig:
    """Baseline settings (kept simple on purpose: they are reference points)."""

    logistic_c: float = 1.0
    naive_bayes_bins: int = 5


@dataclass
class GateConfig:
    """How much worse than the champion a new version may be and still be promoted."""

    log_loss_tolerance: float = 0.005
    auc_tolerance: float = 0.005


@dataclass
class WarningConfig:
    """Episode-warning thresholds learned for a stated precision (:mod:`dealscore.training.warning_thresholds`)."""

    #: share of flagged closed training deals that must have been followed by a loss
    target_precision: float = 0.6
    #: ... and flagged deals may win at most this share of the stage's usual win rate
    max_win_ratio: float = 0.5
    #: fewer flagged closed deals than this and the stage keeps the fixed rule
    min_support: int = 30


@dataclass
class TrainConfig:
    """Everything a training run depends on besides the data."""

    experiment: str = "dealscore"
    model_name: str = "dealscore"
    seed: int = 0
    num_threads: int = 0
    snapshots: SnapshotConfig = field(default_factory=SnapshotConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    thin: ThinConfig = field(default_factory=ThinConfig)
    win: WinConfig = field(default_factory=WinConfig)
    stage: StageConfig = field(default_factory=StageConfig)
    baselines: BaselineConfig = field(default_factory=BaselineConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    warnings: WarningConfig = field(default_factory=WarningConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (for MLflow params and the report)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> TrainConfig:
        """Build from a nested dict, refusing unknown keys."""
        return _build(cls, raw or {}, "config")

    @classmethod
    def load(cls, path: str | Path | None) -> TrainConfig:
        """Load a YAML config; ``None`` gives the defaults."""
        if path is None:
            return cls()
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"training config {p} does not exist; start from training/configs/default.yaml")
        try:
            raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"training config {p} is not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"training config {p} must be a mapping of settings")
        return cls.from_dict(raw)


def _build(kind: type, raw: dict[str, Any], where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping; got {raw!r}")
    known = {f.name: f for f in fields(kind)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {unknown}; known: {sorted(known)}")
    values: dict[str, Any] = {}
    defaults = kind()
    for name, value in raw.items():
        current = getattr(defaults, name)
        values[name] = _build(type(current), value, f"{where}.{name}") if is_dataclass(current) else value
    return kind(**values)
