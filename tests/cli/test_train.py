"""``dealscore train``: options and output paths refused before any training, never after it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from dealscore.data.history import write_history
from dealscore.training import run as training_run
from dealscore.training.split import RECENT_CLOSE_DAYS
from tests.cli.conftest import Run, assert_clean_error


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record calls to the trainer instead of training: a refused command must not reach it."""
    calls: list[Any] = []
    monkeypatch.setattr(training_run, "run_training", lambda *a, **k: calls.append((a, k)))
    return calls


def test_unwritable_report_json_is_refused_before_training(
    run: Run, tmp_path: Path, no_training: list[Any],
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    report = blocker / "sub" / "report.json"
    code, _out, err = run("train", str(tmp_path), "--report-json", str(report))
    assert code == 2
    assert_clean_error(code, err, "--report-json", str(report), "cannot write there")
    assert no_training == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_report_json_that_is_a_folder_is_refused(run: Run, tmp_path: Path, no_training: list[Any]) -> None:
    code, _out, err = run("train", str(tmp_path), "--report-json", str(tmp_path))
    assert_clean_error(code, err, "--report-json", "is a folder")
    assert no_training == []


def test_report_json_check_leaves_no_folder_behind_and_a_late_failure_is_clean(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The path is tried by a test write, cleaned up; a write failing after training is still one clean line."""
    report = tmp_path / "new" / "deeper" / "report.json"

    def fail(*_a: Any, **_k: Any) -> None:
        assert not (tmp_path / "new").exists()
        raise FileNotFoundError(2, "No such file or directory", str(report.parent))

    monkeypatch.setattr(training_run, "run_training", fail)
    code, _out, err = run("train", str(tmp_path), "--report-json", str(report))
    assert code == 2
    assert_clean_error(code, err, "--report-json", "trained and registered")


def test_max_deals_without_scheduler_is_refused(run: Run, tmp_path: Path, no_training: list[Any]) -> None:
    code, _out, err = run("train", str(tmp_path), "--max-deals", "100")
    assert code == 2
    assert_clean_error(code, err, "--max-deals needs --scheduler")
    assert no_training == []


def test_a_config_value_of_the_wrong_type_is_refused_before_training(
    run: Run, tmp_path: Path, no_training: list[Any],
) -> None:
    """``num_boost_round: many`` used to be a TypeError traceback from inside LightGBM; a bad gate tolerance
    one only after the whole run."""
    config = tmp_path / "c.json"
    config.write_text('{"win": {"num_boost_round": "many"}, "gate": {"log_loss_tolerance": "x"}}')
    code, _out, err = run("train", str(tmp_path), "--config", str(config))
    assert code == 2
    assert_clean_error(code, err, f"2 problems in training config {config}", 'config.win.num_boost_round: got "many"',
                       'config.gate.log_loss_tolerance: got "x"', "default.yaml")
    assert no_training == []


def test_a_history_without_recent_closes_trains_with_a_warning_in_the_output_and_the_report(
    run: Run, tmp_path: Path, small_sim: Any, fast_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No deal closed in the quarter before the cut: it used to train and promote without a word."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    history = small_sim.history
    cut = pd.Timestamp(history.deals["closed_at"].max()) + pd.Timedelta(days=RECENT_CLOSE_DAYS + 30)
    folder = write_history(history.replace(cut_at=cut), tmp_path / "history")
    config = tmp_path / "fast.yaml"
    config.write_text(yaml.safe_dump(fast_dict))
    code, out, err = run("train", str(folder), "--config", str(config), "--report-json", str(tmp_path / "r.json"))
    assert code == 0, err
    said = f"warning: no deal closed in the {RECENT_CLOSE_DAYS} days before the data cut {cut:%Y-%m-%d}"
    assert said in out
    warnings = json.loads((tmp_path / "r.json").read_text())["data"]["warnings"]
    assert len(warnings) == 1 and said.removeprefix("warning: ") in warnings[0]
