"""Simulate, don't multiply: bookings drawn deal by deal (won or not, and in which month).

Each open deal lands in exactly one outcome per draw: won in one of the grid's
months, won later, or not won, with probabilities ``p_win × P(month | won)``.
One uniform number per (draw, deal) picks it, so the whole company's draws are
a handful of array operations (no Python loop over deals). A few large deals
make the range wide, as they should. Deals are drawn independently given their
probabilities: correlated risk (one account's deals, one rep's quarter) is not
modelled here; the open-deal calibration multiplies each group's draws by shared
factors (:meth:`~dealscore.forecast.calibration.OpenDealCalibration.factors`), and
the backtest's coverage figure says how much that matters.

Each deal's numbers come from its own stream, keyed by the seed and the deal's id
(:func:`deal_streams`): draw ``i`` of a deal is the ``i``-th number of that stream,
whichever other deals are drawn beside it. One stream over all the deals in a
request gave a team different figures when a team-limited key asked than in the
full run, and a deal added or closed anywhere moved every other deal's numbers.
Now a group's draws depend on the seed and its own deals only, as its new
pipeline and calibration factors already did (:mod:`dealscore.forecast.creation`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

#: Uniform numbers drawn and handled at once (~80,000: 16 draws of 5,000 deals): few enough that the passes over
#: them and the block-shaped cell and amount arrays stay in the CPU's cache (on this 2-core EPYC with 512 KB of L2
#: per core, 40,000–80,000 took the least CPU; 640,000 a quarter more; with per-deal streams, 5,000 deals × 1,000
#: draws: 20,000 cells 22.9 ms, 40,000 20.1, 80,000 19.6, 160,000 20.6), made in buffers reused block after block
#: (a fresh 20 MB array per forecast cost more in page faults than making the numbers).
_BLOCK_CELLS = 80_000

# SplitMix64 (Steele, Lea & Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014; Java's
# SplittableRandom): output i of the stream keyed k is mix(k + (i+1)·GAMMA). A counter-based generator: any
# number of any stream is one array expression, so every deal's numbers for a block of draws come in a few passes.
_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
#: Bits of each uniform number: the top 31 of a SplitMix64 output (the mix's last step, ``z ^= z >> 31``, leaves
#: them as they are, so it is skipped). Finer than the float32 numbers used before (24 bits), and the thresholds
#: ``ceil(P · 2^31)`` fit in 32 bits with P = 1 included: a sure deal is always won, an impossible one never.
_BITS = 31


def deal_streams(deal_ids: Iterable[object], seed: int) -> np.ndarray:
    """Each deal's stream key (uint64): the first 8 bytes of BLAKE2b of ``"{seed}/{deal id}"``.

    The key depends on the seed and the deal's id only, so a deal draws the same
    numbers in every forecast with that seed, in every process (Python's ``hash()``
    of a text is salted per process). Two deals share a key with probability about
    2^-64 per pair; ids are unique per store, so a shared key is that chance only.
    """
    prefix, blake2b = f"{int(seed)}/", hashlib.blake2b  # one text per deal; the seed has no "/", so none is ambiguous
    ids = deal_ids.tolist() if isinstance(deal_ids, np.ndarray) else list(deal_ids)
    digest = b"".join([blake2b((prefix + str(d)).encode(), digest_size=8).digest() for d in ids])
    return np.frombuffer(digest, dtype="<u8").astype(np.uint64)


def uniform_bits(streams: np.ndarray, draws: np.ndarray, out: np.ndarray | None = None,
                 work: np.ndarray | None = None) -> np.ndarray:
    """The numbers of ``draws`` (0-based) from each of ``streams``: draws × deals, uint32 in [0, 2^31).

    Number ``i`` of stream ``k`` is the top 31 bits of SplitMix64's output ``i``
    for seed ``k``; divided by 2^31 it is a uniform number in [0, 1). ``out`` (uint32)
    and ``work`` (uint64, 2 × draws × deals) are buffers to reuse (allocated when None).
    """
    streams = np.asarray(streams, dtype=np.uint64)
    steps = (np.asarray(draws, dtype=np.uint64) + np.uint64(1)) * _GAMMA  # wraps modulo 2^64, as SplitMix64 does
    shape = (len(steps), len(streams))
    z, t = np.empty((2, *shape), dtype=np.uint64) if work is None else work
    np.add(steps[:, None], streams[None, :], out=z)
    np.right_shift(z, np.uint64(30), out=t)
    np.bitwise_xor(z, t, out=z)
    np.multiply(z, _MIX1, out=z)
    np.right_shift(z, np.uint64(27), out=t)
    np.bitwise_xor(z, t, out=z)
    np.multiply(z, _MIX2, out=z)
    x = np.empty(shape, dtype=np.uint32) if out is None else out
    np.right_shift(z, np.uint64(64 - _BITS), out=x, casting="unsafe")
    return x


def won_in_month(p_win: np.ndarray, month_prob: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """P(won in month ``j``) per deal (deals × months): ``p_win × P(month | won)``, times the calibration's ``scale``.

    The one rule the draws, the exact expectation and the range drivers read, so
    the three always describe the same deals.
    """
    probs = np.clip(np.asarray(p_win, dtype=float), 0.0, 1.0)[:, None] * np.clip(month_prob, 0.0, 1.0)
    return scaled_probabilities(probs, scale)


def expected_open_bookings(amount: np.ndarray, p_win: np.ndarray, month_prob: np.ndarray, group: np.ndarray,
                           n_groups: int, scale: float = 1.0) -> np.ndarray:
    """The exact expectation of :func:`draw_open_bookings` per group and month (groups × months).

    ``Σ amount × P(won in month)`` over each group's deals: what the draws average
    to, without their Monte Carlo noise (the calibration's factors have mean 1).
    Each group's sum adds its own deals in their order, so it is the same number
    to the last bit whatever other groups' deals are in the request.
    """
    n, m = np.shape(month_prob)
    out = np.zeros((n_groups, m))
    if n == 0 or m == 0:
        return out
    amount = np.nan_to_num(np.asarray(amount, dtype=float), nan=0.0)
    probs = won_in_month(p_win, month_prob, scale)
    g = np.asarray(group, dtype=np.int64)
    for j in range(m):
        out[:, j] = np.bincount(g, weights=amount * probs[:, j], minlength=n_groups)
    return out


def draw_open_bookings(amount: np.ndarray, p_win: np.ndarray, month_prob: np.ndarray, group: np.ndarray,
                       n_groups: int, n_sims: int, streams: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Bookings from open deals per draw, group and month (sims × groups × months).

    ``month_prob`` (deals × months) is P(close in month | won); what is left of a
    row's mass is "won after the last month". ``group`` holds each deal's group index;
    ``streams`` each deal's stream key (:func:`deal_streams`). One uniform number per
    (draw, deal), number ``i`` of the deal's stream for draw ``i`` (:func:`uniform_bits`),
    decides: the deal is won in month ``j`` when the number falls between its cumulative
    probabilities before and through ``j``. So a deal's outcomes depend on the seed and
    the deal alone, and a group's draws on its own deals alone.
    Only the (draw, deal) pairs won inside the grid (a quarter or so of them) are
    kept; each one's month is the count of month edges at or below its number, and a
    weighted ``bincount`` over (draw, group, month) sums the amounts. That touches the
    draws × deals numbers three times instead of three times per month (the earlier
    per-month 0/1 matrix products), which halves the time for a 6-month grid.
    The numbers are made a block of draws at a time (:data:`_BLOCK_CELLS`) into reused
    buffers; each block's won positions come out draw by draw and deal by deal, and read
    their cell and amount from two arrays laid out like the block (built once), so every
    (draw, group, month) cell sums the same amounts in the same order as one pass over
    all draws: the same figures to the last bit, whatever the block size.
    Numbers and edges are integers (``x < ceil(P · 2^31)`` is ``u < P`` for the uniform
    ``u = x / 2^31``); sums are double. ``scale`` multiplies every deal's per-month
    probabilities (the open-deal calibration's ratio); a row whose total would pass 1
    is scaled back to 1.
    """
    n, m = month_prob.shape
    out = np.zeros((n_sims, n_groups, m))
    if n == 0 or n_sims == 0 or m == 0:
        return out
    streams = np.asarray(streams, dtype=np.uint64)
    if streams.shape != (n,):
        raise ValueError(f"one stream per deal: {streams.shape} streams for {n} deals")
    amount = np.nan_to_num(np.asarray(amount, dtype=float), nan=0.0)
    probs = won_in_month(p_win, month_prob, scale)
    # by_month[j]: P(won by the end of month j) as a threshold on the numbers, one contiguous row per month
    top = float(1 << _BITS)
    by_month = np.clip(np.ceil(np.cumsum(probs, axis=1) * top), 0.0, top).astype(np.uint32).T.copy()
    cells = n_groups * m  # (group, month) cells per draw
    flat = out.reshape(-1)
    block = max(1, min(n_sims, _BLOCK_CELLS // n))  # draws per block
    numbers = np.empty((block, n), dtype=np.uint32)
    work = np.empty((2, block, n), dtype=np.uint64)
    months = np.empty((block, n), dtype=np.uint8 if m <= 256 else np.int64)
    # for each position of a block (draw i, deal d): the cell of (draw i, d's group, first month), and d's amount
    first_cell = (np.arange(block)[:, None] * cells + np.asarray(group, dtype=np.int64)[None, :] * m).reshape(-1)
    weight = np.tile(amount, block)
    for s0 in range(0, n_sims, block):
        k = min(block, n_sims - s0)
        u = uniform_bits(streams, np.arange(s0, s0 + k), out=numbers[:k], work=work[:, :k])
        hits = np.flatnonzero(u < by_month[m - 1])  # (draw, deal) positions won inside the grid, draw by draw
        # each number's month: the count of month edges at or below it, for the whole block at once (contiguous
        # single-byte work the CPU does many at a time), then read at the positions won
        month = months[:k]
        np.greater_equal(u, by_month[0], out=month, casting="unsafe")
        for j in range(1, m - 1):
            month += u >= by_month[j]
        idx = first_cell[hits] + month.reshape(-1)[hits]
        flat[s0 * cells:(s0 + k) * cells] += np.bincount(idx, weights=weight[hits], minlength=k * cells)
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


__all__ = ["crps_from_draws", "deal_streams", "draw_open_bookings", "expected_open_bookings", "quantiles",
           "range_drivers", "scaled_probabilities", "uniform_bits", "won_in_month"]
