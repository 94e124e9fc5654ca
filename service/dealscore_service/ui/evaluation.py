"""The model page's evaluation plots, rebuilt from the training run's held-out predictions.

A bundle carries its headline metrics but not the curves behind them. The
training run logged in MLflow does: ``evaluation/holdout.parquet`` holds every
test-slice snapshot with its outcome and the probability the model and each
baseline gave it, and ``report.json`` the metrics beside the baselines. From
those the page draws the same reliability diagram and lift chart as the run's
PNG plots (same bins), as inline SVG, and writes a one-line reading of each.

Everything MLflow goes through :mod:`dealscore.tracking`; results are cached
per model version (a failure for a few minutes, so a registry outage costs one
slow page view, not one per view).
"""

from __future__ import annotations

import re
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import structlog

from dealscore_service.ui.charts import Series

log = structlog.get_logger("dealscore_service.ui")

N_BINS = 10
MIN_BIN = 10  # calibration bins with fewer snapshots are too noisy to draw (as in the training plots)
FAILURE_TTL_SECONDS = 300.0
NAMES = {
    "model": "dealscore model",
    "stage_table": "CRM stage table",
    "naive_bayes": "naive Bayes (stage + profile)",
    "logistic": "logistic regression",
    "oracle": "oracle (true probability, simulated data only)",
}
_VERSION = re.compile(r"^(?P<name>[^/]+)/(?P<number>\d+)$")


@dataclass(frozen=True)
class CalibrationBin:
    predicted: float
    observed: float
    n: int


@dataclass(frozen=True)
class MetricsRow:
    """One scorer's held-out metrics (the model, a baseline, the oracle)."""

    key: str
    name: str
    roc_auc: float | None
    log_loss: float | None
    brier: float | None
    ece: float | None
    top_decile_lift: float | None


#: metric → True when higher is better (the table's columns)
HIGHER_IS_BETTER = {"roc_auc": True, "log_loss": False, "brier": False, "ece": False, "top_decile_lift": True}
METRIC_NAMES = {"roc_auc": "ROC AUC", "log_loss": "Log loss", "brier": "Brier", "ece": "Calibration error",
                "top_decile_lift": "Top-decile lift"}


@dataclass(frozen=True)
class Comparison:
    """The model against the best baseline on one metric, with a bootstrap interval over deals."""

    metric: str
    baseline: str
    difference: float
    low: float
    high: float
    verdict: str  # better | tied | worse

    @property
    def name(self) -> str:
        return METRIC_NAMES.get(self.metric, self.metric)

    def reading(self) -> str:
        """E.g. 'better than logistic regression: −0.004 (95% interval −0.007 to −0.001)'."""
        what = {"better": "better than", "worse": "worse than"}.get(self.verdict, "tied with")
        return (f"{what} {self.baseline}: {self.difference:+.4f} "
                f"(95% interval {self.low:+.4f} to {self.high:+.4f}, resampling deals)")


def comparisons(report: dict[str, Any] | None) -> list[Comparison]:
    """The report's model-vs-best-baseline differences, in the table's column order (none for older runs)."""
    section = ((report or {}).get("win") or {}).get("comparison") or {}
    out = []
    for metric in HIGHER_IS_BETTER:
        row = section.get(metric)
        if not isinstance(row, dict) or row.get("difference") is None:
            continue
        lo, hi = (row.get("interval") or [float("nan"), float("nan")])[:2]
        out.append(Comparison(metric, NAMES.get(row.get("best_baseline"), str(row.get("best_baseline"))),
                              float(row["difference"]), float(lo if lo is not None else "nan"),
                              float(hi if hi is not None else "nan"), str(row.get("verdict", "tied"))))
    return out


def best_cells(rows: list[MetricsRow]) -> dict[str, str]:
    """metric → key of the scorer with the best value among the model and the baselines (never the oracle)."""
    out = {}
    for metric, higher in HIGHER_IS_BETTER.items():
        values = [(getattr(r, metric), r.key) for r in rows if r.key != "oracle" and getattr(r, metric) is not None]
        if values:
            out[metric] = (max if higher else min)(values)[1]
    return out


