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

#: Uniform numbers drawn and handled at once (~80,000: 16 draws of 5,000 deals): few enough that the passes over
#: them and the block-shaped cell and amount arrays stay in the CPU's cache (on this 2-core EPYC with 512 KB of L2
#: per core, 40,000–80,000 took the least CPU; 640,000 a quarter more), drawn into one buffer reused block after
#: block (a fresh 20 MB array per forecast cost more in page faults than drawing the numbers).
_BLOCK_CELLS = 80_000


def draw_open_bookings(amount: np.ndarray, p_win: np.ndarray, month_prob: np.ndarray, group: np.ndarray,
                       n_groups: int, n_sims: int, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """Bookings from open deals per draw, group and month (sims × groups × months).

    ``month_prob`` (deals × months) is P(close in month | won); what is left of a
    row's mass is "won after the last month". ``group`` holds each deal's group index.
    One uniform number per (draw, deal) decides: the deal is won in month ``j`` when
    the number falls between its cumulative probabilities before and through ``j``.
    Only the (draw, deal) pairs won inside the grid (a quarter or so of them) are
    kept; each one's month is the count of month edges below its number, and a
    weighted ``bincount`` over (draw, group, month) sums the amounts. That touches the
    draws × deals numbers three times instead of three times per month (the earlier
    per-month 0/1 matrix products), which halves the time for a 6-month grid.
    The numbers are drawn a block of draws at a time (:data:`_BLOCK_CELLS`; the same
    stream as one call for all draws) into one reused buffer; each block's won
    positions come out draw by draw and deal by deal, and read their cell and amount
    from two arrays laid out like the block (built once), so every (draw, group,
    month) cell sums the same amounts in the same order as one pass over all draws:
    the same figures to the last bit.
    Uniforms and edges are single precision (plenty for probabilities); sums are
    double. ``scale`` multiplies every deal's per-month probabilities (the open-deal
    calibration's ratio); a row whose total would pass 1 is scaled back to 1.
    """
    n, m = month_prob.shape
    out = np.zeros((n_sims, n_groups, m))
    if n == 0 or n_sims == 0 or m == 0:
        return out
    amount = np.nan_to_num(np.asarray(amount, dtype=float), nan=0.0)
    probs = np.clip(np.asarray(p_win, dtype=float), 0.0, 1.0)[:, None] * np.clip(month_prob, 0.0, 1.0)
    probs = scaled_probabilities(probs, scale)
    # by_month[j]: P(won by the end of month j), one contiguous row per month
    by_month = np.cumsum(probs, axis=1).astype(np.float32).T.copy()
    cells = n_groups * m  # (group, month) cells per draw
    flat = out.reshape(-1)
    block = max(1, min(n_sims, _BLOCK_CELLS // n))  # draws per block
    buffer = np.empty((block, n), dtype=np.float32)
    months = np.empty((block, n), dtype=np.uint8 if m <= 256 else np.int64)
    # for each position of a block (draw i, deal d): the cell of (draw i, d's group, first month), and d's amount
    first_cell = (np.arange(block)[:, None] * cells + np.asarray(group, dtype=np.int64)[None, :] * m).reshape(-1)
    weight = np.tile(amount, block)
    for s0 in range(0, n_sims, block):
        u = buffer[:min(block, n_sims - s0)]
        rng.random(dtype=np.float32, out=u)
        hits = np.flatnonzero(u < by_month[m - 1])  # (draw, deal) positions won inside the grid, draw by draw
        # each number's month: the count of month edges at or below it, for the whole block at once (contiguous
        # single-byte work the CPU does many at a time), then read at the positions won
        month = months[:len(u)]
        np.greater_equal(u, by_month[0], out=month, casting="unsafe")
        for j in range(1, m - 1):
            month += u >= by_month[j]
        idx = first_cell[hits] + month.reshape(-1)[hits]
        flat[s0 * cells:(s0 + len(u)) * cells] += np.bincount(idx, weights=weight[hits], minlength=len(u) * cells)
    return out


def scaled_probabilities(probs: np.ndarray, scale: float) -> np.ndarray:
    """Per-month probabilities × ``scale``, each deal's total kept at or below 1 (a deal is won at most once)."""
    if scale == 1.0:
        return probs
    out = probs * float(scale)
    total = out.sum(axis=-1, keepdims=True)
    return np.where(total > 1.0, out / np.maximum(total, 1e-12), out)


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


__all__ = ["crps_from_draws", "draw_open_bookings", "quantiles", "range_drivers", "scaled_probabilities"]
