"""Time split by deal creation: whole deals, time order, the open-deal bias guard."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dealscore.errors import ConfigError
from dealscore.training.split import (
    EXCLUDED_OPEN,
    EXCLUDED_RECENT,
    EXCLUDED_TRAIN_LIMIT,
    RECENT_CLOSE_DAYS,
    SLICES,
    recent_closes_warning,
    split_deals,
)


def _deals(n: int = 1000, seed: int = 0) -> tuple[pd.DataFrame, pd.Timestamp]:
    rng = np.random.default_rng(seed)
    created = pd.Timestamp("2023-01-01") + pd.to_timedelta(np.sort(rng.uniform(0, 700, n)), unit="D")
    cycle = pd.to_timedelta(rng.gamma(2.0, 30.0, n), unit="D")
    cut = pd.Timestamp("2024-12-31")
    closed = pd.Series(created + cycle)
    closed[closed > cut] = pd.NaT
    return pd.DataFrame({"deal_id": [f"D{i:04d}" for i in range(n)], "created_at": created,
                         "closed_at": closed.to_numpy()}), cut


def test_slices_follow_creation_time_and_never_share_a_deal():
    deals, cut = _deals()
    split = split_deals(deals, cut)
    created = deals.set_index("deal_id")["created_at"]
    last = pd.Timestamp.min
    for name in SLICES:
        ids = split.ids(name)
        assert len(ids) > 0
        assert created[ids].min() >= last
        last = created[ids].max()
    assert split.assignment.index.is_unique
    assert len(split.assignment) == len(deals)  # nothing dropped silently: every deal has a slice name


def test_deals_created_after_fitted_to_were_never_fitted_on():
    deals, cut = _deals()
    split = split_deals(deals, cut)
    created = deals.set_index("deal_id")["created_at"]
    fitted = split.fitted_to()
    assert fitted == created[split.ids("calibration")].max()
    later = created.index[created > fitted]
    assert len(later) and not np.isin(split.slice_of(later), ["train", "validation", "calibration"]).any()
    assert set(split.ids("test")) <= set(later)


def test_recent_deals_and_open_cohort_deals_are_excluded():
    deals, cut = _deals()
    split = split_deals(deals, cut, horizon_quantile=0.9)
    assert split.cohort_end == cut - pd.Timedelta(days=split.horizon_days)
    a = split.assignment
    created = deals.set_index("deal_id")["created_at"]
    closed = deals.set_index("deal_id")["closed_at"]
    assert (created[a[a == EXCLUDED_RECENT].index] > split.cohort_end).all()
    assert closed[a[a == EXCLUDED_OPEN].index].isna().all()
    used = a[a.isin(SLICES)].index
    assert closed[used].notna().all() and (created[used] <= split.cohort_end).all()
    counts = split.counts()
    assert counts[EXCLUDED_RECENT] > 0 and sum(counts.values()) == len(deals)


def test_train_limit_keeps_the_same_holdout():
    deals, cut = _deals()
    full = split_deals(deals, cut)
    tiny = split_deals(deals, cut, max_train_deals=50)
    assert list(full.ids("test")) == list(tiny.ids("test"))
    assert len(tiny.ids("train")) == 50
    assert set(tiny.ids("train")) <= set(full.ids("train"))
    created = deals.set_index("deal_id")["created_at"]
    assert created[tiny.ids("train")].min() >= created[tiny.ids(EXCLUDED_TRAIN_LIMIT)].max()


def test_bad_fractions_are_config_errors():
    deals, cut = _deals(50)
    with pytest.raises(ConfigError, match="four positive numbers"):
        split_deals(deals, cut, fractions=[0.8, 0.2])
    with pytest.raises(ConfigError, match="horizon_quantile"):
        split_deals(deals, cut, horizon_quantile=0.2)


def test_a_history_without_a_close_in_the_last_quarter_before_its_cut_is_warned_of():
    """It trained and promoted silently, with a test slice of only the deals that closed fast."""
    deals, cut = _deals()
    assert recent_closes_warning(deals, cut) is None
    last = deals["closed_at"].max()
    late_cut = last + pd.Timedelta(days=RECENT_CLOSE_DAYS + 30)
    note = recent_closes_warning(deals, late_cut)
    assert note is not None
    assert note.startswith(f"no deal closed in the {RECENT_CLOSE_DAYS} days before the data cut {late_cut:%Y-%m-%d}")
    assert f"the last close was on {last:%Y-%m-%d}, {RECENT_CLOSE_DAYS + 30} days before it" in note
    assert "set cut_at in history.yaml" in note
    assert recent_closes_warning(deals, last + pd.Timedelta(days=RECENT_CLOSE_DAYS - 1)) is None
    assert "no deal in the history has closed" in recent_closes_warning(deals.assign(closed_at=pd.NaT), cut)
