"""Training configuration: defaults in code, overridable from a YAML file.

The shipped ``training/configs/default.yaml`` repeats these defaults so a data
scientist sees every knob in one place. Unknown keys are an error (a typo must
not silently fall back to a default).

Every value is checked when the config is read, not when training reaches it
(a wrong type used to surface as a traceback from LightGBM, one of them only
after the whole run): its type is the field's annotation, and what it accepts
beyond that (bounds, choices, a rule for the whole value) is stated once, beside
its default, with :func:`accepts`. All problems of one file come in one error.
LightGBM parameters are checked by :mod:`dealscore.models.lgb_params`.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from dealscore.errors import ConfigError
from dealscore.models.calibration import METHODS
from dealscore.models.lgb_params import parameter_problems
from dealscore.models.stage import DEFAULT_STAGE_PARAMS
from dealscore.models.win import DEFAULT_WIN_PARAMS
from dealscore.wording import is_kind, kind_text, setting_text

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


#: What a problem rule returns: one line per problem, each naming the setting path it is about.
Rule = Callable[[Any, str], list[str]]


@dataclass(frozen=True)
class Accepts:
    """What one setting accepts beyond its annotated type, stated beside its default (see :func:`accepts`).

    Bounds apply to a number, or to each number of a list; ``rule`` checks the
    whole value and words its own problems. Rules run only on a value of the
    right type.
    """

    at_least: float | None = None
    above: float | None = None
    at_most: float | None = None
    below: float | None = None
    choices: tuple[str, ...] = ()
    rule: Rule | None = None

    def bounds_text(self) -> str:
        """The bounds in words: "at least 1", "from 0.5 to 1", "from 0.1 up to but not including 0.95"."""
        lo = (f"at least {self.at_least:g}" if self.at_least is not None
              else f"above {self.above:g}" if self.above is not None else "")
        hi = (f"at most {self.at_most:g}" if self.at_most is not None
              else f"below {self.below:g}" if self.below is not None else "")
        if self.at_least is not None and self.at_most is not None:
            return f"from {self.at_least:g} to {self.at_most:g}"
        if self.at_least is not None and self.below is not None:
            return f"from {self.at_least:g} up to but not including {self.below:g}"
        return " and ".join(p for p in (lo, hi) if p)

    def in_bounds(self, x: float) -> bool:
        """Whether a number lies within the bounds (NaN never does)."""
        return bool((self.at_least is None or x >= self.at_least) and (self.above is None or x > self.above)
                    and (self.at_most is None or x <= self.at_most) and (self.below is None or x < self.below)
                    and not math.isnan(x))


def accepts(*, at_least: float | None = None, above: float | None = None, at_most: float | None = None,
            below: float | None = None, choices: tuple[str, ...] = (), rule: Rule | None = None) -> dict[str, Accepts]:
    """A config field's metadata: what it accepts beyond its type (see :class:`Accepts`), as in
    ``min_won: int = field(default=40, metadata=accepts(at_least=1))``."""
    return {"accepts": Accepts(at_least, above, at_most, below, choices, rule)}


def _four_shares(value: Any, where: str) -> list[str]:
    """``split.fractions``: four positive shares that add up to 1 (a sum of 1.3 used to be rescaled silently)."""
    if len(value) == 4 and all(v > 0 for v in value) and abs(sum(value) - 1) <= 1e-3:
        return []
    total = f" (they add up to {sum(value):g})" if len(value) == 4 and all(v > 0 for v in value) else ""
    return [f"{where}: got {setting_text(value)}{total}; accepts four positive numbers (train, validation, "
            f"calibration and test shares of the labelled deals, in creation order) that add up to 1"]


def _named(value: Any, where: str) -> list[str]:
    """A name MLflow files things under (experiment, registered model): some non-blank text."""
    return [] if value.strip() else [f"{where}: got {setting_text(value)}; accepts a non-empty name"]


def _win_params(value: Any, where: str) -> list[str]:
    return parameter_problems(value, where, defaults=DEFAULT_WIN_PARAMS, section="win")


def _stage_params(value: Any, where: str) -> list[str]:
    return parameter_problems(value, where, defaults=DEFAULT_STAGE_PARAMS, section="stage")


def _search(value: Any, where: str) -> list[str]:
    """``win.search``: at least one named setting, each LightGBM overrides plus an optional ``monotone`` switch."""
    if not value:
        return [f"{where}: got {{}}; accepts at least one named setting of LightGBM overrides "
                f"(an empty one, base: {{}}, keeps win.params as they are)"]
    problems: list[str] = []
    for name, overrides in value.items():
        monotone = overrides.get("monotone", False)
        if not is_kind(monotone, bool):
            problems.append(f"{where}.{name}.monotone: got {setting_text(monotone)}; accepts true or false")
        problems += _win_params({k: v for k, v in overrides.items() if k != "monotone"}, f"{where}.{name}")
    return problems


@dataclass
class SnapshotConfig:
    """When training snapshots are taken across each deal's open life."""

    every_days: int = field(default=7, metadata=accepts(at_least=1))
    at_stage_changes: bool = True


