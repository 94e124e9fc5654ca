"""The contract's rules (DESIGN §3), one test per rule: each error names table, column, ids and the fix."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dealscore.data import rules
from dealscore.data.history import DealHistory, from_frames
from dealscore.data.simulate import simulate
from dealscore.data.validate import validate_history
from dealscore.errors import DataValidationError
from dealscore.taxonomy import StageTaxonomy, default_taxonomy


def frames() -> dict[str, pd.DataFrame]:
    """A valid history: D1 won, D2 lost, D3 open."""
    return {
        "accounts": pd.DataFrame({"account_id": ["A1", "A2"], "industry": ["software", "retail"]}),
        "deals": pd.DataFrame({
            "deal_id": ["D1", "D2", "D3"], "account_id": ["A1", "A2", "A1"], "owner_id": ["o1", "o2", "o1"],
            "created_at": ["2024-01-01", "2024-01-05", "2024-02-01"], "amount": [1000.0, 2000.0, None],
            "closed_at": ["2024-03-01", "2024-02-20", None], "outcome": ["won", "lost", None],
        }),
        "stage_history": pd.DataFrame({
            "deal_id": ["D1", "D1", "D2", "D3"],
            "stage": ["prospecting", "proposal", "prospecting", "qualification"],
            "changed_at": ["2024-01-01", "2024-02-01", "2024-01-05", "2024-02-01"],
        }),
        "activities": pd.DataFrame({
            "activity_id": ["X1", "X2", "X3"], "deal_id": ["D1", "D1", "D3"],
            "occurred_at": ["2024-01-02", "2024-02-15", "2024-02-03"],
            "type": ["email", "meeting", "call"], "direction": ["outbound", "inbound", None],
            "contact_role": [None, "decision_maker", None],
        }),
    }


def history(tables: dict[str, pd.DataFrame] | None = None, **kw: object) -> DealHistory:
    return from_frames(tables or frames(), **kw)  # type: ignore[arg-type]


def fails(tables: dict[str, pd.DataFrame], **kw: object) -> DataValidationError:
    with pytest.raises(DataValidationError) as e:
        validate_history(history(tables), **kw)  # type: ignore[arg-type]
    err = e.value
    assert "Fix:" in str(err), str(err)
    return err


def test_valid_history_passes_with_a_full_report() -> None:
    clean, report = validate_history(history(cut_at="2024-06-01"))
    assert report.rows == {"accounts": 2, "deals": 3, "stage_history": 4, "activities": 3}
    assert report.dropped == {}
    assert (report.open_deals, report.won_deals, report.lost_deals) == (1, 1, 1)
    assert report.stages_seen == {"prospecting": 2, "qualification": 1, "proposal": 1}
    assert report.activity_types_seen == {"email": 1, "meeting": 1, "call": 1}
    assert report.first_event == pd.Timestamp("2024-01-01")
    assert report.cut_at == pd.Timestamp("2024-06-01")
    assert clean.activities["deal_id"].is_monotonic_increasing
    assert report.to_dict()["cut_at"] == "2024-06-01T00:00:00"


# ---------------------------------------------------------------- unique ids


@pytest.mark.parametrize(("table", "column", "row", "dup"), [
    ("deals", "deal_id", 2, "D1"), ("accounts", "account_id", 1, "A1"), ("activities", "activity_id", 2, "X1"),
])
def test_ids_must_be_unique(table: str, column: str, row: int, dup: str) -> None:
    tables = frames()
    tables[table].loc[row, column] = dup
    if table == "deals":  # keep the rest of the history consistent
        tables["stage_history"] = tables["stage_history"][tables["stage_history"]["deal_id"] != "D3"]
        tables["activities"] = tables["activities"][tables["activities"]["deal_id"] != "D3"]
    err = fails(tables)
    assert (err.table, err.column, err.ids) == (table, column, [dup])
    assert "unique" in str(err)


def test_at_most_five_ids_are_listed() -> None:
    tables = frames()
    n = 12
    tables["activities"] = pd.DataFrame({
        "activity_id": [f"X{i}" for i in range(n)], "deal_id": [f"Z{i}" for i in range(n)],
        "occurred_at": ["2024-01-02"] * n, "type": ["email"] * n,
    })
    err = fails(tables)
    assert err.ids == ["X0", "X1", "X2", "X3", "X4"]
    assert "12 row(s)" in str(err) and "X5" not in str(err)


# ---------------------------------------------------------------- foreign keys


def test_deal_account_must_exist() -> None:
    tables = frames()
    tables["deals"].loc[1, "account_id"] = "A9"
    err = fails(tables)
    assert (err.table, err.column, err.ids) == ("deals", "account_id", ["D2"])


@pytest.mark.parametrize("table", ["stage_history", "activities"])
def test_event_deal_must_exist(table: str) -> None:
    tables = frames()
    tables[table].loc[0, "deal_id"] = "D404"
    err = fails(tables)
    assert (err.table, err.column) == (table, "deal_id")
    assert "['D404']" in str(err)  # the unknown deal, beside the rows that name it
    assert err.ids == (["X1"] if table == "activities" else ["row 2 (deal D404)"])


def test_stage_truth_deal_must_exist() -> None:
    tables = frames()
    tables["stage_truth"] = pd.DataFrame({"deal_id": ["D404"], "as_of": ["2024-01-02"], "stage": ["prospecting"]})
    err = fails(tables)
    assert (err.table, err.column) == ("stage_truth", "deal_id")


def test_required_values_must_be_filled() -> None:
    tables = frames()
    tables["deals"].loc[2, "owner_id"] = "  "
    err = fails(tables)
    assert (err.table, err.column, err.ids) == ("deals", "owner_id", ["D3"])


def test_header_only_deals_table_is_an_error() -> None:
    tables = frames()
    tables["deals"] = tables["deals"].iloc[0:0]
    tables["stage_history"] = tables["stage_history"].iloc[0:0]
    tables["activities"] = tables["activities"].iloc[0:0]
    err = fails(tables)
    assert (err.table, err.column) == ("deals", "deal_id")
    assert "no rows" in str(err)


# ---------------------------------------------------------------- stage names and vocabularies


def test_stage_names_must_be_in_the_taxonomy() -> None:
    tables = frames()
    tables["stage_history"].loc[1, "stage"] = "Verbal Commit"
    err = fails(tables)
    assert (err.table, err.column, err.ids) == ("stage_history", "stage", ["row 3 (deal D1)"])
    assert "Verbal Commit" in str(err) and "aliases" in str(err)


def test_stage_aliases_and_labels_become_canonical() -> None:
    tables = frames()
    tables["stage_history"]["stage"] = ["Lead", "Proposal/Price Quote", " PROSPECTING ", "Engaging"]
    clean, report = validate_history(history(tables))
    assert clean.stage_history["stage"].tolist() == ["prospecting", "proposal", "prospecting", "qualification"]
    assert report.stages_seen == {"prospecting": 2, "qualification": 1, "proposal": 1}


def test_a_custom_taxonomy_maps_a_crms_own_names() -> None:
    raw = default_taxonomy().to_dict()
    raw["stages"][4]["aliases"].append("Verbal Commit")
    tax = StageTaxonomy.from_dict(raw)
    tables = frames()
    tables["stage_history"].loc[1, "stage"] = "Verbal Commit"
    clean, _ = validate_history(history(tables), tax)
    assert clean.stage_history.loc[1, "stage"] == "proposal"


def test_an_outcome_used_as_a_stage_says_where_it_belongs() -> None:
    tables = frames()
    tables["stage_history"].loc[1, "stage"] = "Closed Won"
    err = fails(tables)
    assert (err.table, err.column) == ("stage_history", "stage")
    assert "deals.outcome" in str(err)


def test_stage_truth_names_are_checked_too() -> None:
    tables = frames()
    tables["stage_truth"] = pd.DataFrame({"deal_id": ["D1", "D1"], "as_of": ["2024-01-02", "2024-01-09"],
                                          "stage": ["prospecting", "pitching"]})
    err = fails(tables)
    assert (err.table, err.column) == ("stage_truth", "stage")


def test_activity_types_roles_and_directions() -> None:
    tables = frames()
    tables["activities"]["type"] = ["Email", "Event", "task"]  # aliases from the taxonomy
    tables["activities"]["direction"] = ["OUTBOUND", "inbound", None]
    clean, _ = validate_history(history(tables))
    assert clean.activities["type"].tolist() == ["email", "meeting", "note"]
    assert clean.activities["direction"].tolist() == ["outbound", "inbound", None]

    bad = frames()
    bad["activities"].loc[2, "type"] = "carrier pigeon"
    err = fails(bad)
    assert (err.table, err.column, err.ids) == ("activities", "type", ["X3"])
    bad = frames()
    bad["activities"].loc[0, "direction"] = "sideways"
    assert fails(bad).column == "direction"
    bad = frames()
    bad["activities"].loc[0, "contact_role"] = "ceo"
    assert fails(bad).column == "contact_role"


# ---------------------------------------------------------------- outcome iff closed


def test_closed_without_outcome() -> None:
    tables = frames()
    tables["deals"].loc[1, "outcome"] = None
    err = fails(tables)
    assert (err.table, err.column, err.ids) == ("deals", "outcome", ["D2"])


def test_outcome_without_close() -> None:
    tables = frames()
    tables["deals"].loc[2, "outcome"] = "won"
    err = fails(tables)
    assert (err.table, err.column, err.ids) == ("deals", "closed_at", ["D3"])


def test_outcome_spelling() -> None:
    tables = frames()
    tables["deals"]["outcome"] = ["Closed Won", "LOST", None]
    clean, _ = validate_history(history(tables))
    assert clean.deals["outcome"].tolist() == ["won", "lost", None]
    tables["deals"].loc[0, "outcome"] = "maybe"
    err = fails(tables)
    assert (err.column, err.ids) == ("outcome", ["D1"])


@pytest.mark.parametrize(("table", "column"), [("deals", "amount"), ("accounts", "annual_revenue")])
def test_amount_beyond_the_largest_is_refused_as_the_api_refuses_it(table: str, column: str) -> None:
    """1e308 is finite, so it passed; summed in a forecast it became inf. The bound is the API's own."""
    tables = frames()
    tables[table].loc[1, column] = 1e308
    tables[table].loc[0, column] = rules.HIGHEST_AMOUNT  # the bound itself is accepted
    err = fails(tables)
    assert (err.table, err.column) == (table, column)
    assert len(err.ids) == 1 and err.ids[0] == str(tables[table].iloc[1, 0])
    assert "above 1,000,000,000,000,000" in str(err) and "Fix:" in str(err)


