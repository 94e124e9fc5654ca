"""A request's tables as Python values → the validated history: exactly what the general path gives."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dealscore.data.history import from_frames
from dealscore.data.request import _direct, frames_from_columns, history_from_columns, typed_columns
from dealscore.data.validate import validate_history
from dealscore.errors import DataValidationError
from dealscore.taxonomy import default_taxonomy

TAX = default_taxonomy()
BASE = datetime(2024, 1, 1, 9, 0)
TABLES = ("accounts", "deals", "stage_history", "activities")


def clean_tables() -> dict[str, dict[str, list[Any]]]:
    """One open deal as the service lays it out: every value already clean."""
    t = [BASE + timedelta(days=d, hours=h) for d, h in ((2, 1), (1, 5), (9, 0), (9, 0))]
    return {
        "accounts": {"account_id": ["a1"], "industry": ["software"], "employees": [120], "annual_revenue": [None],
                     "region": ["EMEA"], "created_at": [None]},
        "deals": {"deal_id": ["d1"], "account_id": ["a1"], "owner_id": ["r1"], "created_at": [BASE],
                  "amount": [1200.0], "product": [None], "source": ["inbound"],
                  "expected_close_date": [date(2024, 6, 30)], "closed_at": [None], "outcome": [None],
                  "team": ["east"]},
        "stage_history": {"deal_id": ["d1", "d1"], "stage": ["Qualification", "discovery"],
                          "changed_at": [BASE + timedelta(days=3), BASE], "recorded_at": [None, None],
                          "amount": [None, 1000], "expected_close_date": [None, date(2024, 5, 1)]},
        "activities": {"activity_id": ["x1", "x2", None, "x4"], "deal_id": ["d1"] * 4, "occurred_at": t,
                       "type": ["email", "Meeting", "call", "demo"],
                       "direction": ["outbound", "Inbound", None, "outbound"],
                       "contact_id": ["c1", None, "c2", "c1"],
                       "contact_role": ["champion", "decision_maker", None, "User"],
                       "recorded_at": [None, t[1] + timedelta(hours=2), None, None]},
    }


def general(tables: dict[str, dict[str, list[Any]]], cut_at: Any) -> Any:
    history = from_frames(frames_from_columns(tables), cut_at=cut_at)
    return validate_history(history, TAX, on_out_of_life="fail")[0]


def assert_same(got: Any, want: Any) -> None:
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(got, name), getattr(want, name), obj=name)
        assert getattr(got, name).columns.dtype == getattr(want, name).columns.dtype
    assert got.stage_truth is None and want.stage_truth is None
    assert got.cut_at == want.cut_at and got.meta == want.meta


def test_clean_values_take_the_direct_path_and_match_the_general_one() -> None:
    tables = clean_tables()
    cut = pd.Timestamp("2024-02-01")
    typed = {name: typed_columns(name, cols) for name, cols in tables.items()}
    direct = _direct(typed, TAX, cut)
    assert direct is not None, "a clean request must not pay for the general path"
    assert_same(direct, general(tables, cut))
    assert list(direct.activities["type"]) == ["meeting", "email", "call", "demo"]  # canonical, in time order
    assert list(direct.stage_history["stage"]) == ["discovery", "qualification"]


def test_a_batch_sized_request_sorts_like_the_general_path() -> None:
    """Thousands of touchpoints (a batch) take the NumPy sort: same order as the general path, ties kept."""
    tables = clean_tables()
    ids = [f"d{k}" for k in (3, 1, 10, 2)]  # "d10" sorts before "d2" as text
    tables["accounts"]["account_id"] = ["a1"]
    deals = tables["deals"]
    tables["deals"] = {c: v * len(ids) for c, v in deals.items()}
    tables["deals"]["deal_id"] = ids
    acts = tables["activities"]
    n = 1200  # above the size at which the direct path sorts in NumPy
    tables["activities"] = {
        "activity_id": [f"x{i}" for i in range(n)], "deal_id": [ids[(i * 7) % len(ids)] for i in range(n)],
        "occurred_at": [BASE + timedelta(hours=(i * 37) % 50) for i in range(n)],  # many ties
        **{c: [acts[c][i % 4] for i in range(n)] for c in ("type", "direction", "contact_id", "contact_role")},
        "recorded_at": [None] * n,
    }
    cut = pd.Timestamp("2024-02-01")
    typed = {name: typed_columns(name, cols) for name, cols in tables.items()}
    direct = _direct(typed, TAX, cut)
    assert direct is not None
    assert_same(direct, general(tables, cut))
    got = direct.activities
    assert list(got["deal_id"].drop_duplicates()) == ["d1", "d10", "d2", "d3"]
    assert got.groupby("deal_id")["occurred_at"].apply(lambda t: t.is_monotonic_increasing).all()


def test_errors_are_the_general_paths_own() -> None:
    tables = clean_tables()
    tables["activities"]["type"][2] = "zoom"
    with pytest.raises(DataValidationError) as got:
        history_from_columns(tables, taxonomy=TAX, cut_at=pd.Timestamp("2024-02-01"))
    with pytest.raises(DataValidationError) as want:
        general(tables, pd.Timestamp("2024-02-01"))
    assert str(got.value) == str(want.value) and got.value.ids == want.value.ids


def test_the_callers_columns_are_left_alone() -> None:
    tables = clean_tables()
    tables["deals"]["expected_close_date"] = [datetime(2024, 6, 30, 15, 0)]  # a time in a date column: floored
    before = {name: {c: list(v) for c, v in cols.items()} for name, cols in tables.items()}
    history_from_columns(tables, taxonomy=TAX, cut_at=pd.Timestamp("2024-02-01"))
    assert tables == before


# --------------------------------------------------------------------------- random histories, valid or not


def mostly(clean: st.SearchStrategy[Any], messy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually a clean value, now and then a messy one: so that whole histories are valid often enough.

    (A value inside the range picks messy: Hypothesis favours the ends of a range.)
    """
    return st.integers(0, 30).flatmap(lambda k: messy if k == 17 else clean)


