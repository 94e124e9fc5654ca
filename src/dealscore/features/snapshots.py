"""Snapshots ``(deal_id, as_of)``: the moments at which a deal is described and scored.

Training snapshots follow a schedule that never looks ahead: every
``every_days`` from the deal's creation, plus the moment each stage change
became visible in the CRM, strictly before the close (or up to the data cut for
deals still open). Whether a deal closes later cannot move or remove a snapshot
before it, so the schedule itself carries no information about the outcome
(unlike "k days before close", which does).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dealscore._compat import frame_from_arrays
from dealscore.data.history import DealHistory
from dealscore.errors import DataValidationError
from dealscore.features.inputs import Table, as_ns, deal_codes, deal_index
from dealscore.features.timeline import NAT
from dealscore.times import DAY_NS, naive_utc

_COLUMNS = pd.Index(["deal_id", "as_of"])


def _frame(ids: np.ndarray, times: np.ndarray) -> pd.DataFrame:
    return frame_from_arrays(_COLUMNS, [np.asarray(ids, dtype=object), times.view("datetime64[ns]")])


def make_snapshots(history: DealHistory, *, every_days: float = 7, at_stage_changes: bool = True) -> pd.DataFrame:
    """Training snapshots for every deal across its open life, in the history's deal order, then by time.

    Each deal gets one at creation and every ``every_days`` after it, plus one when each
    stage change became visible (``recorded_at`` when later than ``changed_at``); all
    strictly before ``closed_at``, or at or before the data cut for open deals.
    """
    # NaN passes ``<= 0`` and infinity makes a step no integer holds: both would end in a traceback
    if not math.isfinite(every_days) or every_days <= 0 or round(every_days * DAY_NS) < 1:
        raise DataValidationError(f"every_days must be a finite number of days above zero, got {every_days}",
                                  fix="pass the snapshot interval in days, e.g. every_days=7 (--every-days 7)")
    index = deal_index(history.deals)
    d = history.deals
    created = as_ns(d["created_at"], table="deals", column="created_at")
    closed = as_ns(d["closed_at"], table="deals", column="closed_at") if "closed_at" in d else np.full(len(d), NAT)
    cut = _naive_utc(history.data_cut).value
    is_closed = closed != NAT
    step = round(every_days * DAY_NS)
    # count of k >= 0 with created + k*step < closed (closed) or <= cut (open)
    span = np.where(is_closed, closed - created - 1, cut - created)
    n = np.where(span >= 0, span // step + 1, 0)
    deal_pos = np.repeat(np.arange(len(d)), n)
    k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    times = created[deal_pos] + k * step
    if at_stage_changes and len(history.stage_history):
        sh = history.stage_history
        pos = deal_codes(index, sh["deal_id"], table="stage_history")
        seen = as_ns(sh["changed_at"], table="stage_history", column="changed_at")
        if "recorded_at" in sh:
            seen = np.maximum(seen, as_ns(sh["recorded_at"], table="stage_history", column="recorded_at"))
        end_ok = np.where(is_closed[pos], seen < closed[pos], seen <= cut)
        keep = end_ok & (seen >= created[pos])
        deal_pos = np.concatenate([deal_pos, pos[keep]])
        times = np.concatenate([times, seen[keep]])
    order = np.lexsort((times, deal_pos))
    deal_pos, times = deal_pos[order], times[order]
    dup = np.zeros(len(times), dtype=bool)
    dup[1:] = (deal_pos[1:] == deal_pos[:-1]) & (times[1:] == times[:-1])
    deal_pos, times = deal_pos[~dup], times[~dup]
    return _frame(np.array(index.names, dtype=object)[deal_pos], times)


def scoring_snapshots(history: DealHistory, as_of: pd.Timestamp | str | None = None) -> pd.DataFrame:
    """One snapshot per deal open at ``as_of`` (default: the data cut), in the history's deal order.

    Open means created at or before ``as_of`` and not closed at or before it.
    """
    t = _naive_utc(history.data_cut if as_of is None else as_of)
    index = deal_index(history.deals)
    d = Table(history.deals, "deals")
    created, closed = d.times("created_at"), d.times("closed_at")
    open_ = (created <= t.value) & ((closed == NAT) | (closed > t.value))
    ids = np.array(index.names, dtype=object)[open_]
    return _frame(ids, np.full(len(ids), t.value, dtype=np.int64))


def _naive_utc(value: pd.Timestamp | str) -> pd.Timestamp:
    """A time as a naive UTC nanosecond Timestamp (the convention of every validated history)."""
    return naive_utc(pd.Timestamp(value)).as_unit("ns")