def test_closed_before_created_and_negative_amounts() -> None:
    tables = frames()
    tables["deals"].loc[0, "closed_at"] = "2023-12-01"
    tables["deals"].loc[1, "amount"] = -5.0
    err = fails(tables)
    # both problems in one message, so a user fixes them in one pass
    assert len(err.problems) == 2
    assert "closed before they were created" in str(err) and "negative amount" in str(err)
    assert {(p.column, tuple(p.ids)) for p in err.problems} == {("closed_at", ("D1",)), ("amount", ("D2",))}


# ---------------------------------------------------------------- time: cut and deal life


def test_nothing_after_the_data_cut() -> None:
    with pytest.raises(DataValidationError) as e:
        validate_history(history(cut_at="2024-02-10"))
    err = e.value
    assert {p.table + "." + p.column for p in err.problems} >= {"deals.closed_at", "activities.occurred_at"}
    assert "data cut" in str(err)


def test_activity_after_close_is_dropped_and_counted_by_default() -> None:
    tables = frames()
    tables["activities"].loc[1, "occurred_at"] = "2024-03-05"  # D1 closed 03-01
    tables["stage_history"].loc[2, "changed_at"] = "2024-01-04"  # D2 created 01-05
    clean, report = validate_history(history(tables))
    assert report.dropped == {"activities: occurred_at after the deal closed": 1,
                              "stage_history: changed_at before the deal was created": 1}
    assert any("X2" in w for w in report.warnings)
    assert "X2" not in set(clean.activities["activity_id"])
    assert len(clean.stage_history) == 3
    # nothing silently dropped: kept + dropped = read
    assert len(clean.activities) + 1 == report.rows["activities"]


