"""The open-deal calibration learns from past windows only: later outcomes cannot move it, and it finds a known bias."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from dealscore.data.history import DealHistory
from dealscore.forecast.calibration import (
    OpenDealCalibration,
    OpenScores,
    WindowCache,
    unseen_after,
    window_origins,
)
from dealscore.forecast.close_time import BUCKET_EDGES
from dealscore.forecast.engine import OpenPipeline, forecast_pipeline
from dealscore.forecast.periods import period_of
from dealscore.models.bundle import ModelBundle

from .conftest import Trained

T = pd.Timestamp("2025-01-15")
K = len(BUCKET_EDGES) - 1


def _open_at(past: DealHistory, t: pd.Timestamp) -> pd.DataFrame:
    d = past.deals
    return d[d["closed_at"].isna() & (d["created_at"] <= t)]


def constant_score_at(past: DealHistory, t: pd.Timestamp) -> OpenScores:
    """A scorer that reads only what it is given: every open deal 30% likely, closing in week one if won."""
    d = _open_at(past, t)
    pmf = np.zeros((len(d), K))
    pmf[:, 0] = 1.0
    return OpenScores(deal_id=d["deal_id"].to_numpy(dtype=object), team=d["team"].to_numpy(dtype=object),
                      amount=d["amount"].to_numpy(dtype=float), p_win=np.full(len(d), 0.3), pmf=pmf)


def _changed_after(history: DealHistory, t: pd.Timestamp) -> DealHistory:
    """The same history with every outcome after ``t`` reversed and moved three days later."""
    d = history.deals.copy()
    later = d["closed_at"].notna() & (d["closed_at"] > t)
    d.loc[later, "outcome"] = np.where(d.loc[later, "outcome"] == "won", "lost", "won")
    d.loc[later, "closed_at"] = d.loc[later, "closed_at"] + pd.Timedelta(days=3)
    return history.replace(deals=d)


def _knowing_scorer(history: DealHistory, share: Any) -> Any:
    """A scorer that peeks at the full history on purpose: each open deal's p_win is ``share(deals, t)`` times
    whether it is won inside the window (1 or 0), closing in week one if won."""
    full = history.deals.set_index("deal_id")

    def score_at(past: DealHistory, t: pd.Timestamp) -> OpenScores:
        d = _open_at(past, t)
        end = period_of(t, "quarter").end
        closed = full.loc[d["deal_id"], "closed_at"]
        won = ((full.loc[d["deal_id"], "outcome"] == "won") & (closed >= t) & (closed < end)).to_numpy(dtype=float)
        pmf = np.zeros((len(d), K))
        pmf[:, 0] = 1.0
        return OpenScores(deal_id=d["deal_id"].to_numpy(dtype=object), team=d["team"].to_numpy(dtype=object),
                          amount=d["amount"].to_numpy(dtype=float), p_win=share(d, t) * won, pmf=pmf)

    return score_at


def test_windows_end_by_the_forecast_time_within_the_lookback() -> None:
    wins = window_origins(T, 365, 14, 14)
    assert wins and all(end <= T for _, end in wins)
    assert all(end == period_of(o, "quarter").end and end - o >= pd.Timedelta(days=14) for o, end in wins)
    assert min(o for o, _ in wins) >= T - pd.Timedelta(days=365)
    # the grid is fixed: a later forecast time reuses the same origins
    later = {o for o, _ in window_origins(T + pd.Timedelta(days=90), 365, 14, 14)}
    assert {o for o, _ in wins if o >= T + pd.Timedelta(days=90 - 365)} <= later


def test_future_outcomes_do_not_move_the_calibration(trained: Trained) -> None:
    before = OpenDealCalibration().fit(trained.history, constant_score_at, T)
    changed = _changed_after(trained.history, T)
    after = OpenDealCalibration().fit(changed, constant_score_at, T)
    assert before.windows_ >= 3
    assert after.ratio_ == before.ratio_ and after.spread_ == before.spread_
    pd.testing.assert_frame_equal(after.table_, before.table_)
    # the same change *does* move a calibration made once those outcomes are known (the test can fail)
    late = T + pd.Timedelta(days=200)
    moved = OpenDealCalibration().fit(changed, constant_score_at, late)
    assert moved.ratio_ != OpenDealCalibration().fit(trained.history, constant_score_at, late).ratio_


def test_a_forecast_that_says_80_percent_of_what_was_won_learns_to_scale_by_1_25(trained: Trained) -> None:
    """An oracle scorer (it peeks at the full history on purpose) forecasting 0.8 × each deal's window win."""
    oracle = _knowing_scorer(trained.history, lambda d, t: 0.8)

    cal = OpenDealCalibration().fit(trained.history, oracle, T)
    assert cal.ratio_ == pytest.approx(1.25, rel=1e-9)
    assert cal.spread_ == 0.0  # every window's error is exactly the ratio: nothing left for a shared factor
    assert cal.ratio_sd_ == pytest.approx(0.0, abs=1e-12)  # and the ratio is known exactly


