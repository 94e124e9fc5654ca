"""Loading the model bundle, surviving a registry outage, and swapping it without downtime.

Where the bundle comes from, in order:

1. ``DEALSCORE_MODEL_PATH``: a bundle folder (tests, containers with the model baked in);
2. the MLflow registry's ``champion`` through :func:`dealscore.tracking.load_champion`,
   which also refreshes the local copy under ``<data_dir>/model``;
3. that local copy, when the registry cannot be reached.

With none of them the service still starts: ``/readyz`` answers 503 and scoring
answers 503 saying what to do, and a background task keeps retrying. A reload
builds the new scorer completely before one reference assignment swaps it in;
requests already running keep the object they started with.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import structlog

from dealscore.errors import DealscoreError, ModelNotReadyError
from dealscore.taxonomy import StageTaxonomy
from dealscore.times import naive_utc
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

    def _from_registry(self) -> tuple[Any, Source, str | None]:
        """Champion from the registry; ``load_champion`` keeps the local copy and falls back to it.

        The fallback announces itself with a warning, which is how the service
        learns (and reports on ``/v1/model``) that it serves the local copy.
        """
        from dealscore import tracking

        cache = self.settings.resolved_model_cache_dir
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            bundle = tracking.load_champion(name=self.settings.model_name, local_cache_dir=cache)
        fallback = [str(w.message) for w in caught if "local copy" in str(w.message)]
        if fallback:
            log.warning("serving_local_copy", reason=fallback[0][:300])
            return bundle, "local_copy", fallback[0][:500]
        return bundle, "registry", None

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
            if s.use_registry:
                try:
                    bundle, source, message = self._from_registry()
                except Exception as exc:  # any registry failure means: try the local copy
                    errors.append(f"registry: {_short(exc)}")
                    log.warning("registry_unavailable", error=type(exc).__name__, reason=_short(exc))
            if bundle is None:
                # load_champion falls back to its copy itself; reading it here too covers a registry client
                # that cannot even be imported, and DEALSCORE_USE_REGISTRY=false with a copy from earlier.
                copy = s.resolved_model_cache_dir / s.model_name / "bundle"
                if _has_bundle(copy):
                    try:
                        bundle, source = _load_bundle_folder(copy), "local_copy"
                        why = errors[0] if errors else "the registry is disabled (DEALSCORE_USE_REGISTRY=false)"
                        message = f"{why}; serving the local copy in {copy}"
                    except Exception as exc:  # a corrupt copy must not stop the service
                        errors.append(f"local copy {copy}: {_short(exc)}")
                else:
                    errors.append(f"no local copy in {copy}")
                    if not s.use_registry:
                        errors.append("the registry is disabled (DEALSCORE_USE_REGISTRY=false)")
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