def test_events_at_creation_or_close_are_inside_the_life() -> None:
    tables = frames()
    tables["activities"].loc[1, "occurred_at"] = "2024-03-01"  # exactly at D1's close
    _, report = validate_history(history(tables))
    assert report.dropped == {}


def test_activity_after_close_fails_when_asked() -> None:
    tables = frames()
    tables["activities"].loc[1, "occurred_at"] = "2024-03-05"
    err = fails(tables, on_out_of_life="fail")
    assert (err.table, err.column, err.ids) == ("activities", "occurred_at", ["X2"])
    assert "after the deal closed" in str(err)


def test_every_problem_is_reported_in_one_run() -> None:
    tables = frames()
    tables["deals"].loc[2, "deal_id"] = "D1"
    tables["stage_history"].loc[0, "stage"] = "nonsense"
    tables["activities"].loc[0, "type"] = "fax"
    with pytest.raises(DataValidationError) as e:
        validate_history(history(tables))
    assert len(e.value.problems) >= 3
    text = str(e.value)
    assert "deal_id" in text and "nonsense" in text and "fax" in text


def test_validation_does_not_change_its_input() -> None:
    h = history()
    before = h.stage_history.copy()
    tables = frames()
    tables["stage_history"]["stage"] = ["Lead", "proposal", "prospecting", "qualification"]
    h2 = history(tables)
    validate_history(h2)
    assert h2.stage_history["stage"].iloc[0] == "Lead"
    pd.testing.assert_frame_equal(h.stage_history, before)


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="on_out_of_life"):
        validate_history(history(), on_out_of_life="ignore")  # type: ignore[arg-type]


