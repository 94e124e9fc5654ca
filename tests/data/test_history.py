"""Loading and typing a deal history (dealscore.data.history): files, types, zones, round trips, as_known_at."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dealscore.data.history import (
    DealHistory,
    from_frames,
    load_history,
    parse_cut_at,
    refuse_after_cut,
    write_history,
)
from dealscore.errors import DataValidationError


def frames() -> dict[str, pd.DataFrame]:
    """A small valid history as raw text, the way a CSV export arrives."""
    return {
        "accounts": pd.DataFrame({
            "account_id": ["A1", "A2"], "industry": ["software", "retail"], "employees": ["120", "45"],
            "annual_revenue": ["1500000.5", ""], "region": ["NA", "EMEA"],
        }),
        "deals": pd.DataFrame({
            "deal_id": ["D1", "D2", "D3"], "account_id": ["A1", "A2", "A1"], "owner_id": ["o1", "o2", "o1"],
            "created_at": ["2024-01-01T09:00:00", "2024-01-05", "2024-02-01T10:30:00"],
            "amount": ["1000", "2000.5", ""], "expected_close_date": ["2024-03-31", "", "2024-05-31"],
            "closed_at": ["2024-03-01T12:00:00", "2024-02-20", ""], "outcome": ["won", "lost", ""],
            "team": ["east", "west", "east"],
        }),
        "stage_history": pd.DataFrame({
            "deal_id": ["D1", "D1", "D2", "D3"],
            "stage": ["prospecting", "proposal", "prospecting", "qualification"],
            "changed_at": ["2024-01-01T09:00:00", "2024-02-01", "2024-01-05", "2024-02-01T10:30:00"],
            "recorded_at": ["", "2024-02-08", "", ""],
            "amount": ["900", "1000", "2000.5", ""],
        }),
        "activities": pd.DataFrame({
            "activity_id": ["X1", "X2", "X3", "X4"], "deal_id": ["D1", "D1", "D3", "D3"],
            "occurred_at": ["2024-01-02T10:00:00", "2024-02-15T10:00:00", "2024-02-03", "2024-02-20T09:00:00"],
            "type": ["email", "meeting", "call", "meeting"], "direction": ["outbound", "inbound", "inbound", ""],
            # X4 was put in the calendar before it happened; X2 was logged a week late
            "recorded_at": ["", "2024-02-22T10:00:00", "", "2024-02-10T09:00:00"],
        }),
    }


def write_csvs(folder: Path, tables: dict[str, pd.DataFrame]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


def test_types_follow_the_contract() -> None:
    h = from_frames(frames())
    d = h.deals
    assert str(d["created_at"].dtype) == "datetime64[ns]"
    assert str(d["expected_close_date"].dtype) == "datetime64[ns]"
    assert d["amount"].dtype == "float64"
    assert d["deal_id"].dtype == object
    assert d["outcome"].tolist() == ["won", "lost", None]  # None, not NaN or ""
    assert d["product"].tolist() == [None, None, None]  # optional column added, empty
    assert h.accounts["annual_revenue"].isna().tolist() == [False, True]
    assert h.accounts["region"].tolist() == ["NA", "EMEA"]


def test_csv_folder_round_trip_is_exact_and_byte_stable(tmp_path: Path) -> None:
    h = from_frames(frames(), cut_at="2024-06-01")
    write_history(h, tmp_path / "a")
    back = load_history(tmp_path / "a")
    for name, frame in h.tables().items():
        pd.testing.assert_frame_equal(back.table(name)[frame.columns], frame, check_dtype=True)
    assert back.cut_at == pd.Timestamp("2024-06-01")
    write_history(back, tmp_path / "b")
    for f in ("accounts.csv", "deals.csv", "stage_history.csv", "activities.csv", "history.yaml"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


def test_parquet_round_trip_and_no_stale_format_left(tmp_path: Path) -> None:
    h = from_frames(frames())
    write_history(h, tmp_path, fmt="csv")
    write_history(h, tmp_path, fmt="parquet")
    assert not (tmp_path / "deals.csv").exists()  # a stale CSV beside the Parquet would be ambiguous
    back = load_history(tmp_path)
    pd.testing.assert_frame_equal(back.deals[h.deals.columns], h.deals)
    assert back.activities["recorded_at"].dtype == "datetime64[ns]"


def test_a_clash_half_way_writes_nothing(tmp_path: Path) -> None:
    """A folder where deals.csv goes is found before accounts.csv is written: no partial history."""
    (tmp_path / "out" / "deals.csv").mkdir(parents=True)
    with pytest.raises(DataValidationError, match=r"deals\.csv exists and is not a file"):
        write_history(from_frames(frames()), tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["deals.csv"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder left beside it


def test_unwritable_folder_is_a_clean_error_and_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(DataValidationError, match="cannot write the history to") as info:
        write_history(from_frames(frames()), tmp_path / "a-file" / "out")
    assert "Fix:" in str(info.value)
    assert [p.name for p in tmp_path.iterdir()] == ["a-file"]


def test_rewriting_an_existing_folder_keeps_other_files_and_leaves_no_staging(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_history(from_frames(frames()), out)
    (out / "notes.txt").write_text("mine")
    write_history(from_frames(frames()), out, fmt="parquet")
    assert (out / "notes.txt").read_text() == "mine" and (out / "deals.parquet").is_file()
    assert not (out / "deals.csv").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_region_na_and_bom_and_blank_headers_survive(tmp_path: Path) -> None:
    write_csvs(tmp_path, frames())
    text = (tmp_path / "accounts.csv").read_text()
    header, rest = text.split("\n", 1)
    (tmp_path / "accounts.csv").write_text("\ufeff" + ", ".join(header.split(",")) + "\n" + rest, encoding="utf-8")
    h = load_history(tmp_path)
    assert h.accounts["account_id"].tolist() == ["A1", "A2"]
    assert h.accounts["region"].tolist() == ["NA", "EMEA"]


def test_missing_folder_names_what_it_needs(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="does not exist") as e:
        load_history(tmp_path / "nope")
    assert "deals.csv" in str(e.value)


def test_missing_file_names_table_and_fix(tmp_path: Path) -> None:
    tables = frames()
    del tables["deals"]
    write_csvs(tmp_path, tables)
    with pytest.raises(DataValidationError) as e:
        load_history(tmp_path)
    assert e.value.table == "deals"
    assert "deals.csv" in str(e.value) and "Fix:" in str(e.value)


def test_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    write_csvs(tmp_path, frames())
    (tmp_path / "activities.csv").write_text("")
    with pytest.raises(DataValidationError, match=r"activities.*empty") as e:
        load_history(tmp_path)
    assert e.value.table == "activities"


def test_missing_required_column_is_named(tmp_path: Path) -> None:
    tables = frames()
    tables["deals"] = tables["deals"].drop(columns=["owner_id"])
    write_csvs(tmp_path, tables)
    with pytest.raises(DataValidationError, match=r"missing required column\(s\) \['owner_id'\]") as e:
        load_history(tmp_path)
    assert (e.value.table, e.value.column) == ("deals", "owner_id")


def test_unparseable_date_names_ids_and_values() -> None:
    tables = frames()
    tables["deals"].loc[1, "created_at"] = "5th of January"
    with pytest.raises(DataValidationError) as e:
        from_frames(tables)
    err = e.value
    assert (err.table, err.column, err.ids) == ("deals", "created_at", ["D2"])
    assert "'5th of January'" in str(err) and "ISO 8601" in str(err)


def test_placeholder_date_outside_range_is_refused_not_a_crash() -> None:
    tables = frames()
    tables["deals"].loc[2, "expected_close_date"] = "9999-12-31"
    with pytest.raises(DataValidationError, match="9999") as e:
        from_frames(tables)
    assert (e.value.column, e.value.ids) == ("expected_close_date", ["D3"])


def test_not_a_number_names_ids() -> None:
    tables = frames()
    tables["deals"].loc[0, "amount"] = "$1,000"
    with pytest.raises(DataValidationError, match="not numbers") as e:
        from_frames(tables)
    assert (e.value.column, e.value.ids) == ("amount", ["D1"])


def test_offsets_are_converted_to_naive_utc() -> None:
    tables = frames()
    for name, col in (("deals", "created_at"), ("deals", "closed_at"), ("stage_history", "changed_at"),
                      ("stage_history", "recorded_at"), ("activities", "occurred_at"), ("activities", "recorded_at")):
        tables[name][col] = tables[name][col].map(lambda v: f"{v[:10]}T12:00:00+02:00" if v else v)
    # summer and winter offsets in one column are fine: all go to UTC
    tables["deals"].loc[2, "created_at"] = "2024-02-01T12:00:00+01:00"
    h = from_frames(tables)
    assert h.deals["created_at"].tolist()[:3] == [
        pd.Timestamp("2024-01-01T10:00:00"), pd.Timestamp("2024-01-05T10:00:00"), pd.Timestamp("2024-02-01T11:00:00"),
    ]
    assert h.deals["created_at"].dt.tz is None
    # a date-only column has no zone and is not held against the zoned ones
    assert h.deals["expected_close_date"].iloc[0] == pd.Timestamp("2024-03-31")


def test_zone_mixed_within_a_column_names_the_naive_rows() -> None:
    tables = frames()
    tables["activities"]["occurred_at"] = ["2024-01-02T10:00:00Z", "2024-02-15T10:00:00+00:00",
                                           "2024-02-03T08:00:00", "2024-02-20T09:00:00Z"]
    with pytest.raises(DataValidationError, match="no time zone") as e:
        from_frames(tables)
    assert (e.value.table, e.value.column, e.value.ids) == ("activities", "occurred_at", ["X3"])


def test_zone_mixed_within_a_column_names_the_odd_ones_out() -> None:
    """One offset among values without one named every other row, never the one to fix."""
    tables = frames()
    tables["activities"]["occurred_at"] = ["2024-01-02T10:00:00", "2024-02-15T10:00:00+02:00",
                                           "2024-02-03T08:00:00", "2024-02-20T09:00:00"]
    with pytest.raises(DataValidationError, match=r"carry a time zone while 3 other\(s\) in the column have none") as e:
        from_frames(tables)
    assert e.value.ids == ["X2"]


def test_zone_mixed_across_tables_is_refused() -> None:
    tables = frames()
    tables["activities"]["occurred_at"] = tables["activities"]["occurred_at"].map(lambda v: v[:10] + "T00:00:00Z")
    with pytest.raises(DataValidationError, match="not time-zone consistent") as e:
        from_frames(tables)
    assert "activities.occurred_at" in str(e.value) and "deals.created_at" in str(e.value)


def test_unknown_table_name_is_not_ignored() -> None:
    tables = frames()
    tables["activity"] = tables.pop("activities")
    with pytest.raises(DataValidationError, match="unknown table"):
        from_frames(tables)  # type: ignore[arg-type]


def test_history_yaml_cut_at_and_its_errors(tmp_path: Path) -> None:
    write_csvs(tmp_path, frames())
    (tmp_path / "history.yaml").write_text("cut_at: 2024-06-01T02:00:00+02:00\n")
    assert load_history(tmp_path).cut_at == pd.Timestamp("2024-06-01T00:00:00")
    (tmp_path / "history.yaml").write_text("cut_at: [unclosed\n")
    with pytest.raises(DataValidationError, match="not valid YAML"):
        load_history(tmp_path)
    (tmp_path / "history.yaml").write_text("cut_at: next tuesday\n")
    with pytest.raises(DataValidationError, match="not a timestamp"):
        load_history(tmp_path)
    assert parse_cut_at(None) is None and parse_cut_at("") is None


def test_data_cut_falls_back_to_latest_fact() -> None:
    h = from_frames(frames())
    assert h.cut_at is None
    assert h.data_cut == pd.Timestamp("2024-03-01T12:00:00")  # D1's close, later than any event or record
    assert from_frames(frames(), cut_at="2024-07-01").data_cut == pd.Timestamp("2024-07-01")


def test_for_deals_keeps_only_their_rows() -> None:
    h = from_frames(frames()).for_deals(["D3"])
    assert h.deals["deal_id"].tolist() == ["D3"]
    assert set(h.stage_history["deal_id"]) == {"D3"} and set(h.activities["deal_id"]) == {"D3"}
    assert len(h.accounts) == 2


def test_as_known_at_rolls_back_what_was_not_known() -> None:
    h: DealHistory = from_frames(frames())
    past = h.as_known_at("2024-02-16")
    assert past.cut_at == pd.Timestamp("2024-02-16")
    # D2 closed on 02-20: open again; D1 closes 03-01: open again
    assert past.deals.set_index("deal_id")["outcome"].isna().all()
    assert past.deals["closed_at"].isna().all()
    assert past.deals["expected_close_date"].isna().all()  # current values cannot be rolled back
    # D1's proposal happened 02-01 but was recorded 02-08: known at 02-16
    assert (past.stage_history["stage"] == "proposal").sum() == 1
    # X2 happened 02-15 but was logged 02-22: not known yet
    assert "X2" not in set(past.activities["activity_id"])
    # X4 was scheduled on 02-10 for 02-20: not a fact before it happens
    assert "X4" not in set(past.activities["activity_id"])
    assert "X4" in set(h.as_known_at("2024-02-20T09:00:00").activities["activity_id"])
    early = h.as_known_at("2024-01-10")
    assert early.deals["deal_id"].tolist() == ["D1", "D2"]  # D3 not created yet
    assert set(early.stage_history["deal_id"]) <= {"D1", "D2"}


def test_write_refuses_a_file_as_folder(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(DataValidationError, match="not a folder"):
        write_history(from_frames(frames()), target)


def test_the_contract_doc_lists_every_column() -> None:
    from dealscore.data.schema import TABLES

    doc = (Path(__file__).resolve().parents[2] / "docs" / "data-contract.md").read_text(encoding="utf-8")
    for table in TABLES.values():
        assert f"### {table.name}" in doc
        for col in table.columns:
            assert f"| `{col.name}` | {col.kind} | {'yes' if col.required else 'no'} |" in doc, (table.name, col.name)


# ---------------------------------------------------------------- one typing path for every layout and size

# text as CRMs send it: blanks, tabs, non-breaking and figure spaces (stripped), a zero-width space (kept)
_TEXT = st.one_of(st.none(), st.just(float("nan")),
                  st.text(alphabet=st.sampled_from(list("aZ09 _-é\t\n\u00a0\u2007\u200b")), max_size=6))


def _contract_text(values: list[object]) -> list[object]:
    """The contract's rule for a text cell, written the plain pandas way: stripped, blank or missing -> None."""
    s = pd.Series(values, dtype=object).astype("string").str.strip()
    s = s.mask(s == "")
    return s.astype(object).where(s.notna(), None).tolist()


