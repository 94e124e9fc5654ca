"""Too-thin and one-class histories stop with messages that say what is missing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dealscore.errors import InsufficientDataError
from dealscore.training.split import split_deals
from dealscore.training.thinness import check_history, check_slice_labels


def _deals(n: int, won_share: float, seed: int = 0) -> tuple[pd.DataFrame, pd.Timestamp]:
    rng = np.random.default_rng(seed)
    created = pd.Timestamp("2023-01-01") + pd.to_timedelta(np.sort(rng.uniform(0, 600, n)), unit="D")
    closed = created + pd.to_timedelta(rng.uniform(5, 60, n), unit="D")
    outcome = np.where(rng.random(n) < won_share, "won", "lost").astype(object)
    cut = pd.Timestamp("2024-12-31")
    return pd.DataFrame({"deal_id": [f"D{i}" for i in range(n)], "created_at": created, "closed_at": closed,
                         "outcome": outcome}), cut


def test_enough_deals_pass_and_report_counts():
    deals, cut = _deals(400, 0.3)
    counts = check_history(deals, split_deals(deals, cut), min_won=40, min_lost=40)
    assert counts["won_closed"] + counts["lost_closed"] == 400
    assert counts["won_in_cohort"] >= 40


def test_thin_history_says_how_many_exist_and_are_needed():
    deals, cut = _deals(60, 0.3)
    with pytest.raises(InsufficientDataError) as err:
        check_history(deals, split_deals(deals, cut), min_won=40, min_lost=40)
    msg = str(err.value)
    won = int((deals["outcome"] == "won").sum())
    assert f"{won} won" in msg and "at least 40 won and 40 lost" in msg and "more won" in msg
    assert err.value.detail["need_won"] == 40


@pytest.mark.parametrize("only", ["won", "lost"])
def test_one_class_history_is_named(only):
    deals, cut = _deals(300, 1.0 if only == "won" else 0.0)
    with pytest.raises(InsufficientDataError, match=f"every closed deal in the history is {only}"):
        check_history(deals, split_deals(deals, cut), min_won=40, min_lost=40)


def test_all_open_history():
    deals, cut = _deals(100, 0.5)
    deals["closed_at"] = pd.NaT
    deals["outcome"] = None
    with pytest.raises(InsufficientDataError, match="no closed deals"):
        check_history(deals, split_deals(deals, cut), min_won=40, min_lost=40)


def test_one_class_slice_is_named():
    with pytest.raises(InsufficientDataError, match="the test slice \\(12 deals\\) has only lost deals"):
        check_slice_labels(np.zeros(30), "test", 12)