# ---------------------------------------------------------------- one rule path for one deal and for many

_TYPES = ["email", "Email ", "CALL", "meeting", "Event", "task", "demo"]
_DIRECTIONS = [None, "inbound", " OUTBOUND", "outbound"]
_DAYS = ["2024-01-01", "2024-01-03", "2024-01-03", "2024-02-01", "2024-03-02", "2024-03-20"]  # ties on purpose


@st.composite
def _histories(draw: st.DrawFn) -> dict[str, pd.DataFrame]:
    """Small histories with ties in time, spelling variants and events outside a deal's life."""
    n = draw(st.integers(1, 4))
    closed = [draw(st.sampled_from([None, "2024-03-01"])) for _ in range(n)]
    deals = pd.DataFrame({
        "deal_id": [f"D{i}" for i in range(n)], "account_id": [f"A{i % 2}" for i in range(n)],
        "owner_id": ["o1"] * n, "created_at": ["2024-01-02"] * n, "closed_at": closed,
        "outcome": [None if c is None else draw(st.sampled_from(["won", "Closed Lost"])) for c in closed],
    })
    rows = draw(st.lists(st.tuples(st.integers(0, n - 1), st.sampled_from(_DAYS), st.sampled_from(_TYPES),
                                   st.sampled_from(_DIRECTIONS)), min_size=1, max_size=25))
    activities = pd.DataFrame({
        "activity_id": [f"X{i}" for i in range(len(rows))], "deal_id": [f"D{r[0]}" for r in rows],
        "occurred_at": [r[1] for r in rows], "type": [r[2] for r in rows], "direction": [r[3] for r in rows],
    })
    stages = [(i, day, stage) for i in range(n)
              for day, stage in zip(_DAYS[1:3], draw(st.permutations(["Lead", "qualification"])), strict=True)]
    return {
        "accounts": pd.DataFrame({"account_id": ["A0", "A1"], "industry": ["software", "retail"]}),
        "deals": deals,
        "stage_history": pd.DataFrame({"deal_id": [f"D{i}" for i, _, _ in stages], "stage": [s for _, _, s in stages],
                                       "changed_at": [d for _, d, _ in stages]}),
        "activities": activities,
    }


def _one_deal(tables: dict[str, pd.DataFrame], deal_id: str) -> dict[str, pd.DataFrame]:
    return {name: (frame[frame["deal_id"] == deal_id].reset_index(drop=True) if "deal_id" in frame else frame)
            for name, frame in tables.items()}


