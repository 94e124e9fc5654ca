"""Calibration bins, lift and the one-line readings, on held-out predictions with known properties."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from dealscore_service.ui.evaluation import (
    EvaluationCache,
    calibration_bins,
    evaluation_from_holdout,
    lift_by_decile,
    metrics_table,
)


def holdout(n: int = 4000, seed: int = 3, bias: float = 0.0) -> pd.DataFrame:
    """Outcomes drawn from ``p_model`` itself (perfectly calibrated, shifted by ``bias``) and a weak baseline."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.98, n)
    won = (rng.uniform(size=n) < p).astype(float)
    weak = np.clip(0.5 * p + 0.25 + rng.normal(0, 0.2, n), 0.01, 0.99)
    return pd.DataFrame({"won": won, "p_model": np.clip(p + bias, 0, 1), "p_stage_table": weak})


def test_calibration_bins_follow_the_diagonal_for_a_calibrated_scorer() -> None:
    h = holdout()
    bins = calibration_bins(h["won"].to_numpy(), h["p_model"].to_numpy())
    assert len(bins) == 10 and sum(b.n for b in bins) == len(h)
    assert all(abs(b.predicted - b.observed) < 0.06 for b in bins)
    sparse = calibration_bins(np.array([1.0, 0.0, 1.0]), np.array([0.9, 0.1, 0.95]))
    assert sparse == []  # bins under 10 snapshots are not drawn


def test_lift_ranks_the_strong_scorer_above_the_weak_one() -> None:
    h = holdout()
    model = lift_by_decile(h["won"].to_numpy(), h["p_model"].to_numpy())
    weak = lift_by_decile(h["won"].to_numpy(), h["p_stage_table"].to_numpy())
    assert len(model) == 10 and model[0] > 1.7 and model[-1] < 0.3
    assert model[0] > weak[0]
    assert abs(np.mean(model) - 1.0) < 0.01  # equal-sized deciles average to the overall rate
    assert lift_by_decile(np.zeros(20), np.linspace(0, 1, 20)) == []


def test_readings() -> None:
    good = evaluation_from_holdout("dealscore/4", holdout())
    assert good.calibration_reading().startswith("On 4,000 held-out snapshots, predicted and observed win rates")
    assert "read a score of 70% as about 70%" in good.calibration_reading()
    lift = good.lift_reading()
    assert lift.startswith("Deals in the top 10% of scores won 1.") and "CRM's stage probabilities reach" in lift
    off = evaluation_from_holdout("dealscore/5", holdout(bias=0.15))
    assert "rank deals rather than as exact odds" in off.calibration_reading() or "give or take" in \
        off.calibration_reading()
    assert off.ece > good.ece + 0.08
    assert [s.name for s in good.lift_baselines()] == ["CRM stage table"]


def test_metrics_table_prefers_the_run_report() -> None:
    report = {"win": {"model": {"roc_auc": 0.83, "log_loss": 0.5, "brier": 0.17, "ece": 0.03, "top_decile_lift": 2.1},
                      "baselines": {"stage_table": {"roc_auc": 0.7}, "logistic": {"roc_auc": 0.79}},
                      "oracle": {"available": True, "roc_auc": 0.9}}}
    rows = metrics_table(report, {})
    assert [r.key for r in rows] == ["model", "stage_table", "logistic", "oracle"]
    assert rows[0].roc_auc == 0.83 and rows[1].log_loss is None
    assert [r.key for r in metrics_table({"win": {"model": {}, "oracle": {"available": False}}}, {})] == ["model"]
    assert [r.key for r in metrics_table(None, {"win": {"roc_auc": 0.8}})] == ["model"]
    assert metrics_table(None, {}) == []


def test_cache_explains_models_without_a_training_run() -> None:
    cache = EvaluationCache()
    unregistered = SimpleNamespace(version="unregistered", source="path", metrics={})
    evaluation, why = cache.get(unregistered)
    assert evaluation is None and "not a registered version" in (why or "") and "dealscore train" in (why or "")
    offline = SimpleNamespace(version="dealscore/3", source="local_copy", metrics={})
    evaluation, why = cache.get(offline)
    assert evaluation is None and "registry is unreachable" in (why or "")


