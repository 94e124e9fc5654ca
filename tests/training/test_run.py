"""Full runs against a real MLflow SQLite store: logging, registry, gate, promotion, champion loading."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dealscore import tracking
from dealscore.cli import app
from dealscore.errors import BundleFormatError, ModelNotReadyError, NotFoundError
from dealscore.training.run import RunSummary, run_training, track_training
from tests.registry_down import registry_down

pytestmark = pytest.mark.slow
runner = CliRunner()
PLOTS = {"calibration.png", "roc.png", "lift.png", "feature_importance.png", "stage_confusion.png"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    """A fresh MLflow SQLite store, and a working directory for local caches."""
    root = tmp_path_factory.mktemp("mlflow")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.chdir(root)
        yield root


@pytest.fixture(scope="module")
def first(store: Path, small_history_dir: Path, fast_dict: dict) -> dict:
    """The first run, through the CLI exactly as a user starts it."""
    cfg = store / "fast.yaml"
    cfg.write_text(yaml.safe_dump(fast_dict))
    report = store / "out" / "report.json"
    result = runner.invoke(app, ["train", str(small_history_dir), "--config", str(cfg), "--report-json", str(report)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return {"output": result.output, "report": json.loads(report.read_text()), "version": "1"}


@pytest.fixture(scope="module")
def second(first: dict, small_history_dir: Path, fast_config) -> RunSummary:
    """A deliberately worse run: the same holdout, but trained on only the 60 latest training deals.

    Enough won deals for the time-to-close model to train, too few for a good win model.
    """
    cfg = dataclasses.replace(fast_config, split=dataclasses.replace(fast_config.split, max_train_deals=60))
    return run_training(small_history_dir, cfg)


def test_cli_run_reports_registers_and_crowns_the_first_version(first):
    out, report = first["output"], first["report"]
    assert set(report) == {"win", "stage", "data", "time_to_close", "episodes"}
    assert set(report["win"]) == {"model", "baselines", "oracle", "comparison", "learning_curve"}
    assert set(report["win"]["baselines"]) == {"stage_table", "naive_bayes", "logistic"}
    assert {"model", "declared", "label_free", "labels", "recording_habits"} == set(report["stage"])
    assert "stage table" in out and "naive bayes" in out and "registered dealscore v1 as champion" in out
    assert "MLflow run:" in out
    assert tracking.get_champion_version() == "1"


def test_run_logs_params_metrics_plots_report_and_one_model(first):
    client = mlflow.MlflowClient()
    run_id = first["report"]["data"]["mlflow"]["run_id"]
    run = client.get_run(run_id)
    assert run.data.params["split.fractions"] == "[0.6, 0.1, 0.1, 0.2]"
    assert "data.horizon_days" in run.data.params and "data.deals.test" in run.data.params
    assert abs(run.data.metrics["win.model.roc_auc"] - first["report"]["win"]["model"]["roc_auc"]) < 1e-9
    assert "win.baselines.naive_bayes.log_loss" in run.data.metrics
    assert "win.comparison.log_loss.difference" in run.data.metrics
    curve = client.get_metric_history(run_id, "win.learning_curve.roc_auc")
    points = first["report"]["win"]["learning_curve"]["points"]
    assert [m.step for m in curve] == [p["train_deals"] for p in points]
    plots = {Path(a.path).name for a in client.list_artifacts(run_id, "plots")}
    assert plots >= PLOTS
    assert tracking.read_run_report(run_id)["win"]["model"]["n"] == first["report"]["win"]["model"]["n"]
    assert tracking.run_version(run_id) == "1"
    versions = client.search_model_versions("name='dealscore'")
    assert {v.run_id for v in versions} >= {run_id}


def test_pyfunc_serves_feature_rows_with_a_signature(first, second):
    model = mlflow.pyfunc.load_model("models:/dealscore@champion")
    assert model.metadata.signature is not None
    bundle = tracking.load_bundle("1")
    rows = tracking.example_rows(bundle, second.result.test_features, n=20)
    out = model.predict(rows)
    assert {"p_win", "inferred_stage", "inferred_stage_probability", "p_stage_proposal"} <= set(out.columns)
    expected = bundle.win_model.predict_proba(second.result.test_features.head(20))
    np.testing.assert_allclose(out["p_win"].to_numpy(), expected, rtol=1e-9)


def test_worse_run_does_not_take_the_champion_alias(first, second):
    assert second.version == "2"
    assert not second.decision.promote and second.decision.alias == "challenger"
    assert tracking.get_champion_version() == "1"
    assert tracking.get_alias_version("challenger") == "2"
    assert any("worse than champion" in r or "below champion" in r for r in second.decision.reasons)
    # same holdout: the gate compared both models on the rows the second run held out
    assert second.decision.champion["roc_auc"] > second.decision.new["roc_auc"]


def test_models_lists_versions_and_aliases(second):
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0
    assert "champion" in result.output and "challenger" in result.output


def test_load_champion_keeps_a_copy_and_falls_back_to_it(first, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    bundle = tracking.load_champion(local_cache_dir=cache)
    assert bundle.version == "dealscore/1"
    assert (tracking.local_copy_dir(local_cache_dir=cache) / "bundle" / "bundle.json").is_file()
    with registry_down(tracking.tracking_uri()):
        with pytest.warns(UserWarning, match="local copy of dealscore/1"):
            cached = tracking.load_champion(local_cache_dir=cache)
        assert cached.version == "dealscore/1"
        with pytest.raises(ModelNotReadyError, match="no local copy"):
            tracking.load_champion(local_cache_dir=tmp_path / "empty")


def test_promote_forces_and_says_what_it_overrides(second):
    result = runner.invoke(app, ["promote", second.version])
    assert result.exit_code == 0, result.output
    assert "v2 is now champion" in result.output and "overrides champion v1" in result.output
    assert "overriding the gate" in result.output
    assert tracking.get_champion_version() == "2" and tracking.get_alias_version("challenger") is None
    again = runner.invoke(app, ["promote", f" 0{second.version}"])  # the same version, spelled loosely
    assert again.exit_code == 0 and "v2 already is the champion; nothing changed" in again.output, again.output
    with pytest.raises(NotFoundError, match="no version 99"):
        tracking.promote("99")
    tracking.promote("1")


def _champion_fails(monkeypatch: pytest.MonkeyPatch, exc: Exception) -> None:
    """The champion's bundle fails to load as ``exc`` (a corrupt artifact, another bundle format)."""
    def fail(version: str, name: str = tracking.DEFAULT_NAME) -> None:
        raise exc
    monkeypatch.setattr(tracking, "load_bundle", fail)


def test_a_champion_that_cannot_be_read_is_not_replaced_uncompared(second, small_history, fast_config,
                                                                   monkeypatch):
    """A corrupt or unreachable champion artifact says nothing about which model is better."""
    assert tracking.get_champion_version() == "1"
    _champion_fails(monkeypatch, json.JSONDecodeError("Expecting property name", "{ corrupted", 2))
    summary = track_training(second.result, small_history, fast_config)
    assert not summary.decision.promote and summary.decision.alias == "challenger"
    assert tracking.get_champion_version() == "1" and tracking.get_alias_version("challenger") == summary.version
    (reason,) = summary.decision.reasons
    assert "could not be loaded or scored" in reason and "not compared" in reason and "dealscore promote" in reason


def test_a_champion_in_another_bundle_format_is_replaced(second, small_history, fast_config, monkeypatch):
    """This installation could not serve it either: the new version takes over, and says why."""
    _champion_fails(monkeypatch, BundleFormatError("bundle at x has format 1, this dealscore reads 2"))
    summary = track_training(second.result, small_history, fast_config)
    assert summary.decision.promote and tracking.get_champion_version() == summary.version
    assert "another bundle format" in summary.decision.reasons[0]
    tracking.promote("1")