def test_only_deals_the_model_was_not_fitted_on_are_learned_from(trained: Trained) -> None:
    """A scorer exact on deals created by a date (its "training deals") and 0.8 × the truth on later ones: the
    calibration learns the later deals' 1.25, not a blend flattered by the deals the model has seen."""
    fitted_to = T - pd.Timedelta(days=200)
    fits_its_own_deals = _knowing_scorer(
        trained.history, lambda d, t: np.where((d["created_at"] <= fitted_to).to_numpy(), 1.0, 0.8))

    honest = OpenDealCalibration().fit(trained.history, fits_its_own_deals, T, unseen_after=fitted_to)
    assert honest.sample_ == "unseen" and honest.windows_ >= 3
    assert (honest.table_["origin"] > fitted_to).all()
    assert honest.ratio_ == pytest.approx(1.25, rel=1e-9)
    blended = OpenDealCalibration().fit(trained.history, fits_its_own_deals, T)
    assert blended.sample_ == "all" and 1.0 < blended.ratio_ < 1.2  # what counting every deal would learn
    # too few windows of unseen deals: every deal counts, as without a fitted-to date
    late = OpenDealCalibration().fit(trained.history, fits_its_own_deals, T, unseen_after=T - pd.Timedelta(days=20))
    assert late.sample_ == "all" and late.ratio_ == blended.ratio_


def test_recent_windows_count_more_in_the_ratio(trained: Trained) -> None:
    """A scorer exact until one quarter before the forecast time, then forecasting 0.8 × the truth: the ratio
    leans to the recent 1.25 (each window's weight halves every ``half_life_days`` of age), beyond the pooled one."""
    drift_from = T - pd.Timedelta(days=91)
    drifting = _knowing_scorer(trained.history, lambda d, t: 0.8 if t >= drift_from else 1.0)

    cal = OpenDealCalibration().fit(trained.history, drifting, T)
    tb = cal.table_
    pooled = tb["booked"].sum() / tb["expected"].sum()
    w = 0.5 ** ((T - pd.to_datetime(tb["end"])).dt.days.to_numpy() / cal.half_life_days)
    assert cal.ratio_ == pytest.approx((w * tb["booked"]).sum() / (w * tb["expected"]).sum(), rel=1e-9)
    assert 1.0 < pooled < cal.ratio_ < 1.25


def test_the_ratio_error_is_predictive_over_quarter_ends(trained: Trained) -> None:
    """A noisy scorer: the ratio's relative error is the learned ratio's standard error (the sandwich over
    quarter ends of the weighted residuals: windows ending together share their outcomes) plus the quarter ends'
    own ratios' variance around it (what the next quarter's ratio may do), written out here from the table."""
    noisy = _knowing_scorer(trained.history, lambda d, t: 0.5 + 0.5 * (np.arange(len(d)) % 2))
    cal = OpenDealCalibration().fit(trained.history, noisy, T)
    tb = cal.table_
    w = 0.5 ** ((T - pd.to_datetime(tb["end"])).dt.days.to_numpy() / cal.half_life_days)
    ends = tb["end"].to_numpy()
    resid = w * (tb["booked"].to_numpy() - cal.ratio_ * tb["expected"].to_numpy())
    per_end = pd.Series(resid).groupby(ends).sum().to_numpy()
    we = pd.Series(w * tb["expected"].to_numpy()).groupby(ends).sum().to_numpy()
    k, total = len(per_end), we.sum()
    assert k >= 2
    se2 = k / (k - 1) * (per_end**2).sum() / total**2
    between2 = k / (k - 1) * ((we / total) * (per_end / we) ** 2).sum()
    assert between2 > se2 > 0  # one quarter varies more than the mean of several is uncertain
    assert cal.ratio_sd_ == pytest.approx(np.sqrt(se2 + between2) / cal.ratio_, rel=1e-9)


def test_too_few_windows_is_neutral(trained: Trained) -> None:
    first = trained.history.deals["created_at"].min()
    cal = OpenDealCalibration().fit(trained.history, constant_score_at, first + pd.Timedelta(days=60))
    assert cal.quarters_ < 2 and cal.ratio_ == 1.0 and cal.spread_ == 0.0


