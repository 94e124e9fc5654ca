"""The contract's rule functions: each one's edges, and its forms for one value and for a column agreeing."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dealscore.data import rules


def objects(values: list[object]) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


EDGES = [datetime(1899, 12, 31, 23, 59, 59), datetime(1900, 1, 1), datetime(2199, 12, 31, 23, 59, 59),
         datetime(2200, 1, 1), datetime(2024, 3, 1, 12, 0)]


@pytest.mark.parametrize("unit", ["s", "us", "ns"])
def test_one_value_and_a_column_share_the_date_window(unit: str) -> None:
    column = rules.outside_date_window(np.array(EDGES, dtype=f"datetime64[{unit}]"))
    assert column.tolist() == [rules.date_outside_window(t) for t in EDGES] == [True, False, False, True, False]
    assert [rules.date_outside_window(t.date()) for t in EDGES] == [True, False, False, True, False]
    assert not rules.outside_date_window(np.array(["NaT"], dtype="datetime64[ns]")).any()


def test_a_placeholder_date_in_seconds_is_refused_without_overflowing() -> None:
    assert rules.outside_date_window(np.array(["9999-12-31", "0001-01-01"], dtype="datetime64[s]")).all()
    assert rules.date_outside_window(date(9999, 12, 31)) and rules.date_outside_window(date(1, 1, 1))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "d", None, np.nan]), max_size=30), st.booleans())
def test_duplicates_are_found_alike_in_a_request_and_in_a_big_table(ids: list[object], big: bool) -> None:
    """A request's few ids take a set, a table's many take pandas: both mark what ``Series.duplicated`` marks."""
    values = objects(ids * (20_000 // max(len(ids), 1) + 1) if big and ids else ids)  # past the set path
    s = pd.Series(values, dtype=object)
    want = (s.duplicated(keep=False) & s.notna()).to_numpy()
    assert rules.duplicated(values).tolist() == want.tolist()


def test_a_missing_key_is_not_an_unknown_one() -> None:
    values = objects(["a1", None, "zz", "a2"])
    assert rules.unknown_key(np.array([0, -1, -1, 1]), values).tolist() == [False, False, True, False]
    assert not rules.unknown_key(np.array([0, 1]), objects(["a1", "a2"])).any()


def test_a_deal_closed_at_the_scoring_time_is_not_scored() -> None:
    t = datetime(2024, 5, 1, 12, 0)
    assert rules.closed_by(t, t) and rules.closed_by(datetime(2024, 4, 1), t)
    assert not rules.closed_by(datetime(2024, 5, 1, 12, 1), t)
    closed = np.array(["2024-05-01T12:00", "NaT", "2024-06-01"], dtype="datetime64[ns]")
    assert rules.closed_by(closed, np.datetime64(t, "ns")).tolist() == [True, False, False]


def test_outcome_and_close_time_go_together() -> None:
    closed = np.array(["2024-05-01", "NaT", "2024-05-01", "NaT"], dtype="datetime64[ns]")
    outcome = objects(["won", "lost", None, None])
    assert rules.closed_without_outcome(closed, outcome).tolist() == [False, False, True, False]
    assert rules.outcome_while_open(closed, outcome).tolist() == [False, True, False, False]


def test_amounts_and_text_edges() -> None:
    assert rules.negative(np.array([rules.LOWEST_AMOUNT, -0.01, np.nan, 5.0])).tolist() == [False, True, False, False]
    assert rules.infinite(np.array([np.inf, -np.inf, np.nan, 1e308])).tolist() == [True, True, False, False]
    assert rules.too_long(np.array([3, 4]), 3).tolist() == [False, True] and bool(rules.too_long(4, 3))
    assert rules.holds_nul("a\x00b") and not rules.holds_nul("a b")


def test_events_on_the_edges_of_a_deals_life_are_inside_it() -> None:
    created, closed = np.datetime64("2024-01-01", "ns"), np.datetime64("2024-02-01", "ns")
    when = np.array(["2023-12-31", "2024-01-01", "2024-02-01", "2024-02-02", "NaT"], dtype="datetime64[ns]")
    before, after = rules.outside_life(when, np.full(5, created), np.full(5, closed))
    assert before.tolist() == [True, False, False, False, False]
    assert after.tolist() == [False, False, False, True, False]


@pytest.mark.parametrize(("text", "words"), [
    ("\u200b", "no visible character"), (" \u200b\u2060 ", "no visible character"), ("\u3164", "no visible character"),
    ("\u2800\u2800", "no visible character"), ("Bob\u202etxt.exe", "U+202E"), ("\u202aA\u202c", "U+202A, U+202C"),
    ("   ", "no visible character"), ("\t\x01", "no visible character"),  # ASCII that the fast path leaves
])
def test_a_name_no_one_can_read_is_unreadable(text: str, words: str) -> None:
    problem = rules.unreadable(text)
    assert problem is not None and words in problem


@pytest.mark.parametrize("text", ["EMEA", "Zoë", "محمد\u200f", "\u2067שלום\u2069", "R0032", "東京 チーム", "-"])
def test_names_people_write_are_readable(text: str) -> None:
    """Right-to-left names keep their marks and isolates: only the deprecated overrides are refused."""
    assert rules.unreadable(text) is None


def test_a_close_day_before_the_created_day_is_marked_and_the_same_day_is_not() -> None:
    created = np.array(["2024-03-03T17:00", "2024-03-03T17:00", "NaT", "2024-03-03"], dtype="datetime64[ns]")
    expected = np.array(["2024-03-02", "2024-03-03", "2024-01-01", "NaT"], dtype="datetime64[ns]")
    assert rules.close_date_before_created(created, expected).tolist() == [True, False, False, False]
