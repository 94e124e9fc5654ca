"""The Monte Carlo: certain deals give their sum with no range; draws are deterministic and unbiased."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dealscore.forecast.close_time import BUCKET_EDGES, period_probabilities
from dealscore.forecast.engine import OpenPipeline, forecast_pipeline
from dealscore.forecast.montecarlo import crps_from_draws, draw_open_bookings, range_drivers, scaled_probabilities

K = len(BUCKET_EDGES) - 1


def _pipeline(amounts: list[float], p_win: list[float], bucket: list[int], teams: list[str],
              at: pd.Timestamp) -> OpenPipeline:
    pmf = np.zeros((len(amounts), K))
    pmf[np.arange(len(amounts)), bucket] = 1.0
    return OpenPipeline(deal_id=np.array([f"D{i}" for i in range(len(amounts))], dtype=object),
                        team=np.array(teams, dtype=object), owner_id=np.array(["o"] * len(amounts), dtype=object),
                        amount=np.array(amounts, dtype=float), p_win=np.array(p_win, dtype=float), pmf=pmf,
                        scored_at=np.full(len(amounts), at.asm8, dtype="datetime64[ns]"))


def test_a_pipeline_of_certain_deals_forecasts_their_sum_with_zero_width() -> None:
    t = pd.Timestamp("2025-07-07")  # a week into Q3: buckets 0-3 close in July, all inside the quarter
    pipe = _pipeline([100.0, 250.0, 40.0], [1.0, 1.0, 1.0], [0, 2, 3], ["a", "a", "b"], t)
    fc = forecast_pipeline(pipe, t, kind="quarter", by="team", creation=None, n_sims=500, seed=3)
    company = fc.row("company", "2025-Q3")
    assert company["p10"] == company["p50"] == company["p90"] == pytest.approx(390.0)
    a = fc.row("a", "2025-Q3")
    assert (a["p10"], a["p90"]) == (pytest.approx(350.0), pytest.approx(350.0))
    assert fc.row("b", "2025-Q4")["p90"] == 0.0  # won in July: nothing left for the next quarter


def test_draws_are_deterministic_given_the_seed_and_unbiased() -> None:
    rng = np.random.default_rng(0)
    n = 400
    amount = rng.uniform(1, 100, n)
    p = rng.uniform(0, 1, n)
    month = rng.dirichlet(np.ones(4), n)[:, :3]
    group = rng.integers(0, 3, n)
    a = draw_open_bookings(amount, p, month, group, 3, 3000, np.random.default_rng(1))
    b = draw_open_bookings(amount, p, month, group, 3, 3000, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    expected = np.array([[(amount * p * month[:, m])[group == g].sum() for m in range(3)] for g in range(3)])
    np.testing.assert_allclose(a.mean(axis=0), expected, rtol=0.03)


def _former_draws(amount: np.ndarray, p_win: np.ndarray, month_prob: np.ndarray, group: np.ndarray,
                  n_groups: int, n_sims: int, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """draw_open_bookings as it was before it handled draws in cache-sized blocks: the figures must not move."""
    n, m = month_prob.shape
    out = np.zeros((n_sims, n_groups, m))
    amount = np.nan_to_num(np.asarray(amount, dtype=float), nan=0.0)
    probs = scaled_probabilities(np.clip(p_win, 0.0, 1.0)[:, None] * np.clip(month_prob, 0.0, 1.0), scale)
    by_month = np.cumsum(probs, axis=1).astype(np.float32).T.copy()
    cell = np.asarray(group, dtype=np.int64) * m
    flat = out.reshape(-1)
    chunk = max(1, 20_000_000 // (4 * n))
    for s0 in range(0, n_sims, chunk):
        s1 = min(n_sims, s0 + chunk)
        u = rng.random((s1 - s0, n), dtype=np.float32)
        hits = np.flatnonzero(u < by_month[m - 1])
        sim, deal = np.divmod(hits, n)
        uh = u.reshape(-1)[hits]
        month = np.zeros(len(hits), dtype=np.int64)
        for j in range(m - 1):
            month += uh >= by_month[j][deal]
        flat += np.bincount((sim + s0) * (n_groups * m) + cell[deal] + month, weights=amount[deal],
                            minlength=flat.size)
    return out


@pytest.mark.parametrize(("n", "sims", "scale"), [(5000, 1000, 0.93), (3001, 77, 1.0), (1, 40, 1.2), (8000, 2600, 1.0),
                                                  (170_001, 5, 1.0)])
def test_draws_in_blocks_equal_the_former_draws_to_the_last_bit(n: int, sims: int, scale: float) -> None:
    """Same seed, same figures: drawing in blocks changes no sum (odd counts of numbers per block; 8,000 deals ×
    2,600 draws took several chunks before; 170,001 deals take one draw per block)."""
    rng = np.random.default_rng(n)
    amount = rng.lognormal(10, 1, n)
    amount[::7] = np.nan
    p = rng.uniform(0, 1, n)
    month = rng.dirichlet(np.ones(7), n)[:, :6] * 0.95
    group = rng.integers(0, 13, n)
    got = draw_open_bookings(amount, p, month, group, 13, sims, np.random.default_rng(5), scale=scale)
    want = _former_draws(amount, p, month, group, 13, sims, np.random.default_rng(5), scale=scale)
    np.testing.assert_array_equal(got, want)


def test_a_large_uncertain_deal_widens_the_range_and_leads_the_drivers() -> None:
    t = pd.Timestamp("2025-07-07")
    small = _pipeline([10.0] * 20, [0.5] * 20, [1] * 20, ["a"] * 20, t)
    big = _pipeline([10.0] * 20 + [500.0], [0.5] * 21, [1] * 21, ["a"] * 21, t)
    w_small = forecast_pipeline(small, t, n_sims=2000).row("a", "2025-Q3")
    w_big = forecast_pipeline(big, t, n_sims=2000).row("a", "2025-Q3")
    assert w_big["p90"] - w_big["p10"] > 5 * (w_small["p90"] - w_small["p10"])
    share = range_drivers(np.array([10.0, 500.0]), np.array([0.5, 0.5]))
    assert share[1] > 0.99


def test_period_probabilities_split_a_bucket_uniformly_and_condition_on_elapsed_time() -> None:
    pmf = np.zeros((1, K))
    pmf[0, 4] = 1.0  # days 28-42
    p = period_probabilities(pmf, np.array([[0.0, 35.0], [35.0, 100.0]]))
    np.testing.assert_allclose(p, [[0.5, 0.5]])
    # a week after scoring (day 7), the same periods measured from the score
    q = period_probabilities(pmf, np.array([[[7.0, 35.0], [35.0, 100.0]]]), elapsed=np.array([7.0]))
    np.testing.assert_allclose(q, [[0.5, 0.5]])
    pmf2 = np.zeros((1, K))
    pmf2[0, [0, 4]] = 0.5  # half within the first week: gone once a week has passed open
    r = period_probabilities(pmf2, np.array([[[7.0, 42.0]]]), elapsed=np.array([7.0]))
    np.testing.assert_allclose(r, [[1.0]])


def test_period_probabilities_equal_the_bucket_overlaps_summed_one_by_one() -> None:
    """The CDF form against the rule written plainly: each bucket's mass times the share of it inside the period."""
    rng = np.random.default_rng(3)
    n, periods = 40, 6
    pmf = rng.dirichlet(np.ones(K), n)
    # periods before day 0, across bucket edges and past the last edge
    off = np.sort(rng.uniform(-30.0, BUCKET_EDGES[-1] + 60.0, (n, periods, 2)), axis=2)
    elapsed = rng.uniform(0.0, 200.0, n)

    def plain(i: int, a: float, b: float, since: float | None) -> float:
        total = 0.0
        for k in range(K):
            lo, hi = BUCKET_EDGES[k], BUCKET_EDGES[k + 1]
            a_, b_ = (a, b) if since is None else (max(a, since), max(b, since))
            total += pmf[i, k] * max(0.0, min(b_, hi) - max(a_, lo)) / (hi - lo)
        if since is None:
            return total
        left = sum(pmf[i, k] * min(1.0, max(0.0, (BUCKET_EDGES[k + 1] - max(since, BUCKET_EDGES[k]))
                                          / (BUCKET_EDGES[k + 1] - BUCKET_EDGES[k]))) for k in range(K))
        return total / left if left > 1e-12 else 0.0

    for since in (None, elapsed):
        got = period_probabilities(pmf, off, elapsed=since)
        want = [[plain(i, off[i, j, 0], off[i, j, 1], None if since is None else since[i]) for j in range(periods)]
                for i in range(n)]
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_crps_of_a_point_forecast_is_the_absolute_error_and_sharper_right_forecasts_score_better() -> None:
    assert crps_from_draws(np.full(100, 5.0), 8.0) == pytest.approx(3.0)
    rng = np.random.default_rng(0)
    assert crps_from_draws(rng.normal(0, 1, 4000), 0.0) < crps_from_draws(rng.normal(0, 3, 4000), 0.0)
