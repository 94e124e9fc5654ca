"""History folders a careless or hostile export produces: each refused with table, column, rows and fix.

Infinite numbers, a column named twice, cells longer than the API accepts or
holding NUL characters, and a Parquet file shadowing the CSV a user is editing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dealscore.data import load_history
from dealscore.data.history import from_frames
from dealscore.data.importers.common import read_source_csv
from dealscore.data.schema import MAX_DISPLAY_CHARS, MAX_ID_CHARS, MAX_TEXT_CHARS
from dealscore.data.validate import load_and_validate
from dealscore.errors import DataValidationError
from tests.cli.test_data_cli import edit, history_folder


@pytest.mark.parametrize("amount", ["inf", "Infinity", "-inf", "1e309", "-1E400", "NaN", "nan"])
def test_infinite_amounts_are_refused_like_nan(tmp_path: Path, amount: str) -> None:
    folder = history_folder(tmp_path / "h")
    edit(folder / "deals.csv", "D3,A1,o1,2024-02-01,,", f"D3,A1,o1,2024-02-01,{amount},")
    with pytest.raises(DataValidationError) as e:
        load_history(folder)
    assert e.value.table == "deals" and e.value.column == "amount" and e.value.ids == ["D3"]
    assert "not finite" in str(e.value) and amount in str(e.value) and e.value.fix


def test_every_value_that_cannot_be_typed_is_listed_in_one_run(tmp_path: Path) -> None:
    """An infinite amount hid a bad date in the same table and a bad number in another until it was fixed."""
    folder = history_folder(tmp_path / "h")
    edit(folder / "deals.csv", "D3,A1,o1,2024-02-01,,", "D3,A1,o1,2024-02-01,inf,")
    edit(folder / "deals.csv", "D2,A2,o2,2024-01-05,", "D2,A2,o2,yesterday,")
    edit(folder / "activities.csv", "X3,D3,2024-02-03", "X3,D3,2024-02-31")
    with pytest.raises(DataValidationError, match="3 problems in the deal history") as e:
        load_history(folder)
    assert [(p.table, p.column) for p in e.value.problems] == [  # type: ignore[attr-defined]
        ("deals", "created_at"), ("deals", "amount"), ("activities", "occurred_at")]
    folder = history_folder(tmp_path / "h2")  # two rules broken in one column: both said
    edit(folder / "deals.csv", "D3,A1,o1,2024-02-01,,", "D3,A1,o1,2024-02-01,NaN,")
    edit(folder / "deals.csv", "D2,A2,o2,2024-01-05,2000", "D2,A2,o2,2024-01-05,$2000")
    with pytest.raises(DataValidationError, match="2 problems") as e:
        load_history(folder)
    said = [str(p) for p in e.value.problems]  # type: ignore[attr-defined]
    assert "are not numbers such as '$2000'" in said[0] and "are not finite numbers such as 'NaN'" in said[1]


def test_infinite_numbers_in_typed_frames_are_refused(tmp_path: Path) -> None:
    """Parquet and DataFrames hold floats already: an infinity there is refused too."""
    folder = history_folder(tmp_path / "h")
    deals = pd.read_csv(folder / "deals.csv", dtype={"amount": float})
    deals.loc[1, "amount"] = np.inf
    deals.to_parquet(folder / "deals.parquet")
    (folder / "deals.csv").unlink()
    with pytest.raises(DataValidationError, match="not finite") as e:
        load_history(folder)
    assert e.value.ids == ["D2"]
    accounts = pd.read_csv(folder / "accounts.csv").assign(annual_revenue=[1.0, -np.inf])
    frames = {"accounts": accounts, "deals": pd.read_parquet(folder / "deals.parquet").assign(amount=1.0),
              "stage_history": pd.read_csv(folder / "stage_history.csv"),
              "activities": pd.read_csv(folder / "activities.csv")}
    with pytest.raises(DataValidationError, match="annual_revenue: 1 value"):
        from_frames(frames)


def test_a_column_named_twice_is_refused_naming_the_file(tmp_path: Path) -> None:
    folder = history_folder(tmp_path / "h")
    text = (folder / "deals.csv").read_text().splitlines()
    (folder / "deals.csv").write_text("\n".join([text[0] + ", amount ", *(line + ",9" for line in text[1:])]) + "\n")
    with pytest.raises(DataValidationError) as e:
        load_history(folder)
    assert e.value.table == "deals" and e.value.column == "amount"
    assert str(folder / "deals.csv") in str(e.value) and "['amount'] more than once" in str(e.value)


def test_rows_wider_than_their_header_are_refused_not_shifted(tmp_path: Path) -> None:
    """A separator at the end of each data row: pandas took the ids for an index and shifted every column left,
    and validate blamed annual_revenue for holding countries."""
    folder = history_folder(tmp_path / "h")
    before = load_history(folder).accounts
    text = (folder / "accounts.csv").read_text().splitlines()
    (folder / "accounts.csv").write_text("\n".join([text[0], *(line + "," for line in text[1:])]) + "\n")
    pd.testing.assert_frame_equal(load_history(folder).accounts, before)  # an empty extra field: read in place
    (folder / "accounts.csv").write_text("\n".join([text[0], *(line + ",x" for line in text[1:])]) + "\n")
    with pytest.raises(DataValidationError, match=r"accounts.csv line 2 has \d+ fields where its header names") as e:
        load_history(folder)
    assert e.value.table == "accounts" and "line 2" in (e.value.fix or "")
    lines = [text[0], text[1] + ",", *(line + ",x" for line in text[2:])]  # the first holds no value beyond
    (folder / "accounts.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataValidationError, match=r"accounts.csv line 3 has"):
        load_history(folder)


def test_an_importer_source_with_a_column_named_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deals.csv"
    path.write_text("id;amount;stage;amount\n1;2;won;3\n")
    with pytest.raises(DataValidationError, match=r"\['amount'\] more than once"):
        read_source_csv(path, label="deals.csv", delimiter=";")


@pytest.mark.parametrize(("table", "column", "old", "cap"), [
    ("deals", "deal_id", "D3,A1,o1", MAX_ID_CHARS),
    ("accounts", "industry", "A2,retail", MAX_TEXT_CHARS),
])
def test_cells_longer_than_the_api_accepts_are_refused(
    tmp_path: Path, table: str, column: str, old: str, cap: int,
) -> None:
    folder = history_folder(tmp_path / "h")
    head, value, *rest = old.split(",")
    long = "x" * (cap + 1) if column != "industry" else "y" * 2_000_000
    new = ",".join([long, value, *rest]) if column == "deal_id" else ",".join([head, long, *rest])
    edit(folder / f"{table}.csv", old, new)
    with pytest.raises(DataValidationError) as e:
        load_history(folder)
    assert e.value.table == table and e.value.column == column
    assert f"longer than {cap:,} characters" in str(e.value) and e.value.fix
    # at the cap exactly, the cell is fine
    edit(folder / f"{table}.csv", long, "z" * cap)
    if column == "deal_id":  # the deal's rows elsewhere name it by id: keep them in step
        for other in ("stage_history", "activities"):
            edit(folder / f"{other}.csv", "D3,", "z" * cap + ",")
    load_and_validate(folder)


def test_display_names_have_the_apis_cap(tmp_path: Path) -> None:
    folder = history_folder(tmp_path / "h")
    name = "n" * (MAX_DISPLAY_CHARS + 1)
    edit(folder / "accounts.csv", "account_id,industry\nA1,software",
         f"account_id,industry,account_name\nA1,software,{name}")
    edit(folder / "accounts.csv", "A2,retail", "A2,retail,")
    with pytest.raises(DataValidationError, match=f"account_name: 1 value.*longer than {MAX_DISPLAY_CHARS}"):
        load_history(folder)


def test_nul_characters_are_refused(tmp_path: Path) -> None:
    folder = history_folder(tmp_path / "h")
    edit(folder / "activities.csv", "X3,D3,2024-02-03,call", "X3,D3,2024-02-03,ca\x00ll")
    with pytest.raises(DataValidationError) as e:
        load_history(folder)
    assert e.value.table == "activities" and e.value.column == "type" and e.value.ids == ["X3"]
    assert "NUL" in str(e.value)


def test_a_parquet_file_shadowing_the_csv_is_named(tmp_path: Path) -> None:
    folder = history_folder(tmp_path / "h")
    deals = pd.read_csv(folder / "deals.csv", dtype=str)
    deals.loc[2, "deal_id"] = "D1"  # the Parquet copy has a duplicate id the CSV does not
    deals.to_parquet(folder / "deals.parquet")
    with pytest.raises(DataValidationError) as e:
        load_and_validate(folder)
    message = str(e.value)
    assert "table deals, column deal_id" in message
    assert f"read from {folder / 'deals.parquet'}" in message and "deals.csv beside it was not read" in message
    # a valid Parquet copy loads, and the report says which file was read
    deals.loc[2, "deal_id"] = "D3"
    deals.to_parquet(folder / "deals.parquet")
    _, report = load_and_validate(folder)
    assert any("deals was read from deals.parquet; deals.csv beside it was not read" in w for w in report.warnings)
    # an error while typing the Parquet table names it too
    deals.loc[0, "created_at"] = "not a date"
    deals.to_parquet(folder / "deals.parquet")
    with pytest.raises(DataValidationError, match=r"deals\.csv beside it was not read"):
        load_history(folder)


def test_one_file_alone_gets_no_note(tmp_path: Path) -> None:
    folder = history_folder(tmp_path / "h")
    edit(folder / "deals.csv", "D3,A1", "D1,A1")
    with pytest.raises(DataValidationError) as e:
        load_and_validate(folder)
    assert "beside it" not in str(e.value)


@pytest.mark.parametrize(("text", "zoned"), [
    ("2025-03-12T14:30:00", False), ("2025-03-12 14:30:00", False), ("2025-03-12", False),
    ("2025-03-12T14:30:00.123", False), ("2025-03-12T14:30:00Z", True), ("2025-03-12T14:30Z", True),
    ("2025-03-12T14:30:00+01:00", True), ("2025-03-12T14:30:00-0500", True), ("2025-03-12T14:30:00.5+00:00", True),
    (" 2025-03-12T14:30:00Z ", True),
])
def test_one_zone_rule_reads_a_timestamp_as_the_csv_column_rule_does(text: str, zoned: bool) -> None:
    """The API's per-value check and the CSV column's pattern agree on every spelling."""
    from dealscore.data.rules import text_has_zone, texts_have_zone

    assert text_has_zone(text) is zoned
    assert bool(texts_have_zone(pd.Series([text.strip()], dtype="string"))[0]) is zoned
