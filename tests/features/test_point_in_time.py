"""DESIGN §5: a feature for (deal, as_of) sees only what was known at as_of.

The property test is the guard the design names: features computed on the full
history equal features computed on ``history.as_known_at(as_of)``, for random
histories (late-logged and early-logged touchpoints, back-dated stage changes,
nanosecond times), random deals and random times.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dealscore.features import FeatureContext, FeatureSpec, build_features

from .conftest import day, hand_history, random_history, snapshot

SPEC = FeatureSpec.default()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 100_000),
    fractions=st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=1, max_size=3),
    pick=st.integers(0, 10**6),
    late_share=st.sampled_from([0.0, 0.3, 0.9]),
    jitter=st.booleans(),
)
def test_features_on_full_history_equal_features_on_history_known_at_as_of(
    seed: int, fractions: list[float], pick: int, late_share: float, jitter: bool
) -> None:
    h = random_history(seed, n_deals=8, late_share=late_share, jitter_ns=jitter)
    deals = h.deals.reset_index(drop=True)
    cut = h.data_cut
    for k, frac in enumerate(fractions):
        d = deals.iloc[(pick + k) % len(deals)]
        end = d["closed_at"] if not pd.isna(d["closed_at"]) else cut
        t = d["created_at"] + (end - d["created_at"]) * frac
        if t >= cut:  # at the cut the deals table *is* the export at as_of (see test_close_date_rule)
            continue
        # every deal open at t is described at t, so several deals share one truncated history
        open_at_t = deals[(deals["created_at"] <= t) & ~(deals["closed_at"] <= t)]["deal_id"].tolist()
        snaps = snapshot(open_at_t, [float((t - day(0)) / pd.Timedelta(days=1))])
        snaps["as_of"] = t
        full = build_features(h, snaps, spec=SPEC)
        cut_history = h.as_known_at(t)
        truncated = build_features(cut_history, snaps, spec=SPEC)
        pd.testing.assert_frame_equal(full, truncated, check_exact=False, rtol=1e-12, atol=0)


def test_late_recorded_activity_is_not_seen_before_it_is_recorded() -> None:
    h = hand_history(
        deals=[{"deal_id": "D", "created_at": 0}],
        acts=[
            {"deal_id": "D", "occurred_at": 5, "recorded_at": 20, "type": "meeting", "direction": "inbound",
             "contact_id": "c1", "contact_role": "decision_maker"},
            {"deal_id": "D", "occurred_at": 2, "type": "email", "direction": "outbound"},
        ],
    )
    f = build_features(h, snapshot("D", [10, 19.99, 20, 40]), spec=SPEC)
    before, just_before, at, later = (f.iloc[i] for i in range(4))
    for row in (before, just_before):
        assert row["n_touches_total"] == 1
        assert row["n_meeting_total"] == 0 and row["has_meeting"] == 0
        assert row["decision_maker_engaged"] == 0 and row["n_contacts"] == 0
        assert np.isnan(row["days_since_last_inbound"])
        assert row["n_outbound_unanswered"] == 1 and row["n_replies"] == 0
    assert before["days_since_last_touch"] == pytest.approx(8.0)
    # once logged, it counts from when it happened: 15 days ago, so not in the 7-day window
    assert at["n_meeting_total"] == 1 and at["has_meeting"] == 1
    assert at["n_meeting_7d"] == 0 and at["n_meeting_30d"] == 1
    assert at["days_since_last_inbound"] == pytest.approx(15.0)
    assert at["decision_maker_engaged"] == 1 and at["n_contacts"] == 1
    assert at["n_outbound_unanswered"] == 0 and at["n_replies"] == 1
    assert later["n_meeting_30d"] == 0 and later["n_meeting_90d"] == 1


def test_a_touchpoint_logged_before_it_happens_counts_only_once_it_happened() -> None:
    h = hand_history(
        deals=[{"deal_id": "D", "created_at": 0}],
        acts=[{"deal_id": "D", "occurred_at": 30, "recorded_at": 10, "type": "demo", "direction": "outbound"}],
    )
    f = build_features(h, snapshot("D", [15, 30]), spec=SPEC)
    assert f["has_demo"].tolist() == [0.0, 1.0]
    assert np.isnan(f["days_since_last_demo"].iloc[0]) and f["days_since_last_demo"].iloc[1] == 0.0


def test_late_stage_change_is_not_declared_before_it_is_recorded() -> None:
    h = hand_history(
        deals=[{"deal_id": "D", "created_at": 0, "amount": 5000.0}],
        stages=[
            {"deal_id": "D", "stage": "qualification", "changed_at": 0, "amount": 1000.0},
            {"deal_id": "D", "stage": "proposal", "changed_at": 10, "recorded_at": 25, "amount": 3000.0},
        ],
    )
    f = build_features(h, snapshot("D", [5, 20, 25]), spec=SPEC)
    assert f["declared_stage"].astype(object).tolist() == ["qualification", "qualification", "proposal"]
    assert f["amount"].tolist() == [1000.0, 1000.0, 3000.0]
    # the CRM says the stage was entered on day 10 (back-dated): 15 days in stage on day 25
    assert f["days_in_stage"].iloc[2] == pytest.approx(15.0)
    assert f["days_since_stage_update"].iloc[2] == 0.0
    assert f["n_skipped_stages"].tolist() == [0.0, 0.0, 2.0]


def test_close_date_rule_uses_recorded_dates_and_the_deals_table_only_at_the_cut() -> None:
    """expected_close_date of ``deals`` is a current value: usable only for as_of >= the data cut."""
    h = hand_history(
        deals=[{"deal_id": "D", "created_at": 0, "expected_close_date": 90},
               {"deal_id": "E", "created_at": 0, "expected_close_date": 80}],
        stages=[{"deal_id": "D", "stage": "discovery", "changed_at": 1, "expected_close_date": 40},
                {"deal_id": "D", "stage": "discovery", "changed_at": 30, "expected_close_date": 60},
                {"deal_id": "E", "stage": "discovery", "changed_at": 1}],
        cut=50,
    )
    f = build_features(h, snapshot(["D", "D", "E", "E"], [10, 50, 10, 50]).assign(
        as_of=[day(10), day(50), day(10), day(50)]), spec=SPEC)
    assert f["days_to_expected_close"].iloc[0] == pytest.approx(30.0)  # recorded on day 1
    assert f["days_to_expected_close"].iloc[1] == pytest.approx(10.0)  # pushed on day 30
    assert f["close_date_pushes"].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert np.isnan(f["days_to_expected_close"].iloc[2])  # before the cut: unknown, not the current value
    assert f["days_to_expected_close"].iloc[3] == pytest.approx(30.0)  # at the cut: what the export shows


def test_other_deals_count_only_once_closed_before_as_of() -> None:
    h = hand_history(
        deals=[
            {"deal_id": "W", "created_at": 0, "closed_at": 10, "outcome": "won"},
            {"deal_id": "L", "created_at": 0, "closed_at": 20, "outcome": "lost"},
            {"deal_id": "X", "created_at": 0, "closed_at": 5, "outcome": "lost", "owner_id": "O2",
             "account_id": "A2"},
            {"deal_id": "D", "created_at": 1},
        ],
        accounts=[{"account_id": "A1", "industry": "software"}, {"account_id": "A2", "industry": "retail"}],
    )
    f = build_features(h, snapshot("D", [4, 10, 15, 25]), spec=SPEC)
    k = FeatureContext().owner_shrinkage
    assert f["owner_closed_deals"].tolist() == [0.0, 0.0, 1.0, 2.0]
    assert np.isnan(f["owner_win_rate"].iloc[0])  # nothing closed yet anywhere: explicit missing
    assert f["owner_win_rate"].iloc[1] == pytest.approx(0.0)  # only X (lost, other owner) closed before day 10
    overall = 1 / 2  # X lost, W won
    assert f["owner_win_rate"].iloc[2] == pytest.approx((1 + k * overall) / (1 + k))
    assert f["account_prior_deals"].tolist() == [2.0, 2.0, 2.0, 2.0]
    assert f["account_closed_deals"].tolist() == [0.0, 0.0, 1.0, 2.0]
    assert f["owner_open_deals"].tolist() == [2.0, 1.0, 1.0, 0.0]
