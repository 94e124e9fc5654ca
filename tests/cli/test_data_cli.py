"""``dealscore validate`` and ``dealscore import`` as a new user meets them: through the real entry point.

Most cases run ``dealscore.cli.main`` in-process (the same function the console
script calls, including its error handler); the last ones start the installed
``dealscore`` command as a real process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dealscore.taxonomy import default_taxonomy
from tests.cli.conftest import Run, assert_clean_error

MAVEN = Path(__file__).resolve().parents[3] / "shared" / "data" / "maven_crm"
SALESFORCE = Path(__file__).resolve().parents[1] / "fixtures" / "salesforce"
DEALSCORE = Path(sys.executable).with_name("dealscore")



def history_folder(folder: Path) -> Path:
    """A small valid history folder, as CSV files: D1 won, D2 lost, D3 open."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = {
        "accounts": "account_id,industry\nA1,software\nA2,retail\n",
        "deals": "deal_id,account_id,owner_id,created_at,amount,closed_at,outcome\n"
                 "D1,A1,o1,2024-01-01,1000,2024-03-01,won\n"
                 "D2,A2,o2,2024-01-05,2000,2024-02-20,lost\n"
                 "D3,A1,o1,2024-02-01,,,\n",
        "stage_history": "deal_id,stage,changed_at\nD1,prospecting,2024-01-01\nD1,Proposal,2024-02-01\n"
                         "D2,prospecting,2024-01-05\nD3,qualification,2024-02-01\n",
        "activities": "activity_id,deal_id,occurred_at,type,direction\nX1,D1,2024-01-02,email,outbound\n"
                      "X2,D1,2024-02-15,meeting,inbound\nX3,D3,2024-02-03,call,\n",
    }
    for name, text in tables.items():
        (folder / f"{name}.csv").write_text(text)
    return folder


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_validate_prints_the_load_report(run: Run, tmp_path: Path) -> None:
    code, out, err = run("validate", str(history_folder(tmp_path / "h")))
    assert code == 0, err
    assert "rows: activities" in out and "1 open · 1 won · 1 lost" in out
    assert "proposal (1)" in out and "valid" in out


