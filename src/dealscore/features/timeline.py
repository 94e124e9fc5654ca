"""Point-in-time prefix queries over per-deal event streams, in plain numpy.

Every point-in-time feature is a question of the form "of the facts about this
deal that were visible at ``as_of``, how many / which last / what sum?". When the
facts of each deal are sorted by the time they became visible, the answer for a
snapshot is a *prefix* of that deal's slice, found by one binary search. A
feature that only holds for part of time (a touch counts in the 7-day window
from when it was recorded until 7 days after it happened) is an *interval*
``[start, end)``, counted as ``#(start <= t) - #(end <= t)``.

The one trick here is how to binary-search "group g, time <= t" in one
vectorised call without losing nanosecond precision: times are replaced by their
rank among the sorted event times, so ``group * (n + 1) + rank`` is an exact,
overflow-free int64 key. That keeps a million snapshots and one deal scored now
on the same code path, with no per-deal Python loop.
"""

from __future__ import annotations

import numpy as np

NEVER = np.iinfo(np.int64).max
"""Time (int64 ns) of an event that never happens: never ``<=`` any real ``as_of``."""

NAT = np.iinfo(np.int64).min
"""``NaT`` viewed as int64."""


def sort_order(group: np.ndarray, *times: np.ndarray) -> np.ndarray:
    """Stable order by group, then by each time key in turn (ties keep input order)."""
    return np.lexsort((*reversed(times), group))


class Timeline:
    """Events sorted by ``(group, time)`` answering "which events of group g have time <= t".

    ``group`` holds ints in ``[0, n_groups)``; ``time`` int64 nanoseconds (``NEVER`` for
    events that never become true). Both must already be sorted by ``(group, time)``;
    build the order with :func:`sort_order`, which also lets callers break ties their
    own way. Queries with group ``-1`` (unknown) get empty prefixes.
    """

    __slots__ = ("_keys", "_m", "_sorted_times", "group", "n_groups", "start", "time")

    def __init__(self, group: np.ndarray, time: np.ndarray, n_groups: int) -> None:
        self.group = group
        self.time = time
        self.n_groups = n_groups
        self._sorted_times = np.sort(time)
        self._m = len(time) + 1
        rank = np.searchsorted(self._sorted_times, time, side="right")
        self._keys = group.astype(np.int64) * self._m + rank
        counts = np.bincount(group, minlength=n_groups + 1) if len(group) else np.zeros(n_groups + 1, np.int64)
        self.start = np.zeros(n_groups + 2, dtype=np.int64)
        np.cumsum(counts, out=self.start[1:])

    def __len__(self) -> int:
        return len(self.time)

    def prefix(self, q_group: np.ndarray, q_time: np.ndarray, *, strict: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Slice ``[lo, hi)`` of each query's group holding its events with time <= t (< t if strict)."""
        g = np.where(q_group < 0, self.n_groups, q_group).astype(np.int64)
        # An event of rank k = #(times <= x) has x <= t iff k <= #(times <= t), and x < t iff k <= #(times < t).
        r = np.searchsorted(self._sorted_times, q_time, side="left" if strict else "right")
        hi = np.searchsorted(self._keys, g * self._m + r, side="right")
        lo = self.start[g]
        return lo, np.maximum(hi, lo)

    def count(self, q_group: np.ndarray, q_time: np.ndarray, *, strict: bool = False) -> np.ndarray:
        """Number of events of each query's group with time <= t (< t if strict)."""
        lo, hi = self.prefix(q_group, q_time, strict=strict)
        return hi - lo


def prefix_sums(weights: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """Cumulative sums with a leading zero row, so a slice sum is ``cum[hi] - cum[lo]``."""
    out = np.zeros((len(weights) + 1, *weights.shape[1:]), dtype=dtype)
    np.cumsum(weights, axis=0, out=out[1:])
    return out


def take(values: np.ndarray, idx: np.ndarray, mask: np.ndarray, fill: float | int) -> np.ndarray:
    """``values[idx]`` where mask holds, ``fill`` elsewhere (safe when ``values`` is empty)."""
    if not len(values):
        return np.full(len(idx), fill, dtype=np.result_type(values.dtype, type(fill)))
    return np.where(mask, values[np.where(mask, idx, 0)], fill)


def segmented_cummax_index(group: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """For each position of a group-sorted array, the last position <= it (same group) where mask holds.

    Returns -1 where there is none. Positions grow with the group because the array is
    group-sorted, so a plain running maximum suffices once earlier groups are cut off.
    """
    idx = np.where(mask, np.arange(len(mask)), -1)
    run = np.maximum.accumulate(idx) if len(idx) else idx
    if len(run):
        first_of_group = np.searchsorted(group, group, side="left")
        run = np.where(run >= first_of_group, run, -1)
    return run


def segmented_cumextreme(group: np.ndarray, values: np.ndarray, valid: np.ndarray, *, reverse: bool = False,
                         minimum: bool = False) -> np.ndarray:
    """Running max (or min) of int64 ``values`` within each group of a group-sorted array.

    ``reverse`` runs from the end of each group (suffix extremes). Positions where no
    valid value has been seen yet get ``NAT`` for a max and ``NEVER`` for a min. Values
    are replaced by ranks so the group offset cannot overflow.
    """
    n = len(values)
    empty = NEVER if minimum else NAT
    if n == 0:
        return np.full(0, empty, dtype=np.int64)
    uniq = np.unique(values[valid])
    m = len(uniq) + 1
    rank = np.searchsorted(uniq, values) + 1
    if minimum:
        rank = m - rank  # larger rank = smaller value
    rank = np.where(valid, rank, 0)
    keys = group.astype(np.int64) * (m + 1) + rank
    if reverse:
        # a suffix extreme runs backwards: group order is reversed too, so offsets still separate groups
        keys = (group.max() - group).astype(np.int64) * (m + 1) + rank
        run = np.maximum.accumulate(keys[::-1])[::-1]
        base = (group.max() - group).astype(np.int64) * (m + 1)
    else:
        run = np.maximum.accumulate(keys)
        base = group.astype(np.int64) * (m + 1)
    r = run - base
    r = np.where(r > 0, r, 0)
    if minimum:
        r = np.where(r > 0, m - r, 0)
    out = np.full(n, empty, dtype=np.int64)
    has = r > 0
    out[has] = uniq[r[has] - 1]
    return out