def text(*clean: str | None) -> st.SearchStrategy[Any]:
    # 250 characters: too long for an id or a name, not for free text (the caps differ by column)
    return mostly(st.sampled_from(clean), st.sampled_from([" padded", "tail ", "", "\u00a0nbsp", "zw\u200b", 7,
                                                           "n\x00ul", "L" * 250, "T" * 1001]))


def after_creation(nullable: bool) -> st.SearchStrategy[Any]:
    inside = st.integers(0, 50 * 86400).map(lambda s: BASE + timedelta(seconds=s, microseconds=s % 3))
    messy = st.sampled_from([datetime(1850, 1, 1), datetime(2300, 1, 1), BASE - timedelta(days=1),
                             BASE + timedelta(days=200), None])
    return mostly(st.one_of(inside, st.none()) if nullable else inside, messy)


STAGES = mostly(st.sampled_from(["prospecting", "Discovery", "QUALIFICATION", "negotiation", "Proposal"]),
                st.sampled_from([" proposal", "won", "Closed Won", "nonsense", "", None]))
TYPES = mostly(st.sampled_from(["email", "Meeting", "call", "DEMO", "note"]),
               st.sampled_from(["zoom", " call", "", None]))
DIRECTIONS = mostly(st.sampled_from([None, "inbound", "OUTBOUND"]), st.sampled_from(["sideways", " inbound", ""]))
ROLES = mostly(st.sampled_from([None, "champion", "Decision_Maker", "other"]), st.sampled_from(["CEO", "user ", ""]))
AMOUNTS = mostly(st.one_of(st.none(), st.floats(0, 1e6), st.integers(0, 10**6)),
                 st.one_of(st.floats(-10, -0.5), st.sampled_from([float("inf"), float("-inf")])))
DAYS = mostly(st.one_of(st.none(), st.dates(date(2024, 1, 1), date(2025, 1, 1))),
              st.sampled_from([datetime(2024, 5, 1, 13, 30), datetime(2301, 1, 1)]))