@dataclass
class SplitConfig:
    """Time split by deal creation (see :mod:`dealscore.training.split`)."""

    fractions: list[float] = field(default_factory=lambda: [0.6, 0.1, 0.1, 0.2],
                                   metadata=accepts(rule=_four_shares))
    horizon_quantile: float = field(default=0.95, metadata=accepts(at_least=0.5, at_most=1.0))
    max_train_deals: int | None = field(default=None, metadata=accepts(at_least=1))


@dataclass
class ThinConfig:
    """Minimum closed deals per outcome (vendors ask for 40 to 200 won and lost deals)."""

    min_won: int = field(default=40, metadata=accepts(at_least=1))
    min_lost: int = field(default=40, metadata=accepts(at_least=1))


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

    params: dict[str, Any] = field(default_factory=dict, metadata=accepts(rule=_win_params))
    num_boost_round: int = field(default=2000, metadata=accepts(at_least=1))
    early_stopping_rounds: int = field(default=50, metadata=accepts(at_least=1))
    calibration: str = field(default="auto", metadata=accepts(choices=("auto", *METHODS)))
    max_train_rows: int | None = field(default=300_000, metadata=accepts(at_least=1))
    selection: bool = True
    cv_folds: int = field(default=3, metadata=accepts(at_least=2))
    cv_first_origin: float = field(default=0.5, metadata=accepts(at_least=0.1, below=0.95))
    max_cv_rows: int | None = field(default=150_000, metadata=accepts(at_least=1))
    search: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_SEARCH.items()}, metadata=accepts(rule=_search))
    blends: list[float] = field(default_factory=lambda: list(DEFAULT_BLENDS),
                                metadata=accepts(at_least=0.0, at_most=1.0))
    linear_c: float = field(default=1.0, metadata=accepts(above=0.0))
    bootstrap_replicates: int = field(default=200, metadata=accepts(at_least=1))


@dataclass
class StageConfig:
    """LightGBM stage model settings.

    ``max_train_rows`` caps the training snapshots (a seeded random sample of them):
    the stage is learned well long before that, and multiclass boosting costs one
    tree per stage per round.
    """

    params: dict[str, Any] = field(default_factory=dict, metadata=accepts(rule=_stage_params))
    num_boost_round: int = field(default=500, metadata=accepts(at_least=1))
    early_stopping_rounds: int = field(default=20, metadata=accepts(at_least=1))
    use_declared_stage: bool = True
    max_train_rows: int | None = field(default=150_000, metadata=accepts(at_least=1))


@dataclass
class BaselineConfig:
    """Baseline settings (kept simple on purpose: they are reference points)."""

    logistic_c: float = field(default=1.0, metadata=accepts(above=0.0))
    naive_bayes_bins: int = field(default=5, metadata=accepts(at_least=2))


@dataclass
class GateConfig:
    """How much worse than the champion a new version may be and still be promoted."""

    log_loss_tolerance: float = field(default=0.005, metadata=accepts(at_least=0.0))
    auc_tolerance: float = field(default=0.005, metadata=accepts(at_least=0.0, at_most=1.0))


@dataclass
class WarningConfig:
    """Episode-warning thresholds learned for a stated precision (:mod:`dealscore.training.warning_thresholds`)."""

    #: share of flagged closed training deals that must have been followed by a loss
    target_precision: float = field(default=0.6, metadata=accepts(above=0.0, below=1.0))
    #: ... and flagged deals may win at most this share of the stage's usual win rate
    max_win_ratio: float = field(default=0.5, metadata=accepts(above=0.0, at_most=1.0))
    #: fewer flagged closed deals than this and the stage keeps the fixed rule
    min_support: int = field(default=30, metadata=accepts(at_least=1))


