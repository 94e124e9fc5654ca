"""Bookings from deals not created yet: rates, conversion, and the rate's own uncertainty in the draws."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from dealscore.forecast.creation import PipelineCreationModel, rate_uncertainty

from .conftest import Trained

QUARTER = np.array([[0.0, 91.0]])


@pytest.fixture(scope="module")
def creation(trained: Trained) -> PipelineCreationModel:
    return PipelineCreationModel(group="team", pool="team").fit(trained.history)


def test_rate_uncertainty_is_the_two_counts_relative_variance() -> None:
    assert rate_uncertainty(100, 25) == pytest.approx(0.01 + 0.04)
    assert rate_uncertainty(0, 25) == 0.0 and rate_uncertainty(100, 0) == 0.0


def test_creation_counts_are_the_deals_created_in_the_rate_window(trained: Trained,
                                                                  creation: PipelineCreationModel) -> None:
    d = trained.history.deals
    cut = pd.Timestamp(trained.history.data_cut)
    recent = d[(d["created_at"] > cut - pd.Timedelta(days=91)) & (d["created_at"] <= cut)]
    assert creation.created_ == recent["team"].value_counts().to_dict()
    for team, n in creation.created_.items():
        assert creation.rate_per_day_[team] == pytest.approx(n / 91.0)


def test_draws_keep_the_expected_bookings_and_widen_by_the_rate_uncertainty(creation: PipelineCreationModel
                                                                           ) -> None:
    team = max(creation.created_, key=creation.created_.get)
    n = 40_000
    drawn = creation.simulate([team], QUARTER, n, seed=3)[:, 0, 0]
    exact = copy.deepcopy(creation)
    del exact.created_  # a model fitted before the counts were kept: Poisson at the estimated rate
    poisson = exact.simulate([team], QUARTER, n, seed=3)[:, 0, 0]
    expected = creation.expected(team, QUARTER)[0]
    assert expected > 0
    for draws in (drawn, poisson):  # both unbiased (the factor has mean 1)
        assert draws.mean() == pytest.approx(expected, rel=0.03)
    # compound Poisson variance is E[N]·E[a²]; the Gamma factor adds (E[N]·E[a])²·var on top
    wins = len(creation.pools_[creation.pool_of_[team]].amounts)
    var = rate_uncertainty(creation.created_[team], wins)
    extra = expected**2 * var
    assert drawn.var() - poisson.var() == pytest.approx(extra, rel=0.25)