@dataclass
class Evaluation:
    """The curves, the metrics table and the readings for one model version."""

    version: str
    run_id: str | None
    n: int
    base_rate: float
    calibration: list[CalibrationBin]
    lift: dict[str, list[float]]  # scorer → lift per decile (1 = highest scores)
    table: list[MetricsRow] = field(default_factory=list)
    comparison: list[Comparison] = field(default_factory=list)
    family: str | None = None

    @property
    def best(self) -> dict[str, str]:
        """metric → the scorer whose cell is emphasised (the best of model and baselines)."""
        return best_cells(self.table)

    @property
    def model_wins(self) -> bool:
        """Whether the model row deserves emphasis: better than the best baseline on log loss and worse on none.

        Without bootstrap figures (older runs), the model must have the best log loss in the table.
        """
        if self.comparison:
            verdicts = {c.metric: c.verdict for c in self.comparison}
            return verdicts.get("log_loss") == "better" and "worse" not in verdicts.values()
        return self.best.get("log_loss") == "model"

    @property
    def ece(self) -> float:
        total = sum(b.n for b in self.calibration)
        return sum(b.n * abs(b.predicted - b.observed) for b in self.calibration) / total if total else float("nan")

    def calibration_series(self) -> list[Series]:
        return [Series(NAMES["model"], [(b.predicted, b.observed) for b in self.calibration])]

    def lift_baselines(self) -> list[Series]:
        """What the CRM's own stage probabilities achieve, drawn as a line over the model's bars."""
        crm = self.lift.get("stage_table") or []
        return [Series(NAMES["stage_table"], [(float(i + 1), v) for i, v in enumerate(crm)])] if crm else []

    def calibration_reading(self) -> str:
        """One sentence a manager can act on."""
        e = 100 * self.ece
        worst = max(self.calibration, key=lambda b: abs(b.predicted - b.observed), default=None)
        head = f"On {self.n:,} held-out snapshots, predicted and observed win rates differ by {e:.1f} points on average"
        # a gap is named when it is twice the average and beyond chance: three binomial standard errors of the
        # win rate the model predicts there (the observed one can be 0 or 1 in a small bin, whose error would be
        # 0), since the largest of ten bins is read (Bonferroni's z for 10 at 5 % is 2.8), and snapshots of one
        # deal share an outcome, so even this is lenient. A perfectly calibrated model's noisiest bin (2.3
        # errors) was named, and "read 70% as about 70%" then contradicted it.
        gap = worst is not None and abs(worst.predicted - worst.observed) * 100 >= 2 * max(e, 1) and abs(
            worst.predicted - worst.observed) > 3 * np.sqrt(worst.predicted * (1 - worst.predicted) / max(worst.n, 1))
        if e <= 5:
            tail = ": most scores read as the probability they state." if gap else ": read a score of 70% as about 70%."
        elif e <= 10:
            tail = f": read a score as a rough probability, give or take {e:.0f} points."
        else:
            tail = ": use the scores to rank deals rather than as exact odds."
        if gap and worst is not None:
            side = "over" if worst.predicted > worst.observed else "under"
            tail += (f" The largest gap is around {100 * worst.predicted:.0f}%, where the model "
                     f"{side}states (deals won {100 * worst.observed:.0f}%).")
        return head + tail

    def lift_reading(self) -> str:
        model = self.lift.get("model") or []
        if not model:
            return "No lift figures for this model."
        top = model[0]
        text = (f"Deals in the top 10% of scores won {top:.1f}× as often as the average deal "
                f"({100 * top * self.base_rate:.0f}% against {100 * self.base_rate:.0f}%)")
        crm = self.lift.get("stage_table") or []
        if crm:
            text += f"; the CRM's stage probabilities reach {crm[0]:.1f}× on the same deals"
        return text + "."