@dataclass
class TrainConfig:
    """Everything a training run depends on besides the data."""

    experiment: str = field(default="dealscore", metadata=accepts(rule=_named))
    model_name: str = field(default="dealscore", metadata=accepts(rule=_named))
    seed: int = field(default=0, metadata=accepts(at_least=0))
    num_threads: int = field(default=0, metadata=accepts(at_least=0))
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
    def from_dict(cls, raw: dict[str, Any] | None, source: str = "the training config") -> TrainConfig:
        """Build from a nested dict, refusing unknown keys and values of the wrong type or range (all at once)."""
        problems: list[str] = []
        config = _build(cls, raw or {}, "config", problems)
        if problems:
            raise _refusal(problems, source)
        return config

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
        return cls.from_dict(raw, source=f"training config {p}")


FIX = "correct the setting(s) named; training/configs/default.yaml lists every setting with its default"


def _refusal(problems: list[str], source: str) -> ConfigError:
    """One error for every problem of a config: a user fixing a file wants the whole list in one run."""
    if len(problems) == 1:
        text = f"{source}: {problems[0]}"
    else:
        text = f"{len(problems)} problems in {source}:\n" + "\n".join(f"  - {p}" for p in problems)
    return ConfigError(text, problems=problems, fix=FIX)


def _build(kind: type, raw: Any, where: str, problems: list[str]) -> Any:
    """A config section from its mapping, every problem appended to ``problems`` (defaults stand in for bad values)."""
    known = {f.name: f for f in fields(kind)}
    if not isinstance(raw, dict):
        problems.append(f"{where}: got {setting_text(raw)}; accepts a mapping of settings ({', '.join(known)})")
        return kind()
    unknown = sorted(set(raw) - set(known))
    if unknown:
        problems.append(f"{where}: unknown setting(s) {unknown}; known: {sorted(known)}")
    hints = get_type_hints(kind)
    defaults = kind()
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in known:
            continue
        current = getattr(defaults, name)
        if is_dataclass(current):
            values[name] = _build(type(current), value, f"{where}.{name}", problems)
            continue
        found = value_problems(value, hints[name], known[name].metadata.get("accepts"), f"{where}.{name}")
        problems += found
        if not found:
            values[name] = value
    return kind(**values)


def value_problems(value: Any, hint: Any, accepts: Accepts | None, where: str) -> list[str]:
    """The problems of one setting's value: its type (from the annotation ``hint``), then what it accepts."""
    accepts = accepts or Accepts()
    if not _fits(value, hint):
        return [f"{where}: got {setting_text(value)}; accepts {_accepted(hint, accepts)}"]
    if accepts.choices and value not in accepts.choices:
        return [f"{where}: got {setting_text(value)}; accepts {_accepted(hint, accepts)}"]
    numbers = [v for v in (value if isinstance(value, list | tuple) else [value]) if isinstance(v, int | float)]
    if accepts.bounds_text() and not all(accepts.in_bounds(float(v)) for v in numbers):
        return [f"{where}: got {setting_text(value)}; accepts {_accepted(hint, accepts)}"]
    return accepts.rule(value, where) if accepts.rule is not None and value is not None else []


def require(path: str, value: Any) -> None:
    """Refuse ``value`` for the setting at ``path`` (``"split.fractions"``) unless it passes that setting's checks.

    For code that takes a setting's value as an argument (the splitter, the folds): it
    accepts what the config accepts, by the same statement.
    """
    kind: type = TrainConfig
    *sections, name = path.split(".")
    for section in sections:
        kind = type(getattr(kind(), section))
    spec = {f.name: f for f in fields(kind)}[name]
    problems = value_problems(value, get_type_hints(kind)[name], spec.metadata.get("accepts"), f"config.{path}")
    if problems:
        raise _refusal(problems, "the training settings")


def _fits(value: Any, hint: Any) -> bool:
    """Whether ``value`` has the annotated type (``int | None``, ``list[float]``, ``dict[str, Any]``, ...)."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if origin in (Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if origin is list:
        return isinstance(value, list | tuple) and all(_fits(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, Mapping) and all(_fits(k, args[0]) and _fits(v, args[1]) for k, v in value.items())
    return is_kind(value, hint)


def _accepted(hint: Any, accepts: Accepts) -> str:
    """What a setting accepts, in words: its type, then its choices or bounds."""
    if accepts.choices:
        return "one of " + ", ".join(accepts.choices)
    bounds = accepts.bounds_text()
    return _type_text(hint) + (f", {'each ' if get_origin(hint) is list else ''}{bounds}" if bounds else "")


def _type_text(hint: Any) -> str:
    origin, args = get_origin(hint), get_args(hint)
    if hint is type(None):
        return "null"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_text(a) for a in args)
    if origin is list:
        return f"a list of {_type_text(args[0]).removeprefix('a ')}s"
    if origin is dict:
        return "a mapping of names to " + ("mappings" if get_origin(args[1]) is dict else "values")
    return kind_text(hint)
