"""A contract error found after an import's conversion names the export file and line of each row it is about.

The contract's rules run on the converted tables, whose row numbers are nothing a user
can find in their export: rows dropped by a filter, files concatenated, wide columns
unpivoted and rows the import adds all shift them. Lines count as every message about an
export counts them: the header is line 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dealscore.data.importers import import_csv, import_maven
from dealscore.data.importers.common import ORIGIN_COLUMNS
from dealscore.errors import DataValidationError
from tests.data.test_importers import small_maven

ACCOUNTS = "id,ind\nA1,x\n"
#: line 2 is filtered out by the mapping's ``where``, so converted row 0 is line 3
DEALS = ("id,acc,own,at,amt,status\n"
         "D0,A1,o,2024-01-01,5,deleted\n"
         "D1,A1,o,2024-01-01,10,active\n"
         "D2,A1,o,2024-01-02,20,active\n")


def mapping(**deals: Any) -> dict[str, Any]:
    """Accounts and active deals of a home-made CRM; ``deals`` adds keys to the deals source."""
    return {"tables": {
        "accounts": {"file": "a.csv", "create_missing": True, "columns": {"account_id": "id", "industry": "ind"}},
        "deals": {"file": "d.csv", "where": {"status": ["active"]}, **deals, "columns": {
            "deal_id": "id", "account_id": "acc", "owner_id": "own", "created_at": "at", "amount": "amt"}},
    }}


def export(tmp_path: Path, deals: str = DEALS, **files: str) -> Path:
    src = tmp_path / "crm"
    src.mkdir(parents=True)
    for name, text in {"a.csv": ACCOUNTS, "d.csv": deals, **files}.items():
        (src / name).write_text(text)
    return src


def fails(src: Path, m: dict[str, Any], cut_at: str | None = "2024-06-01") -> DataValidationError:
    with pytest.raises(DataValidationError) as e:
        import_csv(src, m, cut_at=cut_at)
    return e.value


def test_a_contract_rule_names_the_export_line_and_keeps_its_fields(tmp_path: Path) -> None:
    src = export(tmp_path, DEALS.replace("D2,A1,o,2024-01-02,20", "D2,A1,o,2024-01-02,-20"))
    err = fails(src, mapping())
    assert "; in the export: d.csv line 4. Fix: amounts must be zero or more" in str(err)
    # the fields are the validator's: rows still count converted rows (D2 is the second), ids as shown
    assert (err.table, err.column, err.rows, err.ids) == ("deals", "amount", [1], ["D2"])
    assert err.fix == "amounts must be zero or more"


def test_a_value_that_cannot_be_typed_names_the_export_line(tmp_path: Path) -> None:
    err = fails(export(tmp_path, DEALS.replace(",10,active", ",10 EUR,active")), mapping())
    assert (err.table, err.column, err.rows) == ("deals", "amount", [0])
    assert "'10 EUR'" in str(err) and "in the export: d.csv line 3. Fix:" in str(err)


def test_several_problems_each_name_their_own_lines(tmp_path: Path) -> None:
    deals = DEALS.replace(",10,active", ",-10,active").replace("2024-01-02", "2024-07-01") + \
        "D3,A1,o,2024-07-02,-1,active\n"
    err = fails(export(tmp_path, deals), mapping())
    assert str(err).startswith("2 problems in the export:")
    by_column = {p.column: p for p in err.problems}
    assert "in the export: d.csv lines 3, 5. Fix:" in str(by_column["amount"])
    assert "in the export: d.csv lines 4, 5. Fix:" in str(by_column["created_at"])
    assert (err.table, err.column, err.rows) == ("deals", "amount", [0, 2])


@pytest.mark.parametrize(("wide", "said"), [
    ("deal,Entered Lead,Entered Qualified\nD1,2024-01-01,2024-02-01\nD2,2024-01-02,2024-08-01\n",
     "(ids: row 5 (deal D2)); in the export: wide.csv line 3. Fix:"),
    ('deal,notes,Entered Lead,Entered Qualified\nD1,"first call\nsecond call",2024-01-01,2024-02-01\n'
     "D2,,2024-01-02,2024-08-01\n", "in the export: wide.csv line 4. Fix:"),  # after a cell holding a line break
])
def test_stage_history_rows_unpivoted_from_a_wide_file_name_its_line(tmp_path: Path, wide: str, said: str) -> None:
    """Stage history has no id: its rows were named by converted row only ("row 4 (deal D2)")."""
    m = mapping()
    m["tables"]["stage_history"] = {
        "file": "wide.csv", "unpivot": {"columns": "Entered (.*)", "name": "stage_name", "value": "entered"},
        "columns": {"deal_id": "deal", "stage": "stage_name", "changed_at": "entered"}}
    err = fails(export(tmp_path, **{"wide.csv": wide}), m)
    assert (err.table, err.column, err.rows) == ("stage_history", "changed_at", [3])
    assert said in str(err)


def test_rows_of_a_second_file_name_that_file(tmp_path: Path) -> None:
    m = mapping()
    m["tables"]["deals"] = [m["tables"]["deals"], {**m["tables"]["deals"], "file": "d2.csv"}]
    err = fails(export(tmp_path, **{"d2.csv": "id,acc,own,at,amt,status\nE1,A1,o,2024-01-01,-3,active\n"}), m)
    assert (err.table, err.column, err.rows, err.ids) == ("deals", "amount", [2], ["E1"])
    assert "in the export: d2.csv line 2. Fix:" in str(err)


def test_a_close_taken_from_stage_history_names_that_line_too(tmp_path: Path) -> None:
    """closed_at came from the deal's closing stage-history row: the mistake may be in either line."""
    history = "deal,stage,at\nD1,Prospecting,2024-01-01T00:00:00\nD2,Closed Won,2023-12-24T10:00:00\n"
    err = fails(export(tmp_path, **{"h.csv": history}), closing_mapping())
    assert (err.table, err.column, err.ids) == ("deals", "closed_at", ["D2"])
    assert "closed before they were created" in str(err)
    assert "in the export: d.csv line 4 (closed_at from h.csv line 3). Fix:" in str(err)
    # the note is about closed_at: a problem in another column of the row names the deal's line alone
    err = fails(export(tmp_path / "again", DEALS.replace(",20,active", ",-20,active"), **{"h.csv": history}),
                closing_mapping())
    assert "amount" in str(err) and "in the export: d.csv line 4. Fix: amounts" in str(err)


