"""The prefix-query primitive every point-in-time feature rests on, against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dealscore.features.timeline import (
    NAT,
    NEVER,
    TimeCode,
    Timeline,
    prefix_sums,
    segmented_cummax_index,
    segmented_extreme,
)

SEC = 10**9


def _brute_count(group: np.ndarray, time: np.ndarray, qg: np.ndarray, qt: np.ndarray, strict: bool) -> np.ndarray:
    return np.array([int(((group == g) & ((time < t) if strict else (time <= t))).sum()) for g, t in zip(qg, qt,
                                                                                                        strict=True)])


@pytest.mark.parametrize("resolution", [SEC, 1_000, 1])
@pytest.mark.parametrize("n_groups", [1, 3, 40])
def test_prefix_counts_match_brute_force_at_any_resolution(resolution: int, n_groups: int) -> None:
    rng = np.random.default_rng(resolution + n_groups)
    n = 300
    group = rng.integers(0, n_groups, n)
    # ten years at the given resolution: with 40 groups at 1 ns this needs the rank encoding
    time = 1_600_000_000 * SEC + rng.integers(0, 10 * 365 * 86_400 * SEC // resolution, n) * resolution
    time[rng.random(n) < 0.05] = NEVER
    time[:20] = time[20:40]  # exact ties
    tl = Timeline(group, time, n_groups)
    assert (tl.group[1:] >= tl.group[:-1]).all()
    qg = rng.integers(-1, n_groups, 200)
    qt = np.concatenate([time[rng.integers(0, n, 100)], rng.integers(1_550_000_000, 2_000_000_000, 100) * SEC])
    qt = np.where(qt == NEVER, 1_700_000_000 * SEC, qt)
    for strict in (False, True):
        lo, hi = tl.prefix(qg, qt, strict=strict)
        expected = _brute_count(group, time, qg, qt, strict)
        assert ((hi - lo) == expected).all()
        assert (lo == tl.start[np.where(qg < 0, n_groups, qg)]).all()
        # the slice holds exactly those events
        for i in range(0, 200, 37):
            if qg[i] >= 0:
                assert set(tl.order[lo[i]:hi[i]]) == set(np.flatnonzero(
                    (group == qg[i]) & ((time < qt[i]) if strict else (time <= qt[i]))))


def test_rank_encoding_is_used_when_slots_would_overflow() -> None:
    times = np.array([0, 3 * 10**17 + 7], dtype=np.int64) + 1_600_000_000 * SEC
    assert TimeCode.fit(times, 5).distinct is None
    assert TimeCode.fit(times, 100).distinct is not None


def test_timeline_is_stable_for_ties_and_subsets_keep_order() -> None:
    group = np.array([1, 0, 1, 0, 1])
    time = np.array([5, 5, 5, 2, 1]) * SEC
    tl = Timeline(group, time, 2)
    assert tl.order.tolist() == [3, 1, 4, 0, 2]
    sub = tl.subset(np.array([True, False, True, True, False]))
    assert sub.order.tolist() == [3, 4, 0]
    assert sub.count(np.array([1, 0]), np.array([5 * SEC, 5 * SEC])).tolist() == [2, 1]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 50), st.booleans()), min_size=1, max_size=40),
       st.booleans(), st.booleans())
def test_segmented_extremes_match_brute_force(rows: list[tuple[int, int, bool]], minimum: bool,
                                              reverse: bool) -> None:
    rows = sorted(rows, key=lambda r: r[0])
    group = np.array([r[0] for r in rows])
    values = np.array([r[1] for r in rows], dtype=np.int64) * SEC
    valid = np.array([r[2] for r in rows])
    got = segmented_extreme(group, values, valid, minimum=minimum, reverse=reverse)
    empty = NEVER if minimum else NAT
    for i in range(len(rows)):
        same = group == group[i]
        window = same & ((np.arange(len(rows)) >= i) if reverse else (np.arange(len(rows)) <= i)) & valid
        want = (values[window].min() if minimum else values[window].max()) if window.any() else empty
        assert got[i] == want
    both = segmented_extreme(group, values, np.vstack([valid, ~valid]), minimum=minimum, reverse=reverse)
    assert (both[0] == got).all()


def test_segmented_cummax_index_and_prefix_sums() -> None:
    first = np.array([0, 0, 0, 3, 3])
    mask = np.array([False, True, False, False, True])
    assert segmented_cummax_index(first, mask).tolist() == [-1, 1, 1, -1, 4]
    sums = prefix_sums(np.array([[1, 2, 3], [0, 1, 0]]))
    assert sums.tolist() == [[0, 1, 3, 6], [0, 0, 1, 1]]
