"""``dealscore score`` and ``dealscore at-risk``: bad outputs, inputs and filters refused cleanly, empty lists
explained (never a false "all healthy")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from dealscore.cli import score as score_cli
from dealscore.data.history import DealHistory, write_history
from dealscore.data.simulate import simulate
from dealscore.training.pipeline import TrainingResult
from tests.cli.conftest import Run, assert_clean_error


@pytest.fixture(scope="module")
def bundle_dir(trained: TrainingResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained.bundle.save(tmp_path_factory.mktemp("bundle") / "model")


@pytest.fixture(scope="module")
def history_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small simulated history, plus one owner whose only deal is closed."""
    h: DealHistory = simulate(300, seed=12).history
    deals = h.deals.copy()
    closed = deals.index[deals["outcome"].notna()][0]
    deals.loc[closed, "owner_id"] = "ONLY-CLOSED"
    return write_history(h.replace(deals=deals), tmp_path_factory.mktemp("h") / "sim")


@pytest.fixture
def no_scoring(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record calls to the model/history loading: a refused output must be found before it."""
    calls: list[Any] = []
    monkeypatch.setattr(score_cli, "_load", lambda *a: calls.append(a))
    return calls


# --- score --out (item: checked before scoring, written whole) ---------------------------------------------

def test_score_out_that_is_a_folder_is_refused_before_scoring(
    run: Run, tmp_path: Path, no_scoring: list[Any],
) -> None:
    (tmp_path / "dir.csv").mkdir()
    code, _out, err = run("score", str(tmp_path), "--out", str(tmp_path / "dir.csv"))
    assert code == 2
    assert_clean_error(code, err, "--out", "is a folder")
    assert no_scoring == []


def test_score_out_in_an_unwritable_place_is_refused_before_scoring(
    run: Run, tmp_path: Path, no_scoring: list[Any],
) -> None:
    (tmp_path / "a-file").write_text("x")
    target = tmp_path / "a-file" / "scores.csv"
    code, _out, err = run("score", str(tmp_path), "--out", str(target))
    assert code == 2
    assert_clean_error(code, err, f"--out {target}", "cannot write there")
    assert no_scoring == []
    assert [p.name for p in tmp_path.iterdir()] == ["a-file"]


def test_score_writes_the_file_whole_and_no_temporary_file(
    run: Run, tmp_path: Path, bundle_dir: Path, history_dir: Path,
) -> None:
    target = tmp_path / "out" / "scores.csv"
    code, _out, err = run("score", str(history_dir), "--model", str(bundle_dir), "--out", str(target))
    assert code == 0, err
    assert len(pd.read_csv(target)) > 0
    assert [p.name for p in target.parent.iterdir()] == ["scores.csv"]


# --- --as-of after the data cut -----------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["score", "at-risk"])
def test_as_of_after_the_data_cut_is_refused(
    run: Run, tmp_path: Path, bundle_dir: Path, history_dir: Path, command: str,
) -> None:
    args = ["--out", str(tmp_path / "s.csv")] if command == "score" else []
    code, _out, err = run(command, str(history_dir), "--model", str(bundle_dir), "--as-of", "2099-01-01", *args)
    assert code == 2
    assert_clean_error(code, err, "cannot score as of 2099-01-01 00:00", "data cut is")
    assert not (tmp_path / "s.csv").exists()


# --- at-risk --previous -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "content", "needles"), [
    ("bad.csv", "deal_id,p_win\nD1,high\nD2,0.4\n", ["column p_win", "line 2 (deal D1)", "between 0 and 1"]),
    ("range.csv", "deal_id,p_win\nD1,0.2\nD2,1.7\n", ["column p_win", "line 3 (deal D2)"]),
    ("notes.csv", 'deal_id,p_win,note\nD1,0.2,"called\ntwice"\nD2,1.7,\n',  # a cell holding a line break
     ["column p_win", "line 4 (deal D2)"]),
    ("dup.csv", "deal_id,p_win\nD1,0.2\nD1,0.3\n", ["column deal_id", "repeat a deal", "line 2 (deal D1)",
                                                    "line 3 (deal D1)"]),
    ("empty.csv", "", ["is empty"]),
    ("utf16.csv", "deal_id,p_win\nD1,0.2\n".encode("utf-16"), ["not a readable UTF-8 CSV file"]),
    ("garbage.parquet", b"PAR1 not really", ["not a readable Parquet file"]),
    ("cols.csv", "id,score\nD1,0.2\n", ["missing column(s) ['deal_id', 'p_win']"]),
])
def test_malformed_previous_file_is_refused_naming_file_column_and_rows(
    run: Run, tmp_path: Path, no_scoring: list[Any], name: str, content: str | bytes, needles: list[str],
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    code, _out, err = run("at-risk", str(tmp_path), "--previous", str(path))
    assert code == 2
    assert_clean_error(code, err, f"--previous {path}", *needles)
    assert no_scoring == []


# --- at-risk with nothing to list ---------------------------------------------------------------------------

@pytest.mark.parametrize(("option", "value", "column"), [("--owner", "NOBODY", "owner"), ("--team", "nope", "team")])
def test_unknown_owner_or_team_is_an_error_listing_the_known_ones(
    run: Run, bundle_dir: Path, history_dir: Path, option: str, value: str, column: str,
) -> None:
    code, out, err = run("at-risk", str(history_dir), "--model", str(bundle_dir), option, value)
    assert code == 2
    assert_clean_error(code, err, f"unknown {column} {value!r} (known: ")
    assert "usual win rate" not in out + err


@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_owner_without_open_deals_says_no_deals_match(
    run: Run, bundle_dir: Path, history_dir: Path, fmt: str,
) -> None:
    code, out, err = run("at-risk", str(history_dir), "--model", str(bundle_dir), "--owner", "ONLY-CLOSED",
                         "--format", fmt)
    assert code == 0, err
    assert "no open deals match owner 'ONLY-CLOSED'" in err
    assert "usual win rate" not in out + err
    if fmt == "csv":
        assert out.splitlines() == [",".join(score_cli.AT_RISK_COLUMNS)]


def test_no_open_deals_at_all_is_said_so(run: Run, bundle_dir: Path, history_dir: Path) -> None:
    code, out, err = run("at-risk", str(history_dir), "--model", str(bundle_dir), "--as-of", "1990-01-01",
                         "--format", "csv")
    assert code == 0, err
    assert "no open deals at 1990-01-01 00:00" in err
    assert out.startswith("rank,deal_id,")


# --- score with nothing open --------------------------------------------------------------------------------

def _first_created(history_dir: Path) -> pd.Timestamp:
    return pd.to_datetime(pd.read_csv(history_dir / "deals.csv")["created_at"]).min()


def test_score_before_the_history_starts_says_when_it_starts(
    run: Run, tmp_path: Path, bundle_dir: Path, history_dir: Path,
) -> None:
    """``--as-of`` before the first deal printed "scored 0 open deals" and wrote an empty file, with no word why."""
    target = tmp_path / "s.parquet"
    code, out, err = run("score", str(history_dir), "--model", str(bundle_dir), "--out", str(target),
                         "--as-of", "1990-01-01")
    assert code == 0, err
    assert "scored 0 open deals" in out and len(pd.read_parquet(target)) == 0
    assert (f"note: no open deals at 1990-01-01 00:00: the history starts on {_first_created(history_dir):%Y-%m-%d}"
            in err)


def test_score_on_a_scheduler_says_the_same(
    run: Run, tmp_path: Path, bundle_dir: Path, history_dir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cluster path prints the one-machine sentence, from its first pass's load report."""
    from dealscore import scale
    from dealscore.data.validate import LoadReport

    starts = _first_created(history_dir)
    monkeypatch.setattr(scale, "score_on_cluster", lambda *a, **k: {
        "rows": 0, "partitions": 2, "report": LoadReport(first_event=starts), "cut_at": starts})
    code, out, err = run("score", str(history_dir), "--model", str(bundle_dir), "--out", str(tmp_path / "s"),
                         "--as-of", "1990-01-01", "--scheduler", "local:1")
    assert code == 0, err
    assert "scored 0 open deals of 2 partitions" in out
    assert f"note: no open deals at 1990-01-01 00:00: the history starts on {starts:%Y-%m-%d}" in err