def test_window_scores_are_cached_per_origin(trained: Trained) -> None:
    calls: list[pd.Timestamp] = []

    def counting(past: DealHistory, t: pd.Timestamp) -> OpenScores:
        calls.append(t)
        return constant_score_at(past, t)

    cache = WindowCache()
    OpenDealCalibration().fit(trained.history, counting, T, cache=cache)
    n = len(calls)
    again = OpenDealCalibration().fit(trained.history, counting, T + pd.Timedelta(days=14), cache=cache)
    assert len(calls) - n <= 1 and again.windows_ >= 3


def _pipe() -> OpenPipeline:
    pmf = np.zeros((3, K))
    pmf[:, 2] = 1.0  # closes 14–21 days after scoring, if won
    t = np.datetime64("2025-04-07", "ns")
    return OpenPipeline(deal_id=np.array(["a", "b", "c"], dtype=object), team=np.array(["x", "x", "y"], dtype=object),
                        owner_id=np.array(["o1", "o2", "o3"], dtype=object), amount=np.array([100.0, 200.0, 300.0]),
                        p_win=np.array([0.2, 0.5, 0.9]), pmf=pmf, scored_at=np.array([t, t, t]))


def test_the_forecast_applies_ratio_and_spread() -> None:
    pipe = _pipe()
    plain = forecast_pipeline(pipe, "2025-04-07", n_sims=4000, seed=1)
    neutral = forecast_pipeline(pipe, "2025-04-07", n_sims=4000, seed=1, calibration=OpenDealCalibration.neutral())
    pd.testing.assert_frame_equal(plain.table, neutral.table)
    cal = OpenDealCalibration.neutral()
    cal.ratio_, cal.spread_ = 1.1, 0.2
    scaled = forecast_pipeline(pipe, "2025-04-07", n_sims=4000, seed=1, calibration=cal)
    cur = scaled.table[scaled.table["period"] == "2025-Q2"].set_index("group")
    # deal c (0.9 × 1.1 > 1) is capped at certain; a and b scale by 1.1
    assert cur.loc["y", "open_expected"] == pytest.approx(300.0, rel=0.08)
    assert cur.loc["x", "open_expected"] == pytest.approx(1.1 * (20 + 100), rel=0.08)
    assert cur.loc["y", "p90"] - cur.loc["y", "p10"] > 0  # a certain deal still moves with its team's shared factor
    assert any("calibrated" in n for n in scaled.notes)


def _factors(spread: float = 0.0, ratio_sd: float = 0.0, groups: tuple[str, ...] = ("a", "b")) -> np.ndarray:
    """20,000 draws of a neutral calibration's factors with the given spreads; each column has mean 1."""
    cal = OpenDealCalibration.neutral()
    cal.spread_, cal.ratio_sd_ = spread, ratio_sd
    f = cal.factors(list(groups), 20000, 3)
    assert f.mean(axis=0) == pytest.approx([1] * len(groups), abs=0.01)
    return f


def test_factors_have_mean_one_and_do_not_depend_on_the_other_groups() -> None:
    f = _factors(spread=0.25)
    assert f.std(axis=0) == pytest.approx([0.25, 0.25], rel=0.05)
    np.testing.assert_array_equal(_factors(spread=0.25, groups=("b",))[:, 0], f[:, 1])


def test_the_ratio_error_moves_every_group_together() -> None:
    f = _factors(ratio_sd=0.1)
    assert f.std(axis=0) == pytest.approx([0.1, 0.1], rel=0.05)
    np.testing.assert_array_equal(f[:, 0], f[:, 1])  # one ratio for all groups: its error is shared
    g = _factors(spread=0.25, ratio_sd=0.1)  # with a team's own spread on top, groups differ but move together
    assert 0 < np.corrcoef(g[:, 0], g[:, 1])[0, 1] < 0.5
    assert g.std(axis=0) == pytest.approx([np.sqrt((1 + 0.1**2) * (1 + 0.25**2) - 1)] * 2, rel=0.05)


def test_training_stores_a_calibration_learned_at_the_data_cut(trained: Trained) -> None:
    cal = trained.bundle.forecast_calibration
    assert cal is not None and cal.as_of_ == pd.Timestamp(trained.history.data_cut).tz_localize(None)
    assert (cal.table_["end"] <= cal.as_of_).all()
    assert trained.report["time_to_close"]["open_deal_calibration"]["windows"] == cal.windows_
    # learned on the deals created after the last one the models were fitted on
    fitted_to = unseen_after(trained.bundle)
    assert fitted_to is not None and cal.unseen_after_ == fitted_to
    assert cal.sample_ == "unseen" and (cal.table_["origin"] > fitted_to).all()
    loaded = ModelBundle.load(trained.bundle_dir)
    assert loaded.forecast_calibration.ratio_ == cal.ratio_
