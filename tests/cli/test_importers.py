"""``dealscore import``: an --out path that would overwrite the export, or cannot be written, is refused cleanly."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.cli.conftest import Run, assert_clean_error
from tests.data.opportunity_export import opportunity_mapping

MAPPING = opportunity_mapping("accounts.csv", "deals.csv", name="tiny")
DEALS = ("Id,AccountId,OwnerId,CreatedDate,CloseDate,IsClosed,IsWon\n"
         "O1,A1,R1,2024-02-20,2024-04-03,true,true\nO2,A1,R1,2024-02-14,,false,false\n")


def export(tmp_path: Path, deals_file: str = "deals.csv") -> tuple[Path, Path]:
    """An export whose own files are named like the contract's tables (as HubSpot's and Maven's are)."""
    src = tmp_path / "export"
    (src / deals_file).parent.mkdir(parents=True, exist_ok=True)
    (src / "accounts.csv").write_text("Id,Industry\nA1,software\n")
    (src / deals_file).write_text(DEALS)
    mapping = tmp_path / "m.yaml"
    m = yaml.safe_load(yaml.safe_dump(MAPPING))
    m["tables"]["deals"]["file"] = deals_file
    mapping.write_text(yaml.safe_dump(m))
    return src, mapping


def test_out_equal_to_the_export_folder_is_refused_and_the_export_kept(run: Run, tmp_path: Path) -> None:
    src, mapping = export(tmp_path)
    code, _out, err = run("import", "csv", "--mapping", str(mapping), str(src), "--out", str(src))
    assert code == 2
    assert_clean_error(code, err, f"--out {src}", "is the export folder", "export-history")
    assert (src / "deals.csv").read_text() == DEALS
    assert sorted(p.name for p in src.iterdir()) == ["accounts.csv", "deals.csv"]


def test_out_holding_a_file_the_mapping_reads_is_refused(run: Run, tmp_path: Path) -> None:
    src, mapping = export(tmp_path, deals_file="crm/deals.csv")
    code, _out, err = run("import", "csv", "--mapping", str(mapping), str(src), "--out", str(src / "crm"))
    assert_clean_error(code, err, "holds crm/deals.csv, which the import reads")
    assert (src / "crm" / "deals.csv").read_text() == DEALS
    assert sorted(p.name for p in (src / "crm").iterdir()) == ["deals.csv"]


def test_unwritable_out_is_a_clean_error(run: Run, tmp_path: Path) -> None:
    src, mapping = export(tmp_path)
    (tmp_path / "a-file").write_text("x")
    out = tmp_path / "a-file" / "history"
    code, _out, err = run("import", "csv", "--mapping", str(mapping), str(src), "--out", str(out))
    assert code == 2
    assert_clean_error(code, err, "cannot write the history to", str(out))


def test_a_clash_half_way_leaves_no_partial_folder(run: Run, tmp_path: Path) -> None:
    src, mapping = export(tmp_path)
    out = tmp_path / "history"
    (out / "deals.csv").mkdir(parents=True)
    code, _out, err = run("import", "csv", "--mapping", str(mapping), str(src), "--out", str(out))
    assert_clean_error(code, err, "deals.csv exists and is not a file")
    assert [p.name for p in out.iterdir()] == ["deals.csv"]


def test_import_to_a_new_folder_still_works(run: Run, tmp_path: Path) -> None:
    src, mapping = export(tmp_path)
    out = tmp_path / "new" / "history"
    code, _out, err = run("import", "csv", "--mapping", str(mapping), str(src), "--out", str(out),
                          "--cut-at", "2024-05-01")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["accounts.csv", "activities.csv", "deals.csv", "history.yaml",
                                                     "stage_history.csv"]
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["history"]


def test_a_contract_error_names_the_export_file_and_line(run: Run, tmp_path: Path) -> None:
    """The rules run on the converted tables; the user is told the line of their own file, and nothing is written."""
    src, mapping = export(tmp_path)
    (src / "deals.csv").write_text(DEALS.replace("O2,A1,R1,2024-02-14", "O2,A1,R1,2024-06-14"))
    out = tmp_path / "history"
    code, _out, err = run("import", "csv", "--mapping", str(mapping), str(src), "--out", str(out),
                          "--cut-at", "2024-05-01")
    assert_clean_error(code, err, "table deals, column created_at", "after the data cut", "(ids: O2)",
                       "in the export: deals.csv line 3")
    assert not out.exists()