def test_cache_says_when_the_run_cannot_be_read_and_remembers_it(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # a tracking server that is down
    cache = EvaluationCache()
    missing = SimpleNamespace(version="dealscore/3", source="registry", metrics={})
    evaluation, why = cache.get(missing)
    assert evaluation is None
    assert "could not be read from the MLflow registry" in (why or "") and "MLFLOW_TRACKING_URI" in (why or "")
    from dealscore import tracking

    def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("a failure is remembered for a few minutes, not retried on every view")

    monkeypatch.setattr(tracking, "version_info", boom)
    assert cache.get(missing) == (None, why)


def _report(verdicts: dict[str, str]) -> dict:
    from dealscore_service.ui.evaluation import HIGHER_IS_BETTER

    return {"win": {
        "model": {"roc_auc": 0.80, "log_loss": 0.45, "brier": 0.15, "ece": 0.03, "top_decile_lift": 2.0,
                  "family": "blend"},
        "baselines": {"logistic": {"roc_auc": 0.81, "log_loss": 0.44, "brier": 0.14, "ece": 0.02,
                                   "top_decile_lift": 2.1}},
        "comparison": {m: {"best_baseline": "logistic", "difference": -0.01, "interval": [-0.02, 0.005],
                           "verdict": verdicts.get(m, "tied")} for m in HIGHER_IS_BETTER},
    }}


def test_the_model_row_is_emphasised_only_when_it_beats_the_best_baseline():
    import pandas as pd

    from dealscore_service.ui.evaluation import evaluation_from_holdout

    holdout = pd.DataFrame({"won": [0.0, 1.0] * 20, "p_model": [0.2, 0.7] * 20, "p_logistic": [0.3, 0.6] * 20})
    losing = evaluation_from_holdout("m/1", holdout, _report({"log_loss": "worse"}))
    assert not losing.model_wins and losing.best["log_loss"] == "logistic" and losing.family == "blend"
    assert [c.metric for c in losing.comparison][:2] == ["roc_auc", "log_loss"]
    assert losing.comparison[1].reading().startswith("worse than logistic regression: -0.0100 (95% interval")
    assert not evaluation_from_holdout("m/1", holdout, _report({"log_loss": "tied"})).model_wins
    assert evaluation_from_holdout("m/1", holdout, _report({"log_loss": "better"})).model_wins
    assert not evaluation_from_holdout("m/1", holdout, _report({"log_loss": "better", "ece": "worse"})).model_wins


def test_probabilities_never_read_0_or_100_percent():
    from dealscore.wording import percent_text
    from dealscore_service.ui.format import pct

    assert [pct(v) for v in (0.003, 0.009, 0.01, 0.37, 0.991, 0.999)] == ["<1%", "<1%", "1%", "37%", ">99%", ">99%"]
    assert pct(0.0) == "0%" and pct(1.0) == "100%" and pct(None) == "—"  # exact shares read as themselves
    assert percent_text(0.0004, 1) == "<0.1%" and percent_text(0.5, 1) == "50.0%"


def test_a_well_calibrated_model_with_one_large_gap_is_not_told_to_read_70_as_70() -> None:
    """"read a score of 70% as about 70%. The largest gap is around 75%, where the model overstates (deals won
    62%)" said two opposite things about the same scores."""
    from dealscore_service.ui.evaluation import CalibrationBin, Evaluation

    bins = [CalibrationBin(0.1 * k + 0.05, 0.1 * k + 0.05, 1_000) for k in range(10)]
    bins[7] = CalibrationBin(0.75, 0.62, 200)
    reading = Evaluation("dealscore/6", None, 9_200, 0.4, bins, {}).calibration_reading()
    assert "70% as about 70%" not in reading and "most scores read as the probability they state" in reading
    assert reading.endswith("The largest gap is around 75%, where the model overstates (deals won 62%).")


def test_a_small_bins_perfect_record_is_not_named_a_gap() -> None:
    """Four wins of four at 88% (a 60% chance) were named: the error was read off the observed 100%, i.e. 0."""
    from dealscore_service.ui.evaluation import CalibrationBin, Evaluation

    bins = [CalibrationBin(0.1 * k + 0.05, 0.1 * k + 0.05, 1_000) for k in range(9)] + [CalibrationBin(0.88, 1.0, 4)]
    assert "largest gap" not in Evaluation("dealscore/7", None, 9_004, 0.4, bins, {}).calibration_reading()
