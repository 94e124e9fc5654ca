"""`dealscore score` and `dealscore at-risk` on a simulator's output folder, with a saved bundle."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from dealscore.cli import app
from dealscore.data.simulate import write_simulation
from dealscore.features import scoring_snapshots

runner = CliRunner()


@pytest.fixture(scope="module")
def folders(trained: Any, small_sim: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli_score")
    history = write_simulation(small_sim, root / "history")
    bundle = trained.bundle.save(root / "bundle")
    return {"history": history, "bundle": bundle, "root": root}


def _run(*args: str) -> Any:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_score_writes_parquet_and_csv(folders: dict[str, Path], small_history: Any) -> None:
    out = folders["root"] / "scores.parquet"
    res = _run("score", folders["history"], "--out", out, "--model", folders["bundle"])
    assert "open deals" in res.output
    frame = pd.read_parquet(out)
    n_open = len(scoring_snapshots(small_history))
    assert len(frame) == n_open and frame["deal_id"].is_unique
    assert frame["p_win"].between(0, 1).all() and set(frame["grade"]) <= {"A", "B", "C", "D"}
    csv = folders["root"] / "scores.csv"
    _run("score", folders["history"], "--out", csv, "--model", folders["bundle"], "--explain",
         "--as-of", str(small_history.data_cut - pd.Timedelta(days=30)))
    again = pd.read_csv(csv)
    assert {"reasons_down", "top_action", "top_action_change"} <= set(again.columns)
    assert again["as_of"].nunique() == 1


def test_at_risk_table_json_and_csv(folders: dict[str, Path]) -> None:
    res = _run("at-risk", folders["history"], "--model", folders["bundle"], "--top", "5")
    assert "deals at risk" in res.output
    js = json.loads(_run("at-risk", folders["history"], "--model", folders["bundle"], "--top", "5",
                         "--format", "json").output)
    assert 1 <= len(js) <= 5
    prio = [r["priority"] for r in js]
    assert prio == sorted(prio, reverse=True) and js[0]["value_at_risk"] > 0
    assert all(0 <= r["value_at_risk"] <= r["amount"] for r in js) and js[0]["risk_level"] == "high"
    assert all(r["p_win"] < r["stage_typical_p_win"] for r in js)
    assert any(r["reasons_down"] for r in js) and any(r["actions"] for r in js)
    owner = js[0]["owner_id"]
    out = _run("at-risk", folders["history"], "--model", folders["bundle"], "--owner", owner, "--format", "csv")
    rows = pd.read_csv(pd.io.common.StringIO(out.output))
    assert len(rows) >= 1 and set(rows["owner_id"]) == {owner}


def test_at_risk_uses_previous_scores(folders: dict[str, Path], trained: Any) -> None:
    prev = folders["root"] / "prev.csv"
    _run("score", folders["history"], "--out", prev, "--model", folders["bundle"])
    frame = pd.read_csv(prev)
    frame["p_win"] = 0.99  # last week every deal looked great: every drop is large
    frame.to_csv(prev, index=False)
    js = json.loads(_run("at-risk", folders["history"], "--model", folders["bundle"], "--previous", prev,
                         "--format", "json", "--top", "3").output)
    assert all(r["previous_p_win"] == 0.99 for r in js)


def test_bad_output_name_is_a_clean_error(folders: dict[str, Path]) -> None:
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dealscore"), "score", str(folders["history"]), "--out",
         str(folders["root"] / "scores.xlsx"), "--model", str(folders["bundle"])],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 2
    assert "*.parquet or *.csv" in proc.stderr and "Traceback" not in proc.stderr


MAVEN = Path(__file__).resolve().parents[3] / "shared" / "data" / "maven_crm"


@pytest.mark.slow
@pytest.mark.skipif(not MAVEN.is_dir(), reason=f"Maven CRM export not found at {MAVEN}")
def test_score_and_at_risk_on_the_imported_maven_export(fast_config: Any, tmp_path: Path) -> None:
    """A real export without touchpoints: scores, stage and close-date warnings only, no invented silence."""
    from dealscore.data.validate import load_and_validate
    from dealscore.training.pipeline import train_models

    history_dir = tmp_path / "maven"
    _run("import", "maven", MAVEN, "--out", history_dir)
    history, _ = load_and_validate(history_dir)
    bundle = train_models(history, fast_config).bundle.save(tmp_path / "bundle")
    out = tmp_path / "scores.csv"
    _run("score", history_dir, "--out", out, "--model", bundle)
    scores = pd.read_csv(out)
    assert len(scores) == int(history.deals["closed_at"].isna().sum())
    codes = {c for w in scores["warnings"].dropna() for c in w.split("; ")}
    assert not codes & {"gone_quiet", "ghosting", "single_threaded", "no_decision_maker"}
    js = json.loads(_run("at-risk", history_dir, "--model", bundle, "--top", "3", "--format", "json").output)
    assert len(js) <= 3 and all(r["value_at_risk"] >= 0 for r in js)