def calibration_bins(y: np.ndarray, p: np.ndarray, n_bins: int = N_BINS) -> list[CalibrationBin]:
    """Equal-width bins of predicted probability, as the training run's calibration plot draws them."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    out = []
    for b in range(n_bins):
        m = bins == b
        if m.sum() >= MIN_BIN:
            out.append(CalibrationBin(float(p[m].mean()), float(y[m].mean()), int(m.sum())))
    return out


def lift_by_decile(y: np.ndarray, p: np.ndarray, n_bins: int = N_BINS) -> list[float]:
    """Win rate per score decile over the overall win rate (decile 1 = highest scores)."""
    y = np.asarray(y, dtype=float)
    base = y.mean() if len(y) else 0.0
    if base <= 0:
        return []
    order = np.argsort(-np.asarray(p, dtype=float), kind="stable")
    return [float(part.mean() / base) if len(part) else float("nan") for part in np.array_split(y[order], n_bins)]


def _row(key: str, section: dict[str, Any]) -> MetricsRow:
    def num(name: str) -> float | None:
        v = section.get(name)
        return float(v) if isinstance(v, int | float) and v == v else None

    return MetricsRow(key, NAMES.get(key, key), num("roc_auc"), num("log_loss"), num("brier"), num("ece"),
                      num("top_decile_lift"))


def metrics_table(report: dict[str, Any] | None, headline: dict[str, Any]) -> list[MetricsRow]:
    """The model beside its baselines (from the run's report), or the bundle's headline metrics alone."""
    win = (report or {}).get("win") or {}
    if not win:
        return [_row("model", headline.get("win") or {})] if headline.get("win") else []
    rows = [_row("model", win.get("model") or {})]
    rows += [_row(k, v) for k, v in (win.get("baselines") or {}).items()]
    oracle = win.get("oracle") or {}
    if oracle.get("available"):
        rows.append(_row("oracle", oracle))
    return rows


def evaluation_from_holdout(
    version: str, holdout: pd.DataFrame, report: dict[str, Any] | None = None, headline: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> Evaluation:
    """Curves and readings from a run's holdout table (``won`` and one ``p_<scorer>`` column per scorer)."""
    y = holdout["won"].to_numpy(dtype=float)
    lift = {c.removeprefix("p_"): lift_by_decile(y, holdout[c].to_numpy(dtype=float))
            for c in holdout.columns if c.startswith("p_")}
    return Evaluation(
        version=version, run_id=run_id, n=len(holdout), base_rate=float(y.mean()) if len(y) else 0.0,
        calibration=calibration_bins(y, holdout["p_model"].to_numpy(dtype=float)), lift=lift,
        table=metrics_table(report, headline or {}), comparison=comparisons(report),
        family=(((report or {}).get("win") or {}).get("model") or {}).get("family"),
    )


class EvaluationCache:
    """Per-version evaluations, loaded from the MLflow run on first view."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done: dict[str, Evaluation] = {}
        self._failed: dict[str, tuple[float, str]] = {}

    def get(self, loaded: Any) -> tuple[Evaluation | None, str | None]:
        """The evaluation of the loaded model, or ``None`` and a sentence saying why and what to do."""
        version = str(loaded.version)
        with self._lock:
            if version in self._done:
                return self._done[version], None
            failed = self._failed.get(version)
            if failed is not None and time.monotonic() - failed[0] < FAILURE_TTL_SECONDS:
                return None, failed[1]
            try:
                evaluation = self._load(loaded)
            except _Unavailable as exc:
                self._failed[version] = (time.monotonic(), str(exc))
                return None, str(exc)
            self._done[version] = evaluation
            return evaluation, None

    @staticmethod
    def _load(loaded: Any) -> Evaluation:
        version = str(loaded.version)
        match = _VERSION.match(version)
        if match is None:
            raise _Unavailable(
                f"Model {version} is not a registered version, so its training run (and the plots) cannot be "
                "found: train with `dealscore train`, which registers the model in MLflow, and serve the champion."
            )
        if getattr(loaded, "source", None) == "local_copy":
            raise _Unavailable(
                "The MLflow registry is unreachable (the service runs on its local copy of the model), so the "
                "evaluation plots cannot be read; they appear again once the registry answers."
            )
        from dealscore import tracking

        name, number = match.group("name"), match.group("number")
        started = time.perf_counter()
        try:
            with tracking.quick_failure():  # a registry that is down must cost seconds, not minutes of retries
                run_id = tracking.version_info(number, name).get("run_id")
                if not run_id:
                    raise _Unavailable(f"Model {version} has no training run in the registry; retrain it with "
                                       "`dealscore train` to get its evaluation plots.")
                with tempfile.TemporaryDirectory() as tmp:
                    path = tracking.download_run_artifact(run_id, "evaluation/holdout.parquet", tmp)
                    holdout = pd.read_parquet(Path(path))
                try:
                    report: dict[str, Any] | None = tracking.read_run_report(run_id)
                except Exception:  # the plots do not need the report; the table falls back to headline metrics
                    report = None
        except _Unavailable:
            raise
        except Exception as exc:
            log.warning("ui_evaluation_unavailable", version=version, error=type(exc).__name__,
                        reason=str(exc).splitlines()[0][:200] if str(exc) else "")
            raise _Unavailable(
                f"The training run of model {version} could not be read from the MLflow registry "
                f"({type(exc).__name__}); check MLFLOW_TRACKING_URI. The page retries in a few minutes."
            ) from exc
        evaluation = evaluation_from_holdout(version, holdout, report, dict(getattr(loaded, "metrics", {}) or {}),
                                             run_id)
        log.info("ui_evaluation_loaded", version=version, run_id=run_id, snapshots=evaluation.n,
                 seconds=round(time.perf_counter() - started, 2))
        return evaluation


class _Unavailable(Exception):
    """The plots cannot be drawn; the message says why and what to do."""
