"""Stage features: the declared stage as the CRM showed it at ``as_of`` and how the deal moved.

Stage rows are ordered by the time they became visible (``seen`` = the later of
``changed_at`` and ``recorded_at``), which is how a CRM field behaves: it shows
the last value *entered*, even when the rep back-dated the change. With that
order every fact known at ``as_of`` is a prefix of the deal's rows, so each
row-level fact (is it a change, a regression, a pushed close date) is computed
once and a snapshot only needs one binary search.

Current values of ``deals`` (amount, expected close date) may have been edited
after ``as_of``; they are taken from the latest stage row carrying them. Where no
row carries them: the amount falls back to ``deals.amount`` ("amount known from
creation", DESIGN §5), and the expected close date falls back to
``deals.expected_close_date`` only when ``as_of`` is at or after the data cut,
because that is exactly what an export taken at ``as_of`` shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dealscore.features.inputs import DealRows, StageRows
from dealscore.features.timeline import NAT, Timeline, prefix_sums, segmented_cummax_index
from dealscore.times import DAY_NS


@dataclass(frozen=True)
class StageTimeline:
    """Stage rows sorted by (deal, seen, changed) with their row-level facts precomputed."""

    timeline: Timeline
    stage: np.ndarray
    changed: np.ndarray
    seen: np.ndarray
    run_start: np.ndarray
    max_order: np.ndarray
    counts: np.ndarray  # (4, n+1) prefix sums of [change, regression, skipped stages, close-date push]
    last_amount: np.ndarray
    last_close: np.ndarray
    amount: np.ndarray
    expected_close: np.ndarray


def prepare_stage(rows: StageRows, n_deals: int) -> StageTimeline:
    """Sort the stage rows by (deal, seen, changed) and derive every per-row fact once."""
    by_changed = rows.changed.argsort(kind="stable")  # ties in seen keep changed_at order
    timeline = Timeline(rows.deal[by_changed], rows.seen[by_changed], n_deals)
    order = by_changed[timeline.order]
    deal = timeline.group
    stage = rows.stage[order]
    changed = rows.changed[order]
    amount = rows.amount[order]
    ecd = rows.expected_close[order]
    n = len(deal)
    first = timeline.start[deal]  # position of each row's deal's first row
    same = np.arange(n) > first  # the previous row belongs to the same deal
    step = np.diff(stage, prepend=-1)
    change = same & (step != 0)
    run_start = changed[segmented_cummax_index(first, ~same | change)]
    has_ecd = ecd != NAT
    last_close = segmented_cummax_index(first, has_ecd)
    prev_close = np.where(same, np.roll(last_close, 1), -1)
    push = has_ecd & (prev_close >= 0) & (ecd > ecd[np.maximum(prev_close, 0)])
    facts = np.vstack([change, same & (step < 0), np.where(same & (step > 1), step - 1, 0), push])
    return StageTimeline(
        timeline=timeline, stage=stage, changed=changed, seen=timeline.time, run_start=run_start,
        max_order=_segmented_running_max(deal, stage), counts=prefix_sums(facts.astype(np.float64)),
        last_amount=segmented_cummax_index(first, ~np.isnan(amount)), last_close=last_close, amount=amount,
        expected_close=ecd,
    )


def _segmented_running_max(group: np.ndarray, small: np.ndarray) -> np.ndarray:
    """Running max of small non-negative ints within each group of a group-sorted array."""
    if not len(small):
        return small
    width = int(small.max()) + 2
    run = np.maximum.accumulate(group.astype(np.int64) * width + small + 1)
    return run - group.astype(np.int64) * width - 1


def stage_features(st: StageTimeline, deals: DealRows, q_deal: np.ndarray, q_time: np.ndarray,
                   data_cut: int | np.ndarray) -> dict[str, np.ndarray]:
    """Stage, amount and close-date facts of each snapshot, from rows visible at its ``as_of``."""
    lo, hi = st.timeline.prefix(q_deal, q_time)
    has = hi > lo
    cur = np.where(has, hi - 1, 0)
    nan = np.nan
    stage_code = np.where(has, st.stage[cur] if len(st.stage) else -1, -1)
    days_in_stage = np.where(has, (q_time - (st.run_start[cur] if len(st.stage) else 0)) / DAY_NS, nan)
    since_update = np.where(has, (q_time - (st.seen[cur] if len(st.stage) else 0)) / DAY_NS, nan)
    counts = st.counts[:, hi] - st.counts[:, lo]
    max_order = np.where(has, (st.max_order[cur] if len(st.stage) else 0) + 1.0, nan)
    # amount: latest visible row carrying one, else the deal's amount (assumed known from creation)
    amount = deals.amount[q_deal]
    close = np.where(q_time >= data_cut, deals.expected_close[q_deal], NAT)
    if len(st.stage):
        ia = np.where(has, st.last_amount[cur], -1)
        amount = np.where(ia >= 0, st.amount[np.maximum(ia, 0)], amount)
        ic = np.where(has, st.last_close[cur], -1)
        close = np.where(ic >= 0, st.expected_close[np.maximum(ic, 0)], close)
    return {
        "_stage_code": stage_code,
        "declared_stage_order": np.where(has, stage_code + 1.0, nan),
        "days_in_stage": days_in_stage,
        "n_stage_changes": counts[0],
        "n_regressions": counts[1],
        "n_skipped_stages": counts[2],
        "close_date_pushes": counts[3],
        "max_stage_order": max_order,
        "days_since_stage_update": since_update,
        "deal_age_days": (q_time - deals.created[q_deal]) / DAY_NS,
        "days_to_expected_close": np.where(close != NAT, (close - q_time) / DAY_NS, nan),
        "amount": amount,
    }


def won_stage_durations(st: StageTimeline, deals: DealRows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Days each won deal spent in each stage, as its stage history read at close.

    Returns ``(stage code, closed_at, days)`` per (won deal, stage). Only rows visible
    at the close count, so the figure for a deal never changes after it closed: a
    later snapshot sees the same number whether or not it was computed from a
    history cut at that snapshot.
    """
    won = np.flatnonzero((deals.won == 1.0) & (deals.closed != NAT))
    if not len(won) or not len(st.stage):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    lo, hi = st.timeline.prefix(won, deals.closed[won])
    sizes = hi - lo
    keep = sizes > 0
    won, lo, hi, sizes = won[keep], lo[keep], hi[keep], sizes[keep]
    rows = np.repeat(lo - np.cumsum(sizes) + sizes, sizes) + np.arange(sizes.sum())
    owner = np.repeat(np.arange(len(won)), sizes)
    # a row opens a run when it is the deal's first row or a change of stage
    first = np.zeros(len(rows), dtype=bool)
    first[np.cumsum(sizes) - sizes] = True
    change = st.counts[0, rows + 1] - st.counts[0, rows] > 0
    opens = first | change
    run_rows = rows[opens]
    run_owner = owner[opens]
    begin = st.changed[run_rows]
    end = np.empty(len(run_rows), dtype=np.int64)
    if len(run_rows):
        last = np.ones(len(run_rows), dtype=bool)
        last[:-1] = run_owner[1:] != run_owner[:-1]
        end[:-1] = begin[1:]
        end[last] = deals.closed[won[run_owner[last]]]
    days = np.maximum(end - begin, 0) / DAY_NS
    stage = st.stage[run_rows]
    key = run_owner * (int(stage.max()) + 1 if len(stage) else 1) + stage
    uniq, inv = np.unique(key, return_inverse=True)
    total = np.bincount(inv, weights=days, minlength=len(uniq))
    first_of = np.unique(inv, return_index=True)[1]
    return stage[first_of], deals.closed[won[run_owner[first_of]]], total
