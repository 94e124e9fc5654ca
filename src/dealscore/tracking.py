"""MLflow tracking and model registry: the ONLY module that imports mlflow.

- Store: ``MLFLOW_TRACKING_URI`` when set, else an embedded SQLite file
  ``<data dir>/mlflow.db`` with artifacts in ``<data dir>/mlartifacts``, the data
  dir being :func:`dealscore.paths.data_dir` (``.dealscore`` by default). Browse it
  with ``mlflow ui --backend-store-uri sqlite:///$PWD/.dealscore/mlflow.db``.
- A training run logs its config as params, the data window and sizes, every
  numeric figure of the report as metrics, the plots, the report and holdout
  predictions, and the bundle as ONE pyfunc model with a signature and an input
  example. The pyfunc takes *feature rows* (the columns of the bundle's
  FeatureSpec, as ``dealscore.features.build_features`` makes them; categoricals
  as strings) and returns p_win, the inferred stage, its probability and one
  ``p_stage_<name>`` column per stage. Contract-shaped deal histories go through
  ``dealscore.scoring`` / the service instead, which add reasons and actions.
- Versions are registered under one name (``dealscore``); the ``champion``
  alias marks the version that serves, ``challenger`` one that failed the gate.
- :func:`champion` keeps a local copy of the champion's bundle and falls back to
  it when the registry is unreachable, so the service can still start; it says
  which source it used. The copy is keyed by the registry (its tracking URI) and
  checked against the champion's version and run, so it is never served for
  another registry or for a version recreated under the same number.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

# An embedded, often offline product does not phone home: MLflow's usage telemetry is off unless the user
# explicitly turns it back on (MLFLOW_DISABLE_TELEMETRY=false).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from dealscore.errors import ModelNotReadyError, NoChampionError, NotFoundError
from dealscore.models.bundle import MANIFEST, ModelBundle, to_jsonable
from dealscore.paths import data_dir

DEFAULT_NAME = "dealscore"
CHAMPION = "champion"
CHALLENGER = "challenger"
BUNDLE_ARTIFACT = "bundle"
CACHE_META = "cache.json"
#: MLflow error codes that mean "no such model / alias" rather than "registry unavailable".
_ABSENT = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when set, else the embedded SQLite store in the data folder."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    folder = data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(folder / 'mlflow.db').resolve()}"


def artifact_location(uri: str) -> str | None:
    """Artifact root for new experiments: beside a SQLite file, else the server's default."""
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        return (db.parent / "mlartifacts").resolve().as_uri()
    return None


def _client() -> MlflowClient:
    uri = tracking_uri()
    if uri.startswith("sqlite:"):
        # the SQLite store announces its table migrations at INFO on every first connection
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def ensure_experiment(name: str) -> str:
    """Id of the experiment ``name``, creating it (with our artifact root) if needed."""
    client = _client()
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    return str(client.create_experiment(name, artifact_location=artifact_location(tracking_uri())))


@dataclass
class TrackedRun:
    """A logged training run and where its bundle model lives."""

    run_id: str
    experiment_id: str
    model_uri: str
    tracking_uri: str

    @property
    def url(self) -> str:
        """Link to the run in the MLflow UI (for an embedded store: after ``mlflow ui``)."""
        base = self.tracking_uri if self.tracking_uri.startswith("http") else "http://127.0.0.1:5000"
        return f"{base.rstrip('/')}/#/experiments/{self.experiment_id}/runs/{self.run_id}"

    @property
    def ui_command(self) -> str | None:
        """The command that opens the UI on an embedded store (None for a server)."""
        if self.tracking_uri.startswith("http"):
            return None
        return f"mlflow ui --backend-store-uri {self.tracking_uri}"


# --------------------------------------------------------------------------- pyfunc


def _coerce_features(bundle: ModelBundle, frame: pd.DataFrame) -> pd.DataFrame:
    """Give JSON-ish feature rows the dtypes the boosters were trained on."""
    out = frame.copy()
    cats: dict[str, list[str]] = dict(getattr(bundle.spec, "categories", {}) or {})
    for col in bundle.feature_names:
        if col not in out:
            continue
        if col in cats:
            values = out[col].astype(object).where(out[col].notna(), None)
            out[col] = pd.Categorical(values, categories=cats[col])
        else:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    return out