@settings(max_examples=40, deadline=None)
@given(_histories())
def test_one_deal_and_many_agree_and_follow_pandas_order(tables: dict[str, pd.DataFrame]) -> None:
    typed = history(tables)
    clean, report = validate_history(typed)
    acts = clean.activities
    # the clean order is pandas' stable sort of the kept rows by deal and time (ties stay in file order)
    kept = typed.activities[typed.activities["activity_id"].isin(acts["activity_id"])]
    ordered = kept.sort_values(["deal_id", "occurred_at"], kind="stable")["activity_id"].tolist()
    assert acts["activity_id"].tolist() == ordered
    assert acts.index.equals(pd.RangeIndex(len(acts)))
    assert list(report.activity_types_seen.items()) == list(acts["type"].value_counts().items())
    assert sum(report.dropped.values()) == len(typed.activities) + len(typed.stage_history) - len(acts) \
        - len(clean.stage_history)
    # validating each deal on its own gives exactly its rows of the batch, and the same counts
    dropped = 0
    for deal_id in clean.deals["deal_id"]:
        alone, alone_report = validate_history(history(_one_deal(tables, deal_id)))
        dropped += sum(alone_report.dropped.values())
        for name in ("deals", "stage_history", "activities"):
            batch = clean.table(name)
            mine = batch[batch["deal_id"] == deal_id].reset_index(drop=True)
            pd.testing.assert_frame_equal(alone.table(name), mine, check_exact=True, obj=f"{deal_id} {name}")
    assert dropped == sum(report.dropped.values())


def test_a_problem_is_reported_alike_for_one_deal_and_for_many() -> None:
    tables = frames()
    tables["activities"].loc[2, "type"] = "fax"  # X3, deal D3
    alone = fails(_one_deal(tables, "D3"))
    many = fails(tables)
    assert (alone.table, alone.column, alone.ids, alone.fix) == (many.table, many.column, many.ids, many.fix)
    assert str(alone) == str(many)


def test_each_taxonomy_object_gets_its_own_lookups() -> None:
    """The spelling lookups are built once per taxonomy object, never reused for another one."""
    tables = frames()
    tables["stage_history"].loc[1, "stage"] = "Verbal Commit"
    for target in (4, 5, 4):  # proposal, negotiation, proposal: each a fresh object
        raw = default_taxonomy().to_dict()
        raw["stages"][target]["aliases"].append("Verbal Commit")
        clean, _ = validate_history(history(tables), StageTaxonomy.from_dict(raw))
        assert clean.stage_history.loc[1, "stage"] == raw["stages"][target]["name"]
    fails(tables)  # the default taxonomy does not know the alias


def test_direction_and_role_aliases_become_canonical() -> None:
    h = simulate(60, seed=2).history
    acts = h.activities
    acts.loc[acts.index[0], "direction"] = "OUT"
    acts.loc[acts.index[1], "direction"] = "received"
    acts.loc[acts.index[2], "contact_role"] = "Economic Buyer"
    clean, _ = validate_history(h)
    first = clean.activities.set_index("activity_id").loc[list(acts["activity_id"].iloc[:3])]
    assert list(first["direction"].iloc[:2]) == ["outbound", "inbound"]
    assert first["contact_role"].iloc[2] == "decision_maker"


def test_errors_carry_their_facts_as_fields_not_only_as_text() -> None:
    t = frames()
    t["activities"].loc[[0, 2], "type"] = "carrier pigeon"  # X1 and X3
    err = fails(t)
    assert (err.table, err.column, err.ids, err.rows) == ("activities", "type", ["X1", "X3"], [0, 2])
    assert err.fix and err.fix in str(err) and err.fix not in err.summary and "X1" in err.summary
    t = frames()
    t["deals"]["amount"] = ["1000", "12 EUR", None]  # a typing error, raised while loading
    with pytest.raises(DataValidationError) as e:
        history(t)
    assert (e.value.table, e.value.column, e.value.ids, e.value.rows) == ("deals", "amount", ["D2"], [1])


