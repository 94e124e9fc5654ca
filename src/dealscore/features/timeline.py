"""Point-in-time prefix queries over per-deal event streams, in plain numpy.

Every point-in-time feature is a question of the form "of the facts about this
deal that were visible at ``as_of``, how many / which last / what sum?". When the
facts of each deal are sorted by the time they became visible, the answer for a
snapshot is a *prefix* of that deal's slice, found by one binary search. A
feature that only holds for part of time (a touch counts in the 7-day window
from when it was logged until 7 days after it happened) is an *interval*
``[start, end)``, counted as ``#(start <= t) - #(end <= t)``.

The one trick is how to binary-search "group g, time <= t" for a million
snapshots in one vectorised call without losing nanosecond precision:
:class:`TimeCode` turns ``(group, time)`` into one exact, order-preserving int64
key, ``group * span + slot``. The slot is the time in nanoseconds when that fits
(a few groups), else counted in the coarsest unit that divides every event time
(whole seconds for CRM data); only when that cannot fit in 63 bits either does
it fall back to the time's rank among the event times. That keeps a million
snapshots and one deal scored now on the same code path, with no per-deal
Python loop.
"""

from __future__ import annotations

import numpy as np

NEVER = np.iinfo(np.int64).max
"""Time (int64 ns) of an event that never happens: never ``<=`` any real ``as_of``."""

NAT = np.iinfo(np.int64).min
"""``NaT`` viewed as int64."""

_LIMIT = 2**62
_UNITS = (10**9, 10**6, 10**3)