def _accounts(industry: pd.Series, region: pd.Series) -> dict[str, pd.DataFrame]:
    tables = frames()
    n = len(industry)
    tables["accounts"] = pd.DataFrame({"account_id": [f"A{i}" for i in range(n)], "industry": industry,
                                       "region": region})
    return tables


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_TEXT, _TEXT), max_size=8))
def test_text_columns_follow_the_contract_whatever_their_layout(cells: list[tuple[object, object]]) -> None:
    industry = [a for a, _ in cells]
    region = [b for _, b in cells]
    want_industry, want_region = _contract_text(industry), _contract_text(region)
    layouts = {
        "objects": (pd.Series(industry, dtype=object), pd.Series(region, dtype=object)),
        "pandas strings": (pd.Series(industry, dtype=object).astype("str"), pd.Series(region, dtype=object)),
    }
    for layout, (a, b) in layouts.items():
        acc = from_frames(_accounts(a, b)).accounts
        assert acc["industry"].tolist() == want_industry, layout
        assert acc["region"].tolist() == want_region, layout
        assert acc["industry"].dtype == object and acc["region"].dtype == object
        assert all(v is None or type(v) is str for v in acc["industry"]), layout


def test_non_text_values_in_a_text_column_become_their_text() -> None:
    tables = frames()
    tables["accounts"]["account_id"] = [1001, 1002]  # numeric ids, as a Parquet export may hold them
    assert from_frames(tables).accounts["account_id"].tolist() == ["1001", "1002"]
    tables["accounts"]["account_id"] = pd.Series(["A1", pd.NA], dtype=object)
    assert from_frames(tables).accounts["account_id"].tolist() == ["A1", None]