def test_a_deal_reopened_after_its_only_close_imports_open(tmp_path: Path) -> None:
    """No deal's last stage-history row closes it: nothing to take, and no crash on the empty lookup."""
    history = "deal,stage,at\nD2,Closed Won,2024-01-03T10:00:00\nD2,Qualification,2024-01-04T10:00:00\n"
    res = import_csv(export(tmp_path, **{"h.csv": history}), closing_mapping(), cut_at="2024-06-01")
    assert res.history.deals["outcome"].isna().all()
    assert res.history.stage_history["stage"].tolist() == ["qualification"]


def closing_mapping() -> dict[str, Any]:
    """:func:`mapping` with a stage history (h.csv) whose closing rows close the deals."""
    m = mapping(close_from_stage_history=True)
    m["tables"]["stage_history"] = {"file": "h.csv",
                                    "columns": {"deal_id": "deal", "stage": "stage", "changed_at": "at"}}
    return m


def test_a_row_the_import_added_says_so_and_names_the_lines_it_was_made_for(tmp_path: Path) -> None:
    long = "A" * 300  # longer than an id may be: refused on the account row the import adds for it
    deals = DEALS.replace("D1,A1", f"D1,{long}").replace("D2,A1", f"D2,{long}")
    err = fails(export(tmp_path, deals), mapping())
    assert (err.table, err.column, err.rows) == ("accounts", "account_id", [1])
    assert ("in the export: no line: the import added this row for an account id deals name but the accounts "
            "export lacks (d.csv lines 3, 4). Fix:") in str(err)


def test_contract_problems_beside_mapping_problems_name_their_lines(tmp_path: Path) -> None:
    """The import goes on after a mapping problem; the contract problems it then finds name lines too."""
    m = mapping()
    m["tables"]["deals"]["columns"]["outcome"] = {"column": "status", "values": {"won": "won"}}
    err = fails(export(tmp_path, DEALS.replace(",10,active", ",-10,active")), m)
    problems = {(p.table, p.column): str(p) for p in err.problems}
    assert "do not cover" in problems[("deals", "outcome")]
    assert "in the export: d.csv line 3. Fix:" in problems[("deals", "amount")]


def test_maven_errors_after_conversion_name_the_pipeline_line(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError) as e:
        import_maven(small_maven(tmp_path / "m"), cut_at="2017-01-15")
    assert (e.value.table, e.value.column, e.value.ids) == ("deals", "closed_at", ["OPP1"])
    assert "after the data cut" in str(e.value) and "in the export: sales_pipeline.csv line 2. Fix:" in str(e.value)


def test_maven_account_stub_names_the_pipeline_lines_it_was_made_for(tmp_path: Path) -> None:
    folder = small_maven(tmp_path / "m")
    pipeline = folder / "sales_pipeline.csv"
    pipeline.write_text(pipeline.read_text().replace("Newco", "N" * 300))
    with pytest.raises(DataValidationError) as e:
        import_maven(folder, cut_at="2017-06-01")
    assert (e.value.table, e.value.column) == ("accounts", "account_id")
    assert ("in the export: no line: the import added this row for an account deals name but accounts.csv lacks "
            "(sales_pipeline.csv line 4). Fix:") in str(e.value)