class TimeCode:
    """Exact order-preserving integer slots for event times (slot 0 = before all, last = never).

    ``distinct`` is set in rank mode (the sorted distinct finite event times);
    ``special`` says the fitted times held ``NEVER`` or ``NAT``.
    """

    __slots__ = ("base", "distinct", "span", "special", "unit")

    def __init__(self, base: int, unit: int, span: int, distinct: np.ndarray | None = None,
                 special: bool = False) -> None:
        self.base, self.unit, self.span, self.distinct, self.special = base, unit, span, distinct, special

    @classmethod
    def fit(cls, times: np.ndarray, n_groups: int) -> TimeCode:
        """Choose an exact encoding of ``times`` that fits ``n_groups`` groups in 63 bits.

        Nanoseconds when they fit (no unit to search), else the coarsest unit that
        divides every time, else the times' ranks. Every exact encoding answers
        every query the same, so the choice only decides what the search costs.
        """
        if not len(times):
            return cls(base=0, unit=1, span=3)
        lo, hi = int(times.min()), int(times.max())
        special = lo == NAT or hi == NEVER
        finite = times
        if special:
            finite = times[(times != NEVER) & (times != NAT)]
            if not len(finite):
                return cls(base=0, unit=1, span=3, special=True)
            lo, hi = int(finite.min()), int(finite.max())
        if (hi - lo + 3) * (n_groups + 2) < _LIMIT:
            # nanoseconds already fit (a few groups, e.g. one deal's what-if copies): searching for a coarser
            # unit costs a modulo pass per unit tried and buys nothing
            return cls(base=lo, unit=1, span=hi - lo + 3, special=special)
        unit = 1
        for u in _UNITS:
            if not (finite % u).any():
                unit = u
                break
        span = (hi - lo) // unit + 3
        if span * (n_groups + 2) < _LIMIT:
            return cls(base=lo, unit=unit, span=span, special=special)
        distinct = np.sort(finite)
        keep = np.ones(len(distinct), dtype=bool)
        keep[1:] = distinct[1:] != distinct[:-1]
        distinct = distinct[keep]
        return cls(base=0, unit=1, span=len(distinct) + 3, distinct=distinct, special=special)

    def event_slots(self, times: np.ndarray) -> np.ndarray:
        """Slot of each event time (``NEVER`` -> last slot; ``NAT`` -> 0)."""
        if not self.special:
            if self.distinct is None:
                return times - (self.base - 1) if self.unit == 1 else (times - self.base) // self.unit + 1
            return self.distinct.searchsorted(times, side="left") + 1
        never = times == NEVER
        nat = times == NAT
        if self.distinct is None:
            safe = np.where(never | nat, self.base, times)
            slots = 1 + (safe - self.base) // self.unit
        else:
            slots = 1 + self.distinct.searchsorted(times, side="left")
        slots = np.where(never, self.span - 1, slots)
        return np.where(nat, 0, slots)

    def query_slots(self, times: np.ndarray, *, strict: bool = False) -> np.ndarray:
        """Largest event slot counted for each query: events with slot <= it have time <= t (< t if strict).

        Below 0 when the query precedes every event (nothing counts).
        """
        if self.distinct is None and self.unit == 1:
            slots = times - (self.base if strict else self.base - 1)
        elif self.distinct is None:
            delta = times - self.base
            slots = -((-delta) // self.unit) if strict else delta // self.unit + 1
        else:
            slots = self.distinct.searchsorted(times, side="left" if strict else "right")
        # no lower clamp: a slot below 0 only reaches the previous group's keys, and prefix() never lets hi fall
        # below the group's start
        return np.minimum(slots, self.span - 2)

    def decode(self, slots: np.ndarray) -> np.ndarray:
        """Event time of each slot >= 1 (callers mask slot 0 themselves)."""
        if self.distinct is None:
            return slots + (self.base - 1) if self.unit == 1 else self.base + (slots - 1) * self.unit
        return self.distinct[np.clip(slots - 1, 0, max(len(self.distinct) - 1, 0))] if len(self.distinct) else slots


class Timeline:
    """Events sorted by ``(group, time)`` answering "which events of group g have time <= t".

    ``group`` holds ints in ``[0, n_groups)``; ``time`` int64 nanoseconds (``NEVER`` for
    events that never become true). The sort is stable, so callers decide how ties
    are ordered by the order they pass rows in. ``order`` maps sorted positions to
    input rows (use it to line up per-event weights). Queries with group ``-1``
    (unknown) get empty prefixes.
    """

    __slots__ = ("_code", "_keys", "group", "n_groups", "order", "start", "time")

    def __init__(self, group: np.ndarray, time: np.ndarray, n_groups: int) -> None:
        if n_groups == 1:
            # One group (one deal scored now): the raw times already are exact, order-preserving keys
            # (NAT sorts first, NEVER last), so the encoding and its passes over the times are skipped.
            self._code: TimeCode | None = None
            keys = time
        else:
            self._code = TimeCode.fit(time, n_groups)
            keys = group * self._code.span + self._code.event_slots(time)
        if len(keys) > 1 and not (keys[1:] >= keys[:-1]).all():
            self.order = keys.argsort(kind="stable")
            keys, group, time = keys[self.order], group[self.order], time[self.order]
        else:
            self.order = np.arange(len(keys))
        self._keys, self.group, self.time, self.n_groups = keys, group, time, n_groups
        self.start = np.zeros(n_groups + 2, dtype=np.int64)
        if n_groups == 1:
            self.start[1:] = len(keys)
        elif len(keys):
            np.bincount(group, minlength=n_groups + 1).cumsum(out=self.start[1:])

    def __len__(self) -> int:
        return len(self.time)

    def subset(self, mask: np.ndarray) -> Timeline:
        """The events where ``mask`` (in sorted order) holds, as a timeline of its own (no re-sorting)."""
        sub = object.__new__(Timeline)
        sub._code, sub.n_groups = self._code, self.n_groups
        sub._keys, sub.group, sub.time = self._keys[mask], self.group[mask], self.time[mask]
        sub.order = self.order[mask]
        sub.start = np.zeros(self.n_groups + 2, dtype=np.int64)
        if self.n_groups == 1:
            sub.start[1:] = len(sub.group)
        elif len(sub.group):
            np.bincount(sub.group, minlength=self.n_groups + 1).cumsum(out=sub.start[1:])
        return sub

    def prefix(self, q_group: np.ndarray, q_time: np.ndarray, *, strict: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Slice ``[lo, hi)`` of each query's group holding its events with time <= t (< t if strict)."""
        if self._code is None:  # one group: search the times themselves (NEVER events never count)
            hi = self._keys.searchsorted(np.minimum(q_time, NEVER - 1), side="left" if strict else "right")
            if not q_group.any():
                return np.zeros(len(hi), dtype=np.int64), hi
            g = q_group % 2
            lo = self.start[g]
            return lo, np.where(g == 0, hi, lo)
        g = q_group % (self.n_groups + 1)  # -1 (unknown) -> the empty group n_groups
        q = g * self._code.span + self._code.query_slots(q_time, strict=strict)
        hi = self._keys.searchsorted(q, side="right")
        lo = self.start[g]
        return lo, np.maximum(hi, lo)

    def count(self, q_group: np.ndarray, q_time: np.ndarray, *, strict: bool = False) -> np.ndarray:
        """Number of events of each query's group with time <= t (< t if strict)."""
        lo, hi = self.prefix(q_group, q_time, strict=strict)
        return hi - lo

    def group_end(self, q_group: np.ndarray) -> np.ndarray:
        """End position (exclusive) of each query's group slice."""
        return self.start[q_group % (self.n_groups + 1) + 1]


def prefix_sums(weights: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """Cumulative sums along the events with a leading zero, so a slice sum is ``cum[..., hi] - cum[..., lo]``.

    ``weights`` is ``(n,)`` or ``(k, n)``: one row per quantity, events along the last
    axis, which keeps both the running sum and the per-snapshot gathers contiguous.
    """
    out = np.zeros((*weights.shape[:-1], weights.shape[-1] + 1), dtype=dtype)
    weights.cumsum(axis=-1, out=out[..., 1:])  # the method: np.cumsum adds a Python dispatch layer per call
    return out


def take(values: np.ndarray, idx: np.ndarray, mask: np.ndarray, fill: float | int) -> np.ndarray:
    """``values[idx]`` where mask holds, ``fill`` elsewhere (safe when ``values`` is empty)."""
    if not len(values):
        return np.full(len(idx), fill, dtype=np.result_type(values.dtype, type(fill)))
    return np.where(mask, values[np.where(mask, idx, 0)], fill)


def segmented_cummax_index(first: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """For each position of a group-sorted array, the last position <= it (same group) where mask holds.

    ``first`` gives each position's group start. Returns -1 where there is none.
    Positions grow with the group because the array is group-sorted, so a plain
    running maximum suffices once earlier groups are cut off.
    """
    idx = np.where(mask, np.arange(len(mask)), -1)
    if not len(idx):
        return idx
    run = np.maximum.accumulate(idx)
    return np.where(run >= first, run, -1)


def segmented_extreme(group: np.ndarray, values: np.ndarray, valid: np.ndarray | None = None, *,
                      minimum: bool = False, reverse: bool = False) -> np.ndarray:
    """Running max (or min) of int64 times within each group of a group-sorted array.

    ``valid`` may be ``(k, n)``: one row per subset of events (e.g. per activity type),
    giving ``k`` running extremes in one pass; None counts every event. ``reverse``
    runs from the end of each group (suffix extremes). Positions where no valid
    value has been seen yet get ``NAT`` for a max and ``NEVER`` for a min.
    """
    empty = NEVER if minimum else NAT
    if len(values) == 0:
        return np.full(values.shape if valid is None else valid.shape, empty, dtype=np.int64)
    if group[0] == group[-1]:  # one group (e.g. one deal scored now): a plain running extreme
        v = values if valid is None else np.where(valid, values, empty)
        ufunc = np.minimum if minimum else np.maximum
        return ufunc.accumulate(v[..., ::-1], axis=-1)[..., ::-1] if reverse else ufunc.accumulate(v, axis=-1)
    top = int(group[-1])  # group-sorted: the last group is the largest
    code = TimeCode.fit(values, top + 1)
    slots = code.event_slots(values)
    if minimum:
        slots = code.span - slots  # a larger slot now means an earlier time
    group = np.asarray(group, dtype=np.int64)
    g = (top - group if reverse else group) * code.span
    keys = g + (slots if valid is None else np.where(valid, slots, 0))
    if reverse:
        run = np.maximum.accumulate(keys[..., ::-1], axis=-1)[..., ::-1]
    else:
        run = np.maximum.accumulate(keys, axis=-1)
    found = run - g  # the extreme's slot (flipped for a min); 0: nothing valid yet
    seen = found > 0
    return np.where(seen, code.decode(code.span - found if minimum else found), empty)