def example_rows(bundle: ModelBundle, features: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    """Feature rows as a client would send them (categoricals as strings): the input example."""
    rows = features.loc[:, bundle.feature_names].head(n).copy()
    for col in rows.columns:
        if isinstance(rows[col].dtype, pd.CategoricalDtype):
            rows[col] = rows[col].astype(object).where(rows[col].notna(), None).astype(object)
        else:
            rows[col] = pd.to_numeric(rows[col], errors="coerce").astype(float)
    return rows.reset_index(drop=True)


class DealscorePyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc wrapper around a :class:`ModelBundle` (input: feature rows)."""

    def load_context(self, context: Any) -> None:
        self.bundle = ModelBundle.load(context.artifacts[BUNDLE_ARTIFACT])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return self.bundle.predict_frame(_coerce_features(self.bundle, frame)).reset_index(drop=True)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep MLflow's own chatter (INFO logs, progress bars, registry prints) out of the CLI output.

    Our progress display already says what happens; errors still surface as exceptions.
    """
    logger = logging.getLogger("mlflow")
    old_level = logger.level
    old_bar = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    logger.setLevel(logging.ERROR)
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(old_level)
        if old_bar is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = old_bar


def _requirements() -> list[str]:
    from importlib.metadata import version

    pkgs = ["lightgbm", "scikit-learn", "pandas", "numpy", "pyyaml", "joblib", "pydantic", "mlflow"]
    return [f"{p}=={version(p)}" for p in pkgs]


# --------------------------------------------------------------------------- logging a run


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` (for MLflow params and metrics)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _numeric_metrics(report: dict[str, Any]) -> dict[str, float]:
    """Every finite number in the report (except matrices and timings) as an MLflow metric."""
    out: dict[str, float] = {}

    def walk(obj: Any, key: str) -> None:
        if isinstance(obj, dict):
            if "matrix" in obj or key.endswith("split") or key.endswith("timings_seconds"):
                return
            for k, v in obj.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(obj, bool):
            return
        elif isinstance(obj, int | float) and np.isfinite(obj):
            safe = "".join(ch if ch.isalnum() or ch in "_-. /" else "_" for ch in key)
            out[safe] = float(obj)

    walk(report, "")
    return out


def log_training_run(
    result: Any, *, experiment: str | None = None, params: dict[str, Any] | None = None,
    test_features: pd.DataFrame | None = None,
) -> TrackedRun:
    """Log one :class:`~dealscore.training.pipeline.TrainingResult` as an MLflow run with the bundle model."""
    name = experiment or result.config.experiment
    exp_id = ensure_experiment(name)
    uri = tracking_uri()
    with mlflow.start_run(experiment_id=exp_id) as run, tempfile.TemporaryDirectory() as tmp:
        all_params = {**flatten(result.config.to_dict()), **(params or {})}
        split = result.report["data"]["split"]
        all_params.update({f"data.{k}": v for k, v in flatten(split).items()})
        all_params.update({"data.deals": result.report["data"]["deals"],
                           "data.n_features": result.report["data"]["n_features"]})
        mlflow.log_params({k: str(v)[:5000] for k, v in all_params.items()})
        mlflow.log_metrics(_numeric_metrics(result.report))
        # the learning curve as stepped metrics (step = training deals): MLflow draws it as a curve
        for point in (result.report.get("win", {}).get("learning_curve") or {}).get("points", []):
            for metric in ("roc_auc", "log_loss"):
                if point.get(metric) is not None:
                    mlflow.log_metric(f"win.learning_curve.{metric}", float(point[metric]),
                                      step=int(point["train_deals"]))
        mlflow.log_dict(to_jsonable(result.report), "report.json")
        if result.report.get("stage", {}).get("recording_habits"):  # per rep, for coaching (also in report.json)
            mlflow.log_dict(to_jsonable(result.report["stage"]["recording_habits"]), "recording_habits.json")
        for fname, fig in result.figures.items():
            mlflow.log_figure(fig, f"plots/{fname}")
        hold = Path(tmp) / "holdout.parquet"
        result.holdout.to_parquet(hold, index=False)
        mlflow.log_artifact(str(hold), "evaluation")
        bundle_dir = result.bundle.save(Path(tmp) / BUNDLE_ARTIFACT)
        feats = test_features if test_features is not None else getattr(result, "test_features", None)
        example = example_rows(result.bundle, feats) if feats is not None else None
        signature = None
        if example is not None:
            out = DealscorePyfunc()
            out.bundle = result.bundle
            signature = mlflow.models.infer_signature(example, out.predict(None, example))
        pkg_dir = Path(__file__).resolve().parent
        with _quiet():
            info = mlflow.pyfunc.log_model(
                name=BUNDLE_ARTIFACT, python_model=DealscorePyfunc(), artifacts={BUNDLE_ARTIFACT: str(bundle_dir)},
                signature=signature, input_example=example, pip_requirements=_requirements(),
                code_paths=[str(pkg_dir)],
            )
        return TrackedRun(run_id=run.info.run_id, experiment_id=exp_id, model_uri=info.model_uri, tracking_uri=uri)


def log_backtest_run(
    summary: pd.DataFrame, rows: pd.DataFrame, figures: dict[str, Any], *, params: dict[str, Any] | None = None,
    experiment: str = "dealscore-forecast-backtest",
) -> TrackedRun:
    """Log a forecast backtest: per-method metrics, the per-cell table and its plots."""
    exp_id = ensure_experiment(experiment)
    with mlflow.start_run(experiment_id=exp_id) as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params({k: str(v)[:5000] for k, v in (params or {}).items()})
        metrics = {}
        for r in summary.to_dict("records"):
            for k in ("mape", "bias", "coverage_p10_p90", "crps"):
                v = r.get(k)
                if v is not None and np.isfinite(v):
                    metrics[f"week{r['week']}.{r['method']}.{k}"] = float(v)
        mlflow.log_metrics(metrics)
        cells = Path(tmp) / "backtest_cells.csv"
        rows.to_csv(cells, index=False)
        mlflow.log_artifact(str(cells), "backtest")
        mlflow.log_dict(to_jsonable(summary.to_dict("records")), "backtest/summary.json")
        for fname, fig in figures.items():
            mlflow.log_figure(fig, f"plots/{fname}")
        return TrackedRun(run_id=run.info.run_id, experiment_id=exp_id, model_uri="", tracking_uri=tracking_uri())


def log_gate(run: TrackedRun, decision: dict[str, Any], version: str, name: str = DEFAULT_NAME) -> None:
    """Record the gate decision on the run and on the model version."""
    client = _client()
    client.log_dict(run.run_id, to_jsonable(decision), "gate.json")
    client.set_tag(run.run_id, "dealscore.gate", decision["alias"])
    client.set_tag(run.run_id, "dealscore.version", version)
    client.set_model_version_tag(name, version, "gate_reasons", "; ".join(decision["reasons"])[:5000])


def register_bundle(bundle: ModelBundle | None, run: TrackedRun, name: str = DEFAULT_NAME) -> str:
    """Register the run's bundle model under ``name``; returns the new version number."""
    _client()
    with _quiet():
        mv = mlflow.register_model(run.model_uri, name)
    if bundle is not None:
        bundle.version = f"{name}/{mv.version}"
    _client().set_model_version_tag(name, mv.version, "run_id", run.run_id)
    return str(mv.version)


# --------------------------------------------------------------------------- aliases


def get_alias_version(alias: str, name: str = DEFAULT_NAME) -> str | None:
    """Version holding ``alias``, or None (also when the model is not registered yet)."""
    client = _client()
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.error_code in _ABSENT:
            return None
        raise  # the registry is unreachable or broken: callers must not mistake that for "no champion"


def get_champion_version(name: str = DEFAULT_NAME) -> str | None:
    """The version currently serving (``champion`` alias), or None."""
    return get_alias_version(CHAMPION, name)


def _check_version(client: MlflowClient, name: str, version: str) -> Any:
    try:
        return client.get_model_version(name, str(version))
    except MlflowException as exc:
        raise NotFoundError(
            f"model {name!r} has no version {version}; list them with `dealscore models`", name=name,
            version=str(version),
        ) from exc


def set_challenger(version: str, name: str = DEFAULT_NAME) -> None:
    """Mark a version that did not pass the gate."""
    client = _client()
    _check_version(client, name, version)
    client.set_registered_model_alias(name, CHALLENGER, str(version))


def promote(version: str, name: str = DEFAULT_NAME) -> str | None:
    """Give ``version`` the champion alias; returns the version it replaced (None if none).

    A challenger that is promoted loses the challenger alias.
    """
    client = _client()
    _check_version(client, name, version)
    previous = get_champion_version(name)
    client.set_registered_model_alias(name, CHAMPION, str(version))
    if get_alias_version(CHALLENGER, name) == str(version):
        client.delete_registered_model_alias(name, CHALLENGER)
    return previous


def version_info(version: str, name: str = DEFAULT_NAME) -> dict[str, Any]:
    """Aliases, run, gate reasons and holdout metrics of one version."""
    client = _client()
    mv = _check_version(client, name, version)
    metrics: dict[str, float] = {}
    if mv.run_id:
        with contextlib.suppress(MlflowException):
            metrics = client.get_run(mv.run_id).data.metrics
    return {
        "version": str(mv.version),
        "aliases": list(mv.aliases or []),
        "run_id": mv.run_id,
        "created": pd.Timestamp(mv.creation_timestamp, unit="ms").isoformat(timespec="seconds"),
        "gate_reasons": (mv.tags or {}).get("gate_reasons", ""),
        "roc_auc": metrics.get("win.model.roc_auc"),
        "log_loss": metrics.get("win.model.log_loss"),
        "ece": metrics.get("win.model.ece"),
        "stage_accuracy": metrics.get("stage.model.accuracy"),
    }


def list_versions(name: str = DEFAULT_NAME) -> list[dict[str, Any]]:
    """All registered versions, newest first."""
    client = _client()
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except MlflowException:
        return []
    nums = sorted((int(v.version) for v in versions), reverse=True)
    return [version_info(str(v), name) for v in nums]


# --------------------------------------------------------------------------- loading bundles


def _find_bundle_dir(root: Path) -> Path:
    for manifest in sorted(root.rglob(MANIFEST)):
        return manifest.parent
    raise ModelNotReadyError(f"downloaded model at {root} holds no dealscore bundle ({MANIFEST})")


def load_bundle(version: str, name: str = DEFAULT_NAME) -> ModelBundle:
    """Download and load one registered version's bundle."""
    _check_version(_client(), name, version)
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        path = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=tmp)
        bundle = ModelBundle.load(_find_bundle_dir(Path(path)))
    bundle.version = f"{name}/{version}"
    return bundle


def read_run_report(run_id: str) -> dict[str, Any]:
    """The report.json a training run logged."""
    _client()
    return dict(mlflow.artifacts.load_dict(f"runs:/{run_id}/report.json"))


def download_run_artifact(run_id: str, path: str, dst: str | Path) -> Path:
    """Download one artifact of a run (e.g. ``evaluation/holdout.parquet``)."""
    _client()
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=str(dst)))


def run_version(run_id: str) -> str:
    """The registered version a training run produced (from the run's ``dealscore.version`` tag)."""
    client = _client()
    version = client.get_run(run_id).data.tags.get("dealscore.version")
    if version is None:
        raise NotFoundError(f"run {run_id} registered no model version (was it logged by `dealscore train`?)")
    return str(version)


def latest_run_id(experiment: str = DEFAULT_NAME) -> str | None:
    """Most recent run of an experiment, or None."""
    client = _client()
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0].info.run_id if runs else None




@contextlib.contextmanager
def quick_failure() -> Iterator[None]:
    """Fail fast instead of retrying for minutes when a tracking server is down."""
    keys = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    old = {k: os.environ.get(k) for k in keys}
    for k, v in keys.items():
        os.environ.setdefault(k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)


def default_cache_dir() -> Path:
    """Where the local copies of champions are kept by default: ``<data dir>/model_cache``."""
    return data_dir() / "model_cache"


def registry_key(uri: str | None = None) -> str:
    """A short, stable name for one registry (its tracking URI), for keying local copies."""
    return hashlib.sha256((uri or tracking_uri()).encode("utf-8")).hexdigest()[:16]


def local_copy_dir(name: str = DEFAULT_NAME, local_cache_dir: str | Path | None = None,
                   uri: str | None = None) -> Path:
    """The local copy of ``name``'s champion from the registry at ``uri`` (default: the current one)."""
    cache = Path(local_cache_dir) if local_cache_dir is not None else default_cache_dir()
    return cache / registry_key(uri) / name


Source = Literal["registry", "local_copy"]


@dataclass(frozen=True)
class Champion:
    """The champion bundle and where it came from; ``note`` says why the local copy serves."""

    bundle: ModelBundle
    source: Source
    note: str | None = None


def _champion_version(client: MlflowClient, name: str) -> Any:
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException as exc:
        if exc.error_code in _ABSENT:
            raise NoChampionError(
                f"model {name!r} has no champion version in {tracking_uri()}",
                fix="train one with `dealscore train`, or promote one with `dealscore promote VERSION`") from exc
        raise


def _from_registry(name: str, target: Path) -> ModelBundle:
    """The champion from the registry, through the local copy when it is this very version and run."""
    with quick_failure():
        mv = _champion_version(_client(), name)
        version, run_id = str(mv.version), mv.run_id
        meta_path = target / CACHE_META
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text())
            if meta.get("version") == version and meta.get("run_id") == run_id:
                bundle = ModelBundle.load(target / BUNDLE_ARTIFACT)
                bundle.version = f"{name}/{version}"
                return bundle
        bundle = load_bundle(version, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    bundle.save(staging / BUNDLE_ARTIFACT)
    (staging / CACHE_META).write_text(json.dumps({"name": name, "version": version, "run_id": run_id,
                                                  "tracking_uri": tracking_uri()}))
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return bundle


def local_copy(name: str = DEFAULT_NAME, local_cache_dir: str | Path | None = None, *,
               reason: str) -> Champion:
    """The local copy of the current registry's champion, served because of ``reason``.

    Raises :class:`ModelNotReadyError` when this registry has no local copy.
    """
    target = local_copy_dir(name, local_cache_dir)
    if not (target / BUNDLE_ARTIFACT / MANIFEST).is_file():
        raise ModelNotReadyError(f"{reason}; and there is no local copy in {target}",
                                 fix="start the registry or train a model (dealscore train)")
    meta = json.loads((target / CACHE_META).read_text()) if (target / CACHE_META).is_file() else {}
    bundle = ModelBundle.load(target / BUNDLE_ARTIFACT)
    bundle.version = f"{name}/{meta.get('version', 'cached')}"
    return Champion(bundle, "local_copy", f"{reason}; serving the local copy of {bundle.version} in {target}")


def champion(name: str = DEFAULT_NAME, local_cache_dir: str | Path | None = None, *,
             use_registry: bool = True) -> Champion:
    """The champion from the registry, refreshing its local copy; that copy when the registry fails.

    The one fallback of the product (the CLI and the service both come here);
    the result says which source served. Raises :class:`ModelNotReadyError`
    when neither the registry nor a local copy of *this* registry can provide a bundle,
    and :class:`NoChampionError` when the registry answers that the model has no
    champion: that is the registry's answer (a model withdrawn by removing its alias,
    or a registry recreated empty), not an outage the copy stands in for.
    """
    if not use_registry:
        return local_copy(name, local_cache_dir, reason="the registry is disabled (DEALSCORE_USE_REGISTRY=false)")
    try:
        return Champion(_from_registry(name, local_copy_dir(name, local_cache_dir)), "registry")
    except NoChampionError:
        raise
    except Exception as exc:  # registry down, store corrupt, network: fall back to the copy
        reason = (exc.message if isinstance(exc, ModelNotReadyError)
                  else f"model registry {tracking_uri()} unavailable ({type(exc).__name__}: {exc})")
        return local_copy(name, local_cache_dir, reason=reason)


def load_champion(name: str = DEFAULT_NAME, local_cache_dir: str | Path | None = None) -> ModelBundle:
    """The champion bundle (see :func:`champion`); serving the local copy is announced by a warning."""
    got = champion(name, local_cache_dir)
    if got.source == "local_copy":
        warnings.warn(got.note or "serving the local copy", stacklevel=2)
    return got.bundle
