"""The Monte Carlo: certain deals give their sum with no range; each deal draws from its own stream, deterministic
and unbiased."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from dealscore.forecast.close_time import BUCKET_EDGES, period_probabilities
from dealscore.forecast.engine import OpenPipeline, forecast_pipeline
from dealscore.forecast.montecarlo import (
    crps_from_draws,
    deal_streams,
    draw_open_bookings,
    expected_open_bookings,
    range_drivers,
    scaled_probabilities,
    uniform_bits,
)

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


def test_from_open_deals_is_the_exact_expectation_not_the_mean_of_the_draws() -> None:
    """``open_expected`` is Σ p_win × amount × P(close in the period) (the schema's "expected bookings"), not the
    draws' mean, which moves with the seed and the number of draws; ``expected`` adds booked and new pipeline."""
    t = pd.Timestamp("2025-07-07")  # buckets 0-3 close in July: inside the quarter
    pipe = _pipeline([100.0, 250.0, 40.0, 70.0], [0.3, 0.6, 0.9, 0.5], [0, 2, 3, 1], ["a", "a", "b", "b"], t)
    fc = forecast_pipeline(pipe, t, n_sims=200, seed=3, booked={("a", "2025-Q3"): 15.0})
    a, b = fc.row("a", "2025-Q3"), fc.row("b", "2025-Q3")
    assert a["open_expected"] == pytest.approx(100 * 0.3 + 250 * 0.6, rel=1e-12)
    assert b["open_expected"] == pytest.approx(40 * 0.9 + 70 * 0.5, rel=1e-12)
    assert fc.row("company", "2025-Q3")["open_expected"] == pytest.approx(180 + 71, rel=1e-12)
    assert a["expected"] == a["booked"] + a["open_expected"] + a["new_expected"] == pytest.approx(195.0, rel=1e-12)
    drawn = fc.draws["a|2025-Q3"].mean() - 15.0
    assert drawn != pytest.approx(180.0, rel=1e-6) and drawn == pytest.approx(180.0, rel=0.1)  # noise, not the rule


def _deals(n: int, seed: int, months: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``n`` deals with ids, amounts, p_win, per-month close probabilities (some mass after the grid) and groups."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"D{i}" for i in range(n)], dtype=object)
    return (ids, rng.uniform(1, 100, n), rng.uniform(0, 1, n), rng.dirichlet(np.ones(months + 1), n)[:, :months],
            rng.integers(0, 3, n))


def test_draws_are_deterministic_given_the_seed_and_average_to_the_exact_expectation() -> None:
    ids, amount, p, month, group = _deals(400, 0)
    a = draw_open_bookings(amount, p, month, group, 3, 3000, deal_streams(ids, 1))
    b = draw_open_bookings(amount, p, month, group, 3, 3000, deal_streams(ids, 1))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, draw_open_bookings(amount, p, month, group, 3, 3000, deal_streams(ids, 2)))
    exact = expected_open_bookings(amount, p, month, group, 3)
    plain = np.array([[(amount * p * month[:, m])[group == g].sum() for m in range(3)] for g in range(3)])
    np.testing.assert_allclose(exact, plain, rtol=1e-12)
    np.testing.assert_allclose(a.mean(axis=0), exact, rtol=0.03)


# SplitMix64's first outputs for seed 1234567 (Rosetta Code, "Pseudo-random numbers/Splitmix64", the values of
# Vigna's splitmix64.c): the draws' numbers are their top 31 bits
SPLITMIX64_1234567 = [6457827717110365317, 3203168211198807973, 9817491932198370423, 4593380528125082431,
                      16408922859458223821]


def _splitmix64(key: int, i: int) -> int:
    """Output ``i`` (from 0) of SplitMix64 seeded with ``key``, in Python integers."""
    mask = (1 << 64) - 1
    z = (key + (i + 1) * 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def test_each_deals_numbers_are_its_own_splitmix64_stream_keyed_by_the_seed_and_its_id() -> None:
    got = uniform_bits(np.array([1234567], dtype=np.uint64), np.arange(5))[:, 0]
    assert got.tolist() == [v >> 33 for v in SPLITMIX64_1234567]
    assert [_splitmix64(1234567, i) for i in range(5)] == SPLITMIX64_1234567
    # the key: BLAKE2b of "seed/id", the same in every process (Python's hash() of a text is salted per process)
    ids = ["D-1", "Acme/42", "7"]
    keys = deal_streams(np.array(ids, dtype=object), 5)
    want = [int.from_bytes(hashlib.blake2b(f"5/{d}".encode(), digest_size=8).digest(), "little") for d in ids]
    assert keys.tolist() == want
    # any draw of any stream, far into it too (the counter wraps modulo 2^64 as SplitMix64's state does)
    draws = np.array([0, 1, 999, 2**40 + 3])
    np.testing.assert_array_equal(uniform_bits(keys, draws),
                                  [[_splitmix64(k, int(i)) >> 33 for k in want] for i in draws])


def test_deals_draw_independently_of_each_other() -> None:
    """Neighbouring ids give unrelated streams: the count of wins per draw has the binomial variance (deals drawn
    from one shared number would give n times it) and each deal is won at its rate."""
    n, sims = 400, 4000
    ids = np.array([f"D{i}" for i in range(n)], dtype=object)
    won = draw_open_bookings(np.ones(n), np.full(n, 0.5), np.ones((n, 1)), np.arange(n), n, sims, deal_streams(ids, 0))
    per_draw = won.sum(axis=(1, 2))
    assert per_draw.mean() == pytest.approx(n * 0.5, rel=0.01)
    assert per_draw.var() == pytest.approx(n * 0.25, rel=0.1)
    rates = won[:, :, 0].mean(axis=0)
    assert np.abs(rates - 0.5).max() < 0.04  # 5 binomial sd at 4,000 draws: every deal's own stream is fair
    corr = np.corrcoef(won[:, :, 0].T)[np.triu_indices(n, 1)]
    assert np.abs(corr).max() < 0.09 and abs(corr.mean()) < 0.002


def test_a_deals_draws_do_not_depend_on_the_other_deals_drawn_beside_it() -> None:
    ids, amount, p, month, group = _deals(300, 4)
    streams = deal_streams(ids, 9)
    every = draw_open_bookings(amount, p, month, group, 3, 500, streams)
    mine = group == 1
    alone = draw_open_bookings(amount[mine], p[mine], month[mine], np.zeros(mine.sum(), dtype=int), 1, 500,
                               streams[mine])
    np.testing.assert_array_equal(every[:, 1], alone[:, 0])
    np.testing.assert_array_equal(expected_open_bookings(amount, p, month, group, 3)[1],
                                  expected_open_bookings(amount[mine], p[mine], month[mine], np.zeros(mine.sum(),
                                                                                                     dtype=int), 1)[0])


def _plain_draws(amount: np.ndarray, p_win: np.ndarray, month_prob: np.ndarray, group: np.ndarray,
                 n_groups: int, n_sims: int, streams: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """The draws' rule written plainly, in chunks of another size than the blocks: draw ``i`` of a deal is won in
    the first month whose cumulative probability passes number ``i`` of its stream."""
    n, m = month_prob.shape
    out = np.zeros((n_sims, n_groups, m))
    amount = np.nan_to_num(np.asarray(amount, dtype=float), nan=0.0)
    probs = scaled_probabilities(np.clip(p_win, 0.0, 1.0)[:, None] * np.clip(month_prob, 0.0, 1.0), scale)
    top = 2.0**31
    edges = np.minimum(np.ceil(np.cumsum(probs, axis=1) * top), top).astype(np.int64)  # deals × months
    cell = np.asarray(group, dtype=np.int64) * m
    flat = out.reshape(-1)
    chunk = max(1, 2_000_000 // n)
    for s0 in range(0, n_sims, chunk):
        s1 = min(n_sims, s0 + chunk)
        u = uniform_bits(streams, np.arange(s0, s1)).astype(np.int64)
        hits = np.flatnonzero(u < edges[:, m - 1])
        sim, deal = np.divmod(hits, n)
        uh = u.reshape(-1)[hits]
        month = np.zeros(len(hits), dtype=np.int64)
        for j in range(m - 1):
            month += uh >= edges[deal, j]
        flat += np.bincount((sim + s0) * (n_groups * m) + cell[deal] + month, weights=amount[deal],
                            minlength=flat.size)
    return out


@pytest.mark.parametrize(("n", "sims", "scale"), [(5000, 1000, 0.93), (3001, 77, 1.0), (1, 40, 1.2), (8000, 2600, 1.0),
                                                  (170_001, 5, 1.0)])
def test_draws_in_blocks_equal_the_rule_written_plainly_to_the_last_bit(n: int, sims: int, scale: float) -> None:
    """Blocks change no sum (odd counts of numbers per block; 8,000 deals × 2,600 draws take several chunks of the
    plain rule; 170,001 deals take one draw per block)."""
    rng = np.random.default_rng(n)
    amount = rng.lognormal(10, 1, n)
    amount[::7] = np.nan
    p = rng.uniform(0, 1, n)
    p[::11] = 1.0  # thresholds at the top (2^31): sure deals whose months hold all their mass
    month = rng.dirichlet(np.ones(7), n)[:, :6] * 0.95
    month[::11] = rng.dirichlet(np.ones(6), len(month[::11]))
    group = rng.integers(0, 13, n)
    streams = deal_streams(np.array([f"d{i}" for i in range(n)], dtype=object), 5)
    got = draw_open_bookings(amount, p, month, group, 13, sims, streams, scale=scale)
    want = _plain_draws(amount, p, month, group, 13, sims, streams, scale=scale)
    np.testing.assert_array_equal(got, want)


def test_a_sure_deal_is_always_won_and_an_impossible_one_never() -> None:
    ids = np.array(["sure", "never"], dtype=object)
    month = np.array([[0.25, 0.75], [1.0, 0.0]])
    got = draw_open_bookings(np.array([10.0, 20.0]), np.array([1.0, 0.0]), month, np.array([0, 1]), 2, 2000,
                             deal_streams(ids, 0))
    assert (got[:, 0].sum(axis=1) == 10.0).all() and (got[:, 1] == 0).all()
    assert got[:, 0, 0].mean() == pytest.approx(2.5, rel=0.1)


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
