"""Labels of training snapshots: did the deal end up won, and what stage was it really in.

Labels may look into the future (that is what they are for); features never do.

``real_stage`` comes from ``stage_truth`` (audited stages) when the deal has a
truth row at or before the snapshot: the latest such row; otherwise it is None.
Where no audited stage exists, training infers one with the recording-habits
estimator (:class:`dealscore.models.stage_labels.StageLabeler`), which learns
from the company's own history how its reps record; a fixed rule such as "the
stage recorded 14 days later" does not carry from one company to another (it is
worse than the declared stage on reps who record carefully).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dealscore.data.history import DealHistory
from dealscore.features.inputs import Vocab, as_ns, deal_codes, deal_index
from dealscore.features.timeline import Timeline, take
from dealscore.taxonomy import StageTaxonomy, default_taxonomy


def make_labels(history: DealHistory, snapshots: pd.DataFrame, taxonomy: StageTaxonomy | None = None) -> pd.DataFrame:
    """``won`` (1/0, NaN while open at the data cut) and the audited ``real_stage`` (None when unknown)."""
    tax = taxonomy or default_taxonomy()
    index = deal_index(history.deals)
    q = deal_codes(index, snapshots["deal_id"], table="snapshots")
    t = as_ns(snapshots["as_of"], table="snapshots", column="as_of")
    d = history.deals
    outcome = d["outcome"].to_numpy(dtype=object) if "outcome" in d else np.full(len(d), None, dtype=object)
    won_by_deal = np.where(outcome == "won", 1.0, np.where(outcome == "lost", 0.0, np.nan))
    stage_names = np.array([*tax.names, None], dtype=object)
    lookup = {n: i for i, n in enumerate(tax.names)}
    real = np.full(len(q), -1, dtype=np.int64)
    truth = history.stage_truth
    if truth is not None and len(truth):
        real = _latest_stage(index, truth, "stage_truth", "as_of", q, t, lookup, len(d))
    return pd.DataFrame({
        "won": won_by_deal[q],
        "real_stage": pd.Series(stage_names[np.where(real >= 0, real, len(tax.names))], dtype=object),
    }, index=snapshots.index)


def _latest_stage(index: Vocab, rows: pd.DataFrame, table: str, time_col: str, q: np.ndarray,
                  q_time: np.ndarray, lookup: dict[str, int], n_deals: int) -> np.ndarray:
    """Stage code of each deal's latest row with ``time_col`` <= the query time (-1: none)."""
    if not len(rows):
        return np.full(len(q), -1, dtype=np.int64)
    deal = deal_codes(index, rows["deal_id"], table=table)
    time = as_ns(rows[time_col], table=table, column=time_col)
    stage, _ = Vocab(tuple(lookup), lookup).codes(rows["stage"])
    by_time = Timeline(deal, time, n_deals)
    lo, hi = by_time.prefix(q, q_time)
    return take(stage[by_time.order], hi - 1, hi > lo, -1)