@st.composite
def request_tables(draw: st.DrawFn) -> dict[str, dict[str, list[Any]]]:
    """One to three deals with their accounts, stage changes and touchpoints, mostly but not always valid."""
    n_deals = draw(st.integers(1, 3))
    deal_ids = [f"d{i}" for i in range(n_deals)]
    if draw(mostly(st.just(False), st.just(True))):
        deal_ids[-1] = deal_ids[0]  # a duplicate deal id
    accounts = ["a1", "a2"][:draw(st.integers(1, 2))]
    deals: dict[str, list[Any]] = {k: [] for k in clean_tables()["deals"]}
    for d in deal_ids:
        closed = draw(mostly(st.sampled_from([None, None, BASE + timedelta(days=60)]), st.just(BASE)))
        outcome = draw(st.sampled_from(["won", "Lost"])) if closed is not None else None
        row = {"deal_id": d, "account_id": draw(mostly(st.sampled_from(accounts), st.just("a9"))),
               "owner_id": draw(text("r1", "r2")), "created_at": draw(mostly(st.just(BASE), st.none())),
               "amount": draw(AMOUNTS), "product": draw(text("Starter", "Growth", None)),
               "source": draw(text("inbound", None)), "expected_close_date": draw(DAYS), "closed_at": closed,
               "outcome": draw(mostly(st.just(outcome), st.sampled_from([None, "won", "maybe"]))),
               "team": draw(text("east", "LATAM Mid-Market", None))}
        for k, v in row.items():
            deals[k].append(v)
    acc = {"account_id": accounts, "industry": [draw(text("software", "retail")) for _ in accounts],
           "employees": [draw(st.one_of(st.none(), st.integers(0, 5000))) for _ in accounts],
           "annual_revenue": [draw(AMOUNTS) for _ in accounts], "region": [draw(text("EMEA", None)) for _ in accounts],
           "created_at": [draw(st.one_of(st.none(), st.just(BASE - timedelta(days=400)))) for _ in accounts]}
    event_deal = mostly(st.sampled_from(deal_ids), st.just("dx"))
    n = draw(st.integers(0, 5))
    stages = {"deal_id": [draw(event_deal) for _ in range(n)], "stage": [draw(STAGES) for _ in range(n)],
              "changed_at": [draw(after_creation(False)) for _ in range(n)],
              "recorded_at": [draw(after_creation(True)) for _ in range(n)],
              "amount": [draw(AMOUNTS) for _ in range(n)], "expected_close_date": [draw(DAYS) for _ in range(n)]}
    n = draw(st.integers(0, 8))
    acts = {"activity_id": [draw(mostly(st.sampled_from([f"x{i}", None]), st.just("x0"))) for i in range(n)],
            "deal_id": [draw(event_deal) for _ in range(n)],
            "occurred_at": [draw(after_creation(False)) for _ in range(n)],
            "type": [draw(TYPES) for _ in range(n)], "direction": [draw(DIRECTIONS) for _ in range(n)],
            "contact_id": [draw(text("c1", "c2", None)) for _ in range(n)],
            "contact_role": [draw(ROLES) for _ in range(n)],
            "recorded_at": [draw(after_creation(True)) for _ in range(n)]}
    return {"accounts": acc, "deals": deals, "stage_history": stages, "activities": acts}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables=request_tables(), cut=st.sampled_from([None, pd.Timestamp("2024-02-10"), pd.Timestamp("2025-01-01")]))
def test_any_request_gives_exactly_the_general_paths_history_or_error(tables: dict[str, Any], cut: Any) -> None:
    try:
        want = general(tables, cut)
    except DataValidationError as exc:
        typed = {name: typed_columns(name, cols) for name, cols in tables.items()}
        assert _direct(typed, TAX, pd.Timestamp(cut) if cut is not None else None) is None, str(exc)
        with pytest.raises(DataValidationError) as got:
            history_from_columns(tables, taxonomy=TAX, cut_at=cut)
        assert str(got.value) == str(exc) and got.value.ids == exc.ids and got.value.column == exc.column
        return
    assert_same(history_from_columns(tables, taxonomy=TAX, cut_at=cut), want)