def test_reports_of_parts_merge_into_the_report_of_the_whole() -> None:
    """A history validated deal-group by deal-group (a partitioned history) reports as if validated whole."""
    from dealscore.data.simulate import simulate
    from dealscore.data.validate import LoadReport

    h = simulate(300, seed=2).history
    acts = h.activities.copy()
    created = acts["deal_id"].map(h.deals.set_index("deal_id")["created_at"])
    early = acts.index[::40]  # a few touchpoints dated before their deal existed, in every part
    acts.loc[early, "occurred_at"] = created[early] - pd.Timedelta(days=3)
    acts.loc[early, "recorded_at"] = pd.NaT
    deals = h.deals.copy()
    deals.loc[deals.index[::50], "expected_close_date"] = deals["created_at"].dt.normalize() - pd.Timedelta(days=1)
    h = h.replace(activities=acts, deals=deals)
    whole_clean, whole = validate_history(h)
    ids = h.deals["deal_id"].to_numpy()
    parts = [validate_history(h.for_deals(ids[i::3]).replace(cut_at=whole_clean.data_cut))[1] for i in range(3)]
    merged = LoadReport.merge(parts)
    assert whole.dropped and len(parts[0].warnings) == 2
    assert any(w.startswith("6 deal(s) with an expected_close_date before") for w in merged.warnings)
    expected = whole.to_dict()
    got = merged.to_dict()
    got["rows"]["accounts"] = expected["rows"]["accounts"]  # every part holds every account: counted by the caller
    # drop warnings name the first ids found: the whole history's file order differs from the parts' order
    assert [w.split(" (ids:")[0] for w in got.pop("warnings")] == [w.split(" (ids:")[0]
                                                                   for w in expected.pop("warnings")]
    assert got == expected


def test_a_repeated_id_keeps_its_rows_beside_another_ids_many_repeats() -> None:
    """Rows name where each offender is (the importer's lines, the API's JSON paths): each named id gets its
    first row, then each its second, up to five; X1's six copies once took every slot from X3."""
    tables = frames()
    acts = tables["activities"]
    tables["activities"] = pd.DataFrame([acts.iloc[i] for i in (0, 0, 0, 0, 0, 0, 1, 2, 1, 2)]).reset_index(drop=True)
    tables["activities"]["activity_id"] = ["X1"] * 6 + ["X2", "X3", "X4", "X3"]
    with pytest.raises(DataValidationError, match="repeat an id") as e:
        validate_history(from_frames(tables))
    problem = next(p for p in (e.value.problems or [e.value]) if p.column == "activity_id")
    assert problem.ids == ["X1", "X3"] and problem.rows == [0, 1, 2, 7, 9]


def test_an_expected_close_before_the_deal_was_created_is_kept_with_a_warning() -> None:
    """A close date from another deal (or a typo) makes the deal read as overdue from its first day: kept, as
    the CRM holds it, and named; the same day is no warning."""
    t = frames()
    t["deals"]["expected_close_date"] = ["2023-12-31", "2024-01-05", None]
    clean, report = validate_history(history(t, cut_at="2024-06-01"))
    assert len(clean.deals) == 3
    [warning] = [w for w in report.warnings if "expected_close_date" in w]
    assert warning.startswith("1 deal(s) with an expected_close_date before the day they were created")
    assert warning.endswith("(ids: D1)")


def test_a_currency_that_is_not_a_current_iso_code_is_kept_with_a_warning() -> None:
    """The API refuses ZZZ; an export is taken as the CRM holds it (HRK was Croatia's until 2023), but the
    load report says which codes will each make a total of their own."""
    t = frames()
    t["deals"]["currency"] = ["HRK", "eur", "EUE"]
    clean, report = validate_history(history(t, cut_at="2024-06-01"))
    assert clean.deals["currency"].tolist() == ["HRK", "eur", "EUE"]
    [warning] = [w for w in report.warnings if "ISO 4217" in w]
    assert warning.startswith("2 deal(s) with a currency that is not a current ISO 4217 code ['EUE', 'HRK']")
    assert warning.endswith("(ids: D1, D3)")
    t["deals"]["currency"] = ["USD", None, "GBP"]
    assert not [w for w in validate_history(history(t, cut_at="2024-06-01"))[1].warnings if "ISO 4217" in w]