def test_typed_tables_pass_through_unchanged_and_stay_independent() -> None:
    h = from_frames(frames())
    again = from_frames(h.tables())  # an API payload arrives already typed
    for name, frame in h.tables().items():
        pd.testing.assert_frame_equal(again.table(name), frame, check_exact=True)
        assert again.table(name) is not frame
    again.deals.loc[0, "amount"] = -1.0
    again.activities.loc[0, "type"] = "changed"
    assert h.deals.loc[0, "amount"] == 1000.0 and h.activities.loc[0, "type"] == "email"


def test_typed_timestamps_in_any_unit_match_their_text() -> None:
    text = from_frames(frames())
    tables = frames()
    for name, col, unit in (("deals", "created_at", "s"), ("deals", "closed_at", "us"),
                            ("stage_history", "changed_at", "ns"), ("activities", "occurred_at", "s")):
        tables[name][col] = pd.to_datetime(tables[name][col], format="ISO8601").astype(f"datetime64[{unit}]")
    # a date column given with a time of day is floored to the day, also before 1970
    tables["deals"]["expected_close_date"] = pd.to_datetime(
        ["2024-03-31T17:45:00", None, "1969-05-31T23:00:00"]).astype("datetime64[us]")
    typed = from_frames(tables)
    for name in ("deals", "stage_history", "activities"):
        got, want = typed.table(name), text.table(name)
        for col in got.columns:
            if col != "expected_close_date":
                pd.testing.assert_series_equal(got[col], want[col], check_exact=True)
    assert typed.deals["expected_close_date"].tolist()[::2] == [pd.Timestamp("2024-03-31"), pd.Timestamp("1969-05-31")]
    assert str(typed.deals["expected_close_date"].dtype) == "datetime64[ns]"


