"""Loading the model bundle, surviving a registry outage, and swapping it without downtime.

Where the bundle comes from, in order:

1. ``DEALSCORE_MODEL_PATH``: a bundle folder (tests, containers with the model baked in);
2. the MLflow registry's ``champion`` through :func:`dealscore.tracking.champion`,
   which also refreshes the local copy of *this* registry under ``<data_dir>/model_cache``;
3. that local copy, when the registry cannot be reached (or is disabled); the
   library's one fallback says which source served.

With none of them the service still starts: ``/readyz`` answers 503 and scoring
answers 503 saying what to do, and a background task keeps retrying. A reload
builds the new scorer completely before one reference assignment swaps it in;
requests already running keep the object they started with.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import structlog

from dealscore import tracking
from dealscore.errors import DealscoreError, ModelNotReadyError
from dealscore.models.episodes import EpisodeModel
from dealscore.models.stage_labels import describe_habits
from dealscore.scoring.stage_values import StageValues
from dealscore.scoring.warnings import WarningRules
from dealscore.taxonomy import StageTaxonomy
from dealscore.times import naive_utc
from dealscore_service.schemas import EpisodePaces, ModelInfo, RecordingHabits, StateValues
from dealscore_service.settings import Settings

log = structlog.get_logger("dealscore_service.model")

Source = Literal["registry", "local_copy", "path"]


@dataclass(frozen=True)
class LoadedModel:
    """A bundle ready to serve: its scorer, version and provenance."""

    bundle: Any
    scorer: Any
    version: str
    source: Source
    loaded_at: datetime
    message: str | None = None
    training_window: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    recording_habits: dict[str, Any] = field(default_factory=dict)
    state_values: dict[str, Any] = field(default_factory=dict)
    episodes: dict[str, Any] = field(default_factory=dict)

    @property
    def taxonomy(self) -> StageTaxonomy:
        return self.bundle.taxonomy  # type: ignore[no-any-return]


def _load_bundle_folder(path: Path) -> Any:
    from dealscore.models.bundle import ModelBundle

    return ModelBundle.load(path)


def _has_bundle(path: Path) -> bool:
    return (path / "bundle.json").is_file()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


class ModelLoader:
    """Holds the model in use and knows how to (re)load it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.current: LoadedModel | None = None
        self.last_error: str | None = None
        self._reload_lock = threading.Lock()

    # ------------------------------------------------------------------ sources

    def _load(self) -> LoadedModel:
        """Build a new :class:`LoadedModel` from the configured sources (no swap)."""
        s = self.settings
        errors: list[str] = []
        bundle: Any = None
        source: Source | None = None
        message: str | None = None
        if s.model_path is not None:
            if not _has_bundle(s.model_path):
                raise ModelNotReadyError(
                    f"no model bundle in DEALSCORE_MODEL_PATH={s.model_path}",
                    fix="point DEALSCORE_MODEL_PATH at a folder written by bundle.save(), or unset it",
                )
            try:
                bundle, source = _load_bundle_folder(s.model_path), "path"
            except DealscoreError:
                raise
            except Exception as exc:  # an unreadable or incompatible bundle must not stop the service
                raise ModelNotReadyError(
                    f"the bundle in DEALSCORE_MODEL_PATH={s.model_path} cannot be loaded "
                    f"({type(exc).__name__}: {_short(exc)})",
                    fix="retrain the model with this version of dealscore (dealscore train) and point at it",
                ) from exc
        else:
            try:
                got = tracking.champion(s.model_name, s.resolved_model_cache_dir, use_registry=s.use_registry)
                bundle, source, message = got.bundle, got.source, got.note
                if source == "local_copy":
                    log.warning("serving_local_copy", reason=(message or "")[:300])
            except ModelNotReadyError as exc:
                errors.append(exc.message)
            except Exception as exc:  # a corrupt local copy must not stop the service
                errors.append(f"local copy: {_short(exc)}")
        if bundle is None or source is None:
            raise ModelNotReadyError(
                "no model is loaded: " + "; ".join(errors),
                fix="train and promote a model (dealscore train), make the MLflow registry reachable, "
                "or set DEALSCORE_MODEL_PATH to a bundle folder; the service retries on its own",
            )
        from dealscore.scoring import Scorer

        try:
            scorer = Scorer(bundle)
        except DealscoreError:
            raise
        except Exception as exc:
            raise ModelNotReadyError(
                f"the model bundle {getattr(bundle, 'version', '?')} cannot be used for scoring "
                f"({type(exc).__name__}: {_short(exc)})",
                fix="retrain the model with this version of dealscore (dealscore train)",
            ) from exc
        return LoadedModel(
            bundle=bundle, scorer=scorer, version=str(bundle.version), source=source,
            loaded_at=naive_utc(datetime.now(UTC)), message=message,
            training_window=dict(getattr(bundle, "training_window", {}) or {}),
            metrics=dict(getattr(bundle, "metrics", {}) or {}),
            recording_habits=dict(getattr(bundle, "recording_habits", {}) or {}),
            state_values=_state_values(bundle),
            episodes=_episodes(bundle, scorer.warning_rules or WarningRules()),
        )

    # ------------------------------------------------------------------ public

    def load(self) -> LoadedModel | None:
        """Load at start; on failure remember why and leave the service not ready."""
        try:
            return self.reload()[1]
        except ModelNotReadyError:
            return None

    def reload(self) -> tuple[str | None, LoadedModel]:
        """Load the model again and swap it in atomically; the old one stays on failure.

        Returns the previous version and the model now in use.
        """
        with self._reload_lock:
            previous = self.current.version if self.current else None
            try:
                try:
                    new = self._load()
                except ModelNotReadyError:
                    raise
                except DealscoreError as exc:
                    raise ModelNotReadyError(f"the model bundle could not be loaded: {exc.message}") from exc
            except ModelNotReadyError as exc:
                self.last_error = exc.message
                log.error("model_not_loaded", reason=exc.message, serving=previous)
                if self.current is not None:
                    raise ModelNotReadyError(
                        f"reload failed, still serving model version {previous}: {exc.message}",
                        fix=exc.detail.get("fix"),
                    ) from exc
                raise
            self.current = new  # the swap: one reference assignment
            self.last_error = None
            log.info("model_loaded", version=new.version, source=new.source, previous=previous, note=new.message)
            return previous, new

    def info(self, reps: Collection[str] | None = None) -> ModelInfo:
        """What ``/v1/model`` reports and the model page shows: the model in use, or why there is none.

        ``reps``: the reps whose recording habits to include (``None``: all; see
        :func:`dealscore_service.model_info.visible_reps`).
        """
        m, name = self.current, self.settings.model_name
        if m is None:
            return ModelInfo(loaded=False, name=name, message=self.last_error or "loading")
        habits = dict(m.recording_habits or {})
        if reps is not None:
            habits["reps"] = [r for r in habits.get("reps") or [] if r.get("rep_id") in reps]
        return ModelInfo(loaded=True, name=name, version=m.version, source=m.source, loaded_at=m.loaded_at,
                         training_window=m.training_window, metrics=m.metrics, message=m.message,
                         recording_habits=RecordingHabits(company=habits.get("company") or {},
                                                          reps=habits.get("reps") or [],
                                                          summary=describe_habits(habits)),
                         state_values=StateValues(**m.state_values), episodes=EpisodePaces(**m.episodes))

    def require(self) -> LoadedModel:
        """The model in use, or :class:`ModelNotReadyError` (503) saying why there is none."""
        model = self.current
        if model is None:
            raise ModelNotReadyError(
                f"the service has no model loaded, so it cannot score yet ({self.last_error or 'still loading'})",
                fix="train and promote a model (dealscore train) or set DEALSCORE_MODEL_PATH; "
                "an admin can then POST /v1/model/reload",
            )
        return model


def _episodes(bundle: Any, rules: WarningRules) -> dict[str, Any]:
    """The episode model's paces as the model page shows them (empty for a bundle trained without one)."""
    model = EpisodeModel.from_dict((getattr(bundle, "stage_stats", None) or {}).get("_episodes"))
    return ({"deals": model.deals, "states": model.paces(), "reading": model.summary(),
             "fires_at": rules.episode_probability} if model is not None else {})


def _state_values(bundle: Any) -> dict[str, Any]:
    """The bundle's state values as the model page shows them (empty for a bundle trained without them)."""
    tax = getattr(bundle, "taxonomy", None)
    values = StageValues.from_stage_stats(getattr(bundle, "stage_stats", None), list(tax.names)) if tax else None
    return values.summary() if values is not None else {}