def test_an_imported_history_carries_no_origin_columns(tmp_path: Path) -> None:
    """Where rows came from is the importer's business: the tables written hold the contract's columns."""
    history = "deal,stage,at\nD1,Prospecting,2024-01-01T00:00:00\nD1,Closed Won,2024-02-01T00:00:00\n"
    deals = DEALS.replace("D2,A1", "D2,A7")  # an account the import adds
    for result in (import_csv(export(tmp_path, deals, **{"h.csv": history}), closing_mapping()),
                   import_maven(small_maven(tmp_path / "m"), cut_at="2017-06-01")):
        for name, frame in result.history.tables().items():
            assert not set(ORIGIN_COLUMNS) & set(frame.columns), name


# ----------------------------------------------------------------- cells holding line breaks, blank lines

#: D1's notes (a multi-line Salesforce description) fill lines 3 to 5, so D2 is on line 6
NOTES = ("id,acc,own,at,amt,status,notes\n"
         "D0,A1,o,2024-01-01,5,deleted,\n"
         'D1,A1,o,2024-01-01,10,active,"Call notes:\n- budget ok, ""urgent""\n- next: demo"\n'
         "D2,A1,o,2024-01-02,-20,active,short\n")


def test_a_cell_holding_line_breaks_does_not_shift_the_lines_after_it(tmp_path: Path) -> None:
    err = fails(export(tmp_path, NOTES), mapping())
    assert (err.table, err.column, err.rows, err.ids) == ("deals", "amount", [1], ["D2"])
    assert "in the export: d.csv line 6. Fix:" in str(err)


def test_a_file_with_cr_lf_line_ends_names_the_same_lines(tmp_path: Path) -> None:
    """Windows line ends, in the file and in the cell: one line end each, as an editor shows them."""
    src = export(tmp_path)
    (src / "d.csv").write_bytes(NOTES.replace("\n", "\r\n").encode("utf-8-sig"))
    assert "in the export: d.csv line 6. Fix:" in str(fails(src, mapping()))


def test_blank_lines_the_reader_skips_still_count(tmp_path: Path) -> None:
    deals = DEALS.replace("D1,", "\n\nD1,").replace("D2,A1,o,2024-01-02,20", " \nD2,A1,o,2024-01-02,-20")
    err = fails(export(tmp_path, deals), mapping())
    assert (err.rows, err.ids) == ([1], ["D2"])
    assert "in the export: d.csv line 7. Fix:" in str(err)


def test_a_mapping_problem_names_the_line_after_a_cell_holding_line_breaks(tmp_path: Path) -> None:
    """Stage-history rows have no id of their own: the importer names them by line (and deal)."""
    history = ('deal,stage,at,comment\nD1,Prospecting,2024-01-01T00:00:00,"moved on\nafter the demo"\n'
               "D2,Pitching,2024-01-02T00:00:00,\n")
    m = closing_mapping()
    err = fails(export(tmp_path, **{"h.csv": history}), m)
    assert (err.table, err.column, err.ids) == ("stage_history", "stage", ["line 4 (deal D2)"])


def test_the_line_column_is_not_one_of_the_files_columns(tmp_path: Path) -> None:
    """The reader keeps each row's line beside the file's columns; a message listing those leaves it out."""
    m = mapping()
    m["tables"]["deals"]["columns"]["amount"] = "Amount"
    m["tables"]["stage_history"] = {
        "file": "wide.csv", "unpivot": {"columns": "Entered (.*)", "name": "stage_name", "value": "entered"},
        "columns": {"deal_id": "deal", "stage": "stage_name", "changed_at": "entered"}}
    err = fails(export(tmp_path, NOTES, **{"wide.csv": "deal,Stage\nD1,Lead\n"}), m)
    said = {p.where: str(p) for p in err.problems}  # type: ignore[attr-defined]
    assert "the file has ['id', 'acc', 'own', 'at', 'amt', 'status', 'notes']" in said["tables.deals.columns.amount"]
    assert "the file has ['deal', 'Stage']" in said["tables.stage_history.unpivot.columns"]


def test_maven_names_the_pipeline_line_after_a_cell_holding_line_breaks(tmp_path: Path) -> None:
    folder = small_maven(tmp_path / "m")
    pipeline = folder / "sales_pipeline.csv"
    pipeline.write_text(pipeline.read_text().replace("OPP1,Ann,", 'OPP1,"Ann\nSmith",').replace("Newco", "N" * 300))
    with pytest.raises(DataValidationError) as e:
        import_maven(folder, cut_at="2017-06-01")
    assert "(sales_pipeline.csv line 5). Fix:" in str(e.value)
