"""FeatureContext: cross-deal aggregates, shrunk, point in time, portable in a model bundle."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from dealscore.errors import ModelNotReadyError
from dealscore.features import FeatureContext, build_features, make_snapshots
from dealscore.features.context import checkpoint

from .conftest import day, hand_history, random_history

DAY = 86_400 * 10**9


def _won_history():
    return hand_history(
        deals=[
            {"deal_id": "W1", "created_at": 0, "closed_at": 30, "outcome": "won"},
            {"deal_id": "W2", "created_at": 0, "closed_at": 50, "outcome": "won"},
            {"deal_id": "L1", "created_at": 0, "closed_at": 20, "outcome": "lost", "owner_id": "O2"},
            {"deal_id": "D", "created_at": 60},
        ],
        stages=[
            {"deal_id": "W1", "stage": "discovery", "changed_at": 0},
            {"deal_id": "W1", "stage": "proposal", "changed_at": 10},
            {"deal_id": "W1", "stage": "discovery", "changed_at": 20},  # back to discovery: time adds up
            {"deal_id": "W2", "stage": "discovery", "changed_at": 0},
            {"deal_id": "W2", "stage": "proposal", "changed_at": 40, "recorded_at": 55},  # seen after the close
            {"deal_id": "D", "stage": "discovery", "changed_at": 60},
        ],
        cut=120,
    )


def test_stage_norms_use_won_deals_closed_before_the_weekly_checkpoint() -> None:
    ctx = FeatureContext().fit(_won_history())
    discovery = 2
    t = np.array([day(35).value, day(70).value])
    cps = checkpoint(t)
    assert (cps <= t).all() and (t - cps < 7 * DAY).all()
    assert pd.Timestamp(cps[0]).dayofweek == 0  # Mondays
    norms = ctx.stage_norms(np.array([discovery, discovery]), t)
    # day 35: only W1 (closed day 30): 10 + 10 days in discovery; day 70: W1 (20) and W2 (50, proposal unseen)
    assert norms.tolist() == [20.0, 35.0]
    table = ctx.stage_table()
    assert table.set_index("stage").loc["discovery", "n_won_deals"] == 2
    assert table.set_index("stage").loc["proposal", "median_days_in_stage_won"] == 10.0
    assert np.isnan(ctx.stage_norms(np.array([discovery]), np.array([day(10).value]))[0])


def test_stage_time_ratio_and_median_reach_the_features() -> None:
    h = _won_history()
    f = build_features(h, pd.DataFrame({"deal_id": ["D"], "as_of": [day(80)]})).iloc[0]
    assert f["stage_median_days_won"] == 35.0
    assert f["stage_time_ratio"] == pytest.approx(20.0 / 35.0)


def test_shrinkage_pulls_small_records_towards_the_overall_rate() -> None:
    h = random_history(8, n_deals=40, n_owners=4)
    t = h.data_cut
    closed = h.deals[h.deals["closed_at"] < t]
    overall = (closed["outcome"] == "won").mean()
    ctx = FeatureContext(owner_shrinkage=10.0).fit(h)
    owner = closed["owner_id"].iloc[0]
    mine = closed[closed["owner_id"] == owner]
    got = ctx.cross_deal_features(np.array(["NEW"], dtype=object), np.array([owner], dtype=object),
                                  np.array(["A-unknown"], dtype=object), np.array([t.value]))
    expected = ((mine["outcome"] == "won").sum() + 10.0 * overall) / (len(mine) + 10.0)
    assert got["owner_win_rate"][0] == pytest.approx(expected)
    assert got["owner_closed_deals"][0] == len(mine)
    assert got["account_closed_deals"][0] == 0 and got["account_win_rate"][0] == pytest.approx(overall)
    stranger = ctx.cross_deal_features(np.array(["NEW"], dtype=object), np.array(["nobody"], dtype=object),
                                       np.array(["A-unknown"], dtype=object), np.array([t.value]))
    assert stranger["owner_win_rate"][0] == pytest.approx(overall)


def test_a_deal_never_counts_in_its_own_track_record() -> None:
    h = hand_history(deals=[{"deal_id": "W", "created_at": 0, "closed_at": 10, "outcome": "won"},
                            {"deal_id": "L", "created_at": 0, "closed_at": 12, "outcome": "lost"}])
    ctx = FeatureContext().fit(h)
    after = np.array([day(50).value])
    got = ctx.cross_deal_features(np.array(["W"], dtype=object), np.array(["O1"], dtype=object),
                                  np.array(["A1"], dtype=object), after)
    assert got["owner_closed_deals"][0] == 1  # L only
    assert got["owner_win_rate"][0] == pytest.approx(0.0)  # overall without W: 0 of 1
    assert got["account_prior_deals"][0] == 1 and got["owner_open_deals"][0] == 0


def test_context_answers_empty_queries_pickles_and_refuses_use_before_fit() -> None:
    h = random_history(2)
    ctx = FeatureContext().fit(h)
    empty = np.zeros(0, dtype=object)
    assert all(len(v) == 0 for v in ctx.cross_deal_features(empty, empty, empty, np.zeros(0, np.int64)).values())
    snaps = make_snapshots(h)
    before = build_features(h, snaps, context=ctx)
    again = pickle.loads(pickle.dumps(ctx))
    pd.testing.assert_frame_equal(build_features(h, snaps, context=again), before)
    with pytest.raises(ModelNotReadyError):
        FeatureContext().stage_table()
