"""Distinct cases of a block, so that text is worded once per case rather than once per row.

A backtest scores a hundred thousand snapshots whose explanations fall into a few
hundred cases (the same stages, percentage and facts); the API scores one deal.
Both go through the same wording code: :func:`distinct` packs nothing itself, it
only finds each row's case among integer keys, with the cheapest method for the
block's size (``np.unique`` sorts, which costs more than a dictionary on a few rows).
"""

from __future__ import annotations

import numpy as np

#: Up to this many rows, a dictionary finds the cases faster than a sort.
SMALL_BLOCK = 64


def distinct(keys: np.ndarray) -> tuple[list[int], np.ndarray]:
    """The distinct keys (ascending) and, per row, the position of its key among them."""
    keys = np.asarray(keys, dtype=np.int64)
    if len(keys) <= SMALL_BLOCK:
        values = keys.tolist()
        unique = sorted(set(values))
        at = {k: j for j, k in enumerate(unique)}
        return unique, np.fromiter((at[k] for k in values), dtype=np.intp, count=len(values))
    unique_arr, inverse = np.unique(keys, return_inverse=True)
    return unique_arr.tolist(), inverse.reshape(-1)