def test_validate_json(run: Run, tmp_path: Path) -> None:
    code, out, _ = run("validate", str(history_folder(tmp_path / "h")), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["rows"]["deals"] == 3 and report["dropped"] == {}


def test_missing_folder(run: Run, tmp_path: Path) -> None:
    code, _, err = run("validate", str(tmp_path / "nowhere"))
    assert_clean_error(code, err, "does not exist", "deals.csv")


def test_missing_file(run: Run, tmp_path: Path) -> None:
    folder = history_folder(tmp_path / "h")
    (folder / "deals.csv").unlink()
    code, _, err = run("validate", str(folder))
    assert_clean_error(code, err, "table deals", "deals.csv")


def test_missing_column(run: Run, tmp_path: Path) -> None:
    folder = history_folder(tmp_path / "h")
    edit(folder / "deals.csv", "owner_id", "rep")
    code, _, err = run("validate", str(folder))
    assert_clean_error(code, err, "table deals", "owner_id")


def test_duplicate_ids(run: Run, tmp_path: Path) -> None:
    folder = history_folder(tmp_path / "h")
    edit(folder / "activities.csv", "X3,", "X1,")
    code, _, err = run("validate", str(folder))
    assert_clean_error(code, err, "table activities", "column activity_id", "X1")


def test_activity_after_close_is_dropped_with_a_count_by_default(run: Run, tmp_path: Path) -> None:
    folder = history_folder(tmp_path / "h")
    edit(folder / "activities.csv", "X2,D1,2024-02-15", "X2,D1,2024-03-09")
    code, out, err = run("validate", str(folder), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["dropped"] == {"activities: occurred_at after the deal closed": 1}
    assert any("X2" in w for w in report["warnings"])
    code, out, _ = run("validate", str(folder))
    assert code == 0 and "dropped" in out and "after the deal closed" in out


def test_activity_after_close_fails_with_the_flag(run: Run, tmp_path: Path) -> None:
    folder = history_folder(tmp_path / "h")
    edit(folder / "activities.csv", "X2,D1,2024-02-15", "X2,D1,2024-03-09")
    code, _, err = run("validate", str(folder), "--fail-out-of-life")
    assert_clean_error(code, err, "table activities", "column occurred_at", "X2", "after the deal closed")


def test_unknown_stage_name(run: Run, tmp_path: Path) -> None:
    folder = history_folder(tmp_path / "h")
    edit(folder / "stage_history.csv", "D1,Proposal", "D1,Verbal Commit")
    code, _, err = run("validate", str(folder))
    assert_clean_error(code, err, "table stage_history", "column stage", "Verbal Commit", "deal D1")


def test_unknown_stage_name_accepted_with_a_users_taxonomy(run: Run, tmp_path: Path) -> None:
    folder = history_folder(tmp_path / "h")
    edit(folder / "stage_history.csv", "D1,Proposal", "D1,Verbal Commit")
    raw = default_taxonomy().to_dict()
    raw["stages"][4]["aliases"].append("Verbal Commit")
    (tmp_path / "tax.yaml").write_text(yaml.safe_dump(raw))
    code, out, err = run("validate", str(folder), "--taxonomy", str(tmp_path / "tax.yaml"))
    assert code == 0, err
    assert "proposal (1)" in out


def test_unparseable_date(run: Run, tmp_path: Path) -> None:
    folder = history_folder(tmp_path / "h")
    edit(folder / "deals.csv", "D2,A2,o2,2024-01-05", "D2,A2,o2,05/01/24 (approx)")
    code, _, err = run("validate", str(folder))
    assert_clean_error(code, err, "table deals", "column created_at", "D2", "05/01/24 (approx)")


def test_empty_file(run: Run, tmp_path: Path) -> None:
    folder = history_folder(tmp_path / "h")
    (folder / "stage_history.csv").write_text("")
    code, _, err = run("validate", str(folder))
    assert_clean_error(code, err, "table stage_history", "empty")


def test_header_only_deals(run: Run, tmp_path: Path) -> None:
    folder = history_folder(tmp_path / "h")
    (folder / "deals.csv").write_text("deal_id,account_id,owner_id,created_at\n")
    (folder / "stage_history.csv").write_text("deal_id,stage,changed_at\n")
    (folder / "activities.csv").write_text("deal_id,occurred_at,type\n")
    code, _, err = run("validate", str(folder))
    assert_clean_error(code, err, "table deals", "no rows")


def test_bad_taxonomy_path(run: Run, tmp_path: Path) -> None:
    code, _, err = run("validate", str(history_folder(tmp_path / "h")), "--taxonomy", str(tmp_path / "none.yaml"))
    assert code != 0 and "Traceback" not in err and "none.yaml" in err


# ---------------------------------------------------------------- import


def test_import_csv_salesforce_then_validate(run: Run, tmp_path: Path) -> None:
    out_dir = tmp_path / "sf"
    code, out, err = run("import", "csv", "--mapping", "salesforce", str(SALESFORCE), "--out", str(out_dir),
                         "--cut-at", "2024-05-01T00:00:00")
    assert code == 0, err
    assert "Import report" in out and "read Opportunity.csv" in out and "Load report" in out
    assert (out_dir / "deals.csv").is_file() and (out_dir / "history.yaml").is_file()
    code, out, err = run("validate", str(out_dir))
    assert code == 0, err
    assert "6 " in out and "3 open · 2 won · 1 lost" in out


def test_import_csv_parquet(run: Run, tmp_path: Path) -> None:
    out_dir = tmp_path / "sf"
    code, _, err = run("import", "csv", "--mapping", "salesforce", str(SALESFORCE), "--out", str(out_dir),
                       "--format", "parquet")
    assert code == 0, err
    assert (out_dir / "deals.parquet").is_file() and not (out_dir / "deals.csv").exists()
    assert len(pd.read_parquet(out_dir / "deals.parquet")) == 6


def test_import_csv_mapping_errors(run: Run, tmp_path: Path) -> None:
    code, _, err = run("import", "csv", "--mapping", str(tmp_path / "mine.yaml"), str(SALESFORCE),
                       "--out", str(tmp_path / "o"))
    assert_clean_error(code, err, "mine.yaml", "does not exist", "salesforce")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tables:\n  deals:\n    file: Opportunity.csv\n    columns: {deal_id: Id}\n  accounts:\n"
                   "    file: Account.csv\n    columns: {account_id: Id, industry: Industry}\n")
    code, _, err = run("import", "csv", "--mapping", str(bad), str(SALESFORCE), "--out", str(tmp_path / "o"))
    assert_clean_error(code, err, "tables.deals.columns", "not mapped")
    assert not (tmp_path / "o").exists()  # nothing written for a failed import


@pytest.mark.skipif(not MAVEN.is_dir(), reason=f"Maven CRM export not found at {MAVEN}")
def test_import_maven_then_validate(run: Run, tmp_path: Path) -> None:
    code, out, err = run("import", "maven", str(MAVEN), "--out", str(tmp_path / "m"))
    assert code == 0, err
    assert "1,425" in out  # deals without an account, counted
    code, out, err = run("validate", str(tmp_path / "m"))
    assert code == 0, err


def test_import_maven_missing_folder(run: Run, tmp_path: Path) -> None:
    code, _, err = run("import", "maven", str(tmp_path / "nope"), "--out", str(tmp_path / "m"))
    assert_clean_error(code, err, "does not exist", "sales_pipeline.csv")


def test_import_without_subcommand_shows_help(run: Run) -> None:
    _, out, err = run("import")
    assert "maven" in out + err and "csv" in out + err and "Traceback" not in err


# ---------------------------------------------------------------- the installed command, as a real process


needs_script = pytest.mark.skipif(not DEALSCORE.is_file(), reason=f"{DEALSCORE} is not installed")


@needs_script
def test_real_process_duplicate_ids_exit_nonzero_without_traceback(tmp_path: Path) -> None:
    folder = history_folder(tmp_path / "h")
    edit(folder / "deals.csv", "D3,A1", "D1,A1")
    proc = subprocess.run([str(DEALSCORE), "validate", str(folder)], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "table deals, column deal_id" in proc.stderr and "D1" in proc.stderr and "Fix:" in proc.stderr


@needs_script
@pytest.mark.skipif(not MAVEN.is_dir(), reason=f"Maven CRM export not found at {MAVEN}")
def test_real_process_import_maven_and_validate(tmp_path: Path) -> None:
    out_dir = tmp_path / "m"
    imp = subprocess.run([str(DEALSCORE), "import", "maven", str(MAVEN), "--out", str(out_dir)],
                         capture_output=True, text=True, timeout=300)
    assert imp.returncode == 0, imp.stderr
    val = subprocess.run([str(DEALSCORE), "validate", str(out_dir)], capture_output=True, text=True, timeout=300)
    assert val.returncode == 0, val.stderr
    assert "4,238 won" in val.stdout


@pytest.mark.parametrize("amount", ["inf", "Infinity", "1e309"])
def test_infinite_amount_exits_2_naming_table_column_rows_and_fix(run: Run, tmp_path: Path, amount: str) -> None:
    folder = history_folder(tmp_path / "h")
    edit(folder / "deals.csv", "D3,A1,o1,2024-02-01,,", f"D3,A1,o1,2024-02-01,{amount},")
    code, out, err = run("validate", str(folder), "--json")
    assert code == 2 and out == ""
    assert_clean_error(code, err, "table deals", "column amount", "D3", "not finite")


def test_amount_beyond_the_apis_largest_exits_2_naming_table_column_rows_and_fix(run: Run, tmp_path: Path) -> None:
    folder = history_folder(tmp_path / "h")
    edit(folder / "deals.csv", "D3,A1,o1,2024-02-01,,", "D3,A1,o1,2024-02-01,1e308,")
    code, _out, err = run("validate", str(folder))
    assert code == 2
    assert_clean_error(code, err, "table deals", "column amount", "D3", "above 1,000,000,000,000,000")


def test_json_output_never_holds_nan_or_infinity() -> None:
    from dealscore.cli import json_text

    text = json_text({"value_at_risk": float("inf"), "p": [float("nan"), -float("inf"), 0.5], "n": 1})
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text) == {"value_at_risk": None, "p": [None, None, 0.5], "n": 1}