def test_a_placeholder_date_in_seconds_is_refused_before_it_can_overflow() -> None:
    tables = frames()
    tables["deals"]["closed_at"] = pd.Series(
        np.array(["2024-03-01", "9999-12-31", "NaT"], dtype="datetime64[s]"))
    with pytest.raises(DataValidationError, match="9999-12-31") as e:
        from_frames(tables)
    assert (e.value.column, e.value.ids) == ("closed_at", ["D2"])


def test_a_time_after_the_data_cut_is_refused_naming_the_cut() -> None:
    h = from_frames(frames(), cut_at="2024-06-01")
    refuse_after_cut(h, pd.Timestamp("2024-06-01"), "score", fix="omit --as-of")
    with pytest.raises(DataValidationError, match="cannot score as of 2024-06-02 00:00: the history's data cut is "
                       "2024-06-01 00:00") as info:
        refuse_after_cut(h, pd.Timestamp("2024-06-02"), "score", fix="omit --as-of")
    assert info.value.fix == "omit --as-of" and "Fix: omit --as-of" in str(info.value)
    assert info.value.http_status == 422  # a request the history cannot answer, not a broken configuration
    with pytest.raises(DataValidationError, match="as of 2024-06-01 00:00:01: the history's data cut is "
                       "2024-06-01 00:00:00"):  # to the minute, the two times read alike
        refuse_after_cut(h, pd.Timestamp("2024-06-01 00:00:01"), "score")


def test_every_unreadable_file_is_named_in_one_run(tmp_path: Path) -> None:
    """A missing deals.csv stopped the load before an unreadable activities.csv and a broken history.yaml
    were looked at: a user fixing an export got one problem per attempt."""
    folder = write_csvs(tmp_path, frames())
    (folder / "deals.csv").unlink()
    (folder / "activities.csv").write_bytes(b"\xa9\xff\xfe not text")
    (folder / "history.yaml").write_text("cut_at: [\n", encoding="utf-8")
    with pytest.raises(DataValidationError) as e:
        load_history(folder)
    problems = e.value.problems
    assert [p.table for p in problems] == ["deals", "activities", "history.yaml"], str(e.value)
    assert str(e.value).startswith("3 problems in the history folder")
    assert "no file deals.csv" in str(e.value) and "not a readable CSV file" in str(e.value)
