"""Simulate, don't multiply: bookings drawn deal by deal (won or not, and in which month).

Each open deal lands in exactly one outcome per draw: won in one of the grid's
months, won later, or not won, with probabilities ``p_win × P(month | won)``.
One uniform number per (draw, deal) picks it, so the whole company's draws are
a handful of array operations (no Python loop over deals). A few large deals
make the range wide, as they should. Deals are drawn independently given their
probabilities: correlated risk (one account's deals, one rep's quarter) is not
modelled; the backtest's coverage figure says how much that matters.
"""

from __future__ import annotations

import numpy as np

#: Draws per chunk: bounds memory at ``chunk × deals × months`` booleans.
_CHUNK_CELLS = 20_000_000


def draw_open_bookings(amount: np.ndarray, p_win: np.ndarray, month_prob: np.ndarray, group: np.ndarray,
                       n_groups: int, n_sims: int, rng: np.random.Generator) -> np.ndarray:
    """Bookings from open deals per draw, group and month (sims × groups × months).

    ``month_prob`` (deals × months) is P(close in month | won); what is left of a
    row's mass is "won after the last month". ``group`` holds each deal's group index.
    """
    n, m = month_prob.shape
    out = np.zeros((n_sims, n_groups, m))
    if n == 0 or n_sims == 0:
        return out
    amount = np.nan_to_num(np.asarray(amount, dtype=float), nan=0.0)
    probs = np.clip(np.asarray(p_win, dtype=float), 0.0, 1.0)[:, None] * np.clip(month_prob, 0.0, 1.0)
    cum = np.cumsum(probs, axis=1)
    g = np.asarray(group, dtype=np.int64)
    chunk = max(1, _CHUNK_CELLS // max(1, n * m))
    for s0 in range(0, n_sims, chunk):
        s1 = min(n_sims, s0 + chunk)
        u = rng.random((s1 - s0, n))
        cat = (u[:, :, None] >= cum[None, :, :]).sum(axis=2)  # 0..m-1: that month; m: later or lost
        sims = np.arange(s1 - s0)[:, None]
        flat = (sims * n_groups + g[None, :]) * (m + 1) + cat
        sums = np.bincount(flat.ravel(), weights=np.broadcast_to(amount, flat.shape).ravel(),
                           minlength=(s1 - s0) * n_groups * (m + 1))
        out[s0:s1] = sums.reshape(s1 - s0, n_groups, m + 1)[:, :, :m]
    return out


def range_drivers(amount: np.ndarray, p_period: np.ndarray) -> np.ndarray:
    """Each deal's share of a period total's variance: ``amount² · π(1−π)`` with π = P(won in the period).

    Independent deals add variances, so these shares say exactly which deals make
    the range wide (a 50/50 deal of 400k matters more than ten sure small ones).
    """
    a = np.nan_to_num(np.asarray(amount, dtype=float), nan=0.0)
    pi = np.clip(np.asarray(p_period, dtype=float), 0.0, 1.0)
    var = a * a * pi * (1.0 - pi)
    total = var.sum()
    return var / total if total > 0 else np.zeros_like(var)


def quantiles(draws: np.ndarray, qs: tuple[float, ...] = (0.1, 0.5, 0.9)) -> np.ndarray:
    """Quantiles over the first axis (the draws), one row per requested level."""
    return np.quantile(draws, qs, axis=0)


def crps_from_draws(draws: np.ndarray, actual: float) -> float:
    """Continuous ranked probability score of a sample forecast: E|X−y| − ½E|X−X'| (lower is better).

    For a point forecast it reduces to the absolute error, so peers and the model
    are scored on one scale.
    """
    x = np.sort(np.asarray(draws, dtype=float))
    n = len(x)
    if n == 0:
        return float("nan")
    term1 = np.abs(x - actual).mean()
    # E|X-X'| from sorted samples: 2/n² Σ (2i - n - 1) x_i  (i from 1)
    i = np.arange(1, n + 1)
    term2 = 2.0 * ((2 * i - n - 1) * x).sum() / (n * n)
    return float(term1 - 0.5 * term2)


__all__ = ["crps_from_draws", "draw_open_bookings", "quantiles", "range_drivers"]
