"""Snapshot schedules: inside each deal's open life, and never dependent on the future."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dealscore.errors import DataValidationError
from dealscore.features import make_snapshots, scoring_snapshots

from .conftest import day, hand_history, random_history


def test_weekly_and_stage_change_snapshots_stop_before_close_and_at_the_cut() -> None:
    h = hand_history(
        deals=[{"deal_id": "C", "created_at": 0, "closed_at": 21, "outcome": "won"},
               {"deal_id": "O", "created_at": 80}],
        stages=[{"deal_id": "C", "stage": "discovery", "changed_at": 3, "recorded_at": 4},
                {"deal_id": "C", "stage": "proposal", "changed_at": 14},  # same moment as a weekly one
                {"deal_id": "C", "stage": "negotiation", "changed_at": 20, "recorded_at": 21}],  # seen at close
        cut=94,
    )
    s = make_snapshots(h)
    got = {d: [(t - day(0)) / pd.Timedelta(days=1) for t in g["as_of"]] for d, g in s.groupby("deal_id")}
    assert got["C"] == [0, 4, 7, 14]
    assert got["O"] == [80, 87, 94]
    assert s["deal_id"].dtype == object and s["as_of"].dtype == "datetime64[ns]"
    assert list(make_snapshots(h, every_days=10, at_stage_changes=False).query("deal_id == 'C'")["as_of"]) == [
        day(0), day(10), day(20)]


def test_every_snapshot_lies_in_its_deals_open_life() -> None:
    h = random_history(11, n_deals=30)
    s = make_snapshots(h).merge(h.deals, on="deal_id")
    assert (s["as_of"] >= s["created_at"]).all()
    closed = s["closed_at"].notna()
    assert (s.loc[closed, "as_of"] < s.loc[closed, "closed_at"]).all()
    assert (s.loc[~closed, "as_of"] <= h.data_cut).all()
    assert not make_snapshots(h).duplicated().any()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), frac=st.floats(0.05, 0.95))
def test_schedule_up_to_t_does_not_depend_on_what_happens_after_t(seed: int, frac: float) -> None:
    """Snapshots at or before t are the same whether or not the history continues after t."""
    h = random_history(seed, n_deals=10, late_share=0.5)
    first, cut = h.deals["created_at"].min(), h.data_cut
    t = first + (cut - first) * frac
    full = make_snapshots(h)
    known = make_snapshots(h.as_known_at(t))
    pd.testing.assert_frame_equal(full[full["as_of"] <= t].reset_index(drop=True), known.reset_index(drop=True))


def test_scoring_snapshots_are_the_deals_open_at_as_of() -> None:
    h = hand_history(deals=[{"deal_id": "A", "created_at": 0, "closed_at": 10, "outcome": "lost"},
                            {"deal_id": "B", "created_at": 5}, {"deal_id": "C", "created_at": 30}], cut=40)
    assert scoring_snapshots(h)["deal_id"].tolist() == ["B", "C"]
    assert (scoring_snapshots(h)["as_of"] == day(40)).all()
    assert scoring_snapshots(h, day(10))["deal_id"].tolist() == ["B"]  # A closed at 10: not open at 10
    assert scoring_snapshots(h, day(9))["deal_id"].tolist() == ["A", "B"]
    aware = scoring_snapshots(h, pd.Timestamp("2024-01-11T01:00:00+01:00"))
    assert aware["as_of"].iloc[0] == day(10)


def test_bad_interval_is_refused() -> None:
    with pytest.raises(DataValidationError, match="every_days"):
        make_snapshots(random_history(0), every_days=0)


@pytest.mark.parametrize("every_days", [float("nan"), float("inf"), -float("inf"), -1.0, 1e-18])
def test_interval_that_is_not_a_finite_positive_number_is_refused(every_days: float) -> None:
    """NaN slipped past ``<= 0`` and infinity overflowed the step: both ended in tracebacks."""
    with pytest.raises(DataValidationError, match="finite number of days above zero") as info:
        make_snapshots(random_history(0), every_days=every_days)
    assert "Fix:" in str(info.value)
