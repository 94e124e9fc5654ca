"""Time split by deal creation: train on earlier deals, test on later ones.

Whole deals are assigned to one slice, so the snapshots of a deal never straddle
train and test. Slices follow creation time: train, then a validation slice for
early stopping, then a calibration slice, then the test slice (the "most recent
holdout" the promotion gate compares on).

The open-deal bias, and how it is handled: labels exist only for deals closed by
the data cut. Among deals created shortly before the cut only the *fast* ones
have closed, and fast deals are not like the others (quick losses, small quick
wins), so a test slice taken from them would be biased. We therefore keep only
the *label cohort*: deals created at least one *label horizon* before the cut,
where the horizon is a high quantile (default 95 %) of the cycle time of closed
deals. Within the cohort nearly every deal has had time to close; the few still
open (the slowest ~5 %) are excluded and counted, and deals created after the
cohort end are excluded and counted too. Nothing is dropped silently: every
deal ends with a slice name, and the counts go into the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dealscore.training.config import require

SLICES = ("train", "validation", "calibration", "test")
#: A history in which no deal closed in this many days before its data cut gets a warning in the training report
#: and the CLI. A quarter: B2B teams close deals every quarter (quotas and forecasts are quarterly), so a quarter
#: without one close more likely means the export lost its recent outcomes (filtered on close date, a sync that
#: stopped) or its cut is later than when it was taken than a truly quiet quarter. Either way the split then
#: labels the cohort's deals by closes that stop early: only the deals that closed fast carry an outcome and the
#: test slice over-represents them. A warning, not a refusal: a small or seasonal team can have a quiet quarter,
#: and training on what there is remains the best available model.
RECENT_CLOSE_DAYS = 90
EXCLUDED_RECENT = "excluded_recent"
EXCLUDED_OPEN = "excluded_open"
EXCLUDED_TRAIN_LIMIT = "excluded_train_limit"


@dataclass
class DealSplit:
    """Slice of every deal plus the time boundaries and horizon that produced it."""

    assignment: pd.Series  # deal_id -> slice name
    horizon_days: float
    cohort_end: pd.Timestamp
    cut_at: pd.Timestamp
    boundaries: dict[str, pd.Timestamp] = field(default_factory=dict)

    def ids(self, name: str) -> pd.Index:
        """Deal ids in one slice."""
        return pd.Index(self.assignment.index[self.assignment.to_numpy() == name])

    def slice_of(self, deal_ids: Sequence[str] | pd.Series) -> np.ndarray:
        """Slice name for each deal id (``unknown`` for ids the split never saw)."""
        return pd.Series(deal_ids).map(self.assignment).fillna("unknown").to_numpy(dtype=object)

    def fitted_to(self) -> pd.Timestamp | None:
        """Creation time of the last deal a fitting step learned from (train, validation and calibration slices).

        Deals created after it were never fitted on (the test slice and everything later):
        the open-deal calibration measures the models' error on those (see
        :mod:`dealscore.forecast.calibration`).
        """
        ends = [self.boundaries[f"{n}_to"] for n in SLICES if n != "test" and f"{n}_to" in self.boundaries]
        return max(ends) if ends else None

    def counts(self) -> dict[str, int]:
        """Number of deals per slice, including the excluded groups."""
        return {k: int(v) for k, v in self.assignment.value_counts().sort_index().items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description for the report and MLflow params."""
        return {
            "horizon_days": round(float(self.horizon_days), 2),
            "cohort_end": self.cohort_end.isoformat(),
            "cut_at": self.cut_at.isoformat(),
            "boundaries": {k: v.isoformat() for k, v in self.boundaries.items()},
            "deals": self.counts(),
        }


def label_horizon_days(deals: pd.DataFrame, quantile: float) -> float:
    """Cycle time (days) by which ``quantile`` of closed deals had closed."""
    closed = deals[deals["closed_at"].notna()]
    if closed.empty:
        return 0.0
    cycle = (closed["closed_at"] - closed["created_at"]).dt.total_seconds() / 86400.0
    return float(np.quantile(cycle.to_numpy(), quantile))


def recent_closes_warning(deals: pd.DataFrame, cut_at: pd.Timestamp) -> str | None:
    """The warning when no deal closed in the :data:`RECENT_CLOSE_DAYS` days before the data cut (else None)."""
    cut = pd.Timestamp(cut_at)
    closed = pd.to_datetime(deals["closed_at"]).dropna()
    last = closed[closed <= cut].max() if len(closed) else pd.NaT
    if pd.notna(last) and last > cut - pd.Timedelta(days=RECENT_CLOSE_DAYS):
        return None
    when = (f"the last close was on {last:%Y-%m-%d}, {(cut - last).days} days before it" if pd.notna(last)
            else "no deal in the history has closed")
    return (f"no deal closed in the {RECENT_CLOSE_DAYS} days before the data cut {cut:%Y-%m-%d} ({when}): if the "
            f"export lost its recent outcomes or its cut is later than when it was taken, only fast-closing deals "
            f"carry an outcome and the test slice over-represents them. Check closed_at of the recent deals in the "
            f"export, or set cut_at in history.yaml to when the export was taken")


def split_deals(
    deals: pd.DataFrame,
    cut_at: pd.Timestamp,
    *,
    fractions: Sequence[float] = (0.6, 0.1, 0.1, 0.2),
    horizon_quantile: float = 0.95,
    max_train_deals: int | None = None,
) -> DealSplit:
    """Assign every deal to a time slice (see module docstring for the rules).

    ``fractions`` are shares of the labelled cohort for train, validation,
    calibration and test, in creation order. ``max_train_deals`` keeps only the
    most recent training deals (the others become ``excluded_train_limit``); it
    exists for learning-curve experiments and leaves the other slices unchanged,
    so such a run is compared on the very same holdout.
    """
    require("split.fractions", list(fractions))
    require("split.horizon_quantile", horizon_quantile)
    require("split.max_train_deals", max_train_deals)
    fr = np.asarray(fractions, dtype=float) / float(np.sum(fractions))  # exact shares (the sum may be off by 1e-3)
    cut = pd.Timestamp(cut_at)
    horizon = label_horizon_days(deals, horizon_quantile)
    cohort_end = cut - pd.Timedelta(days=horizon)

    d = deals[["deal_id", "created_at", "closed_at"]].copy()
    d = d.sort_values(["created_at", "deal_id"], kind="stable")
    assignment = pd.Series(EXCLUDED_RECENT, index=pd.Index(d["deal_id"].astype(str), name="deal_id"), dtype=object)
    in_cohort = (d["created_at"] <= cohort_end).to_numpy()
    closed = d["closed_at"].notna().to_numpy()
    assignment[in_cohort & ~closed] = EXCLUDED_OPEN

    labelled = d[in_cohort & closed]
    n = len(labelled)
    edges = np.round(np.cumsum(fr) * n).astype(int)
    starts = np.concatenate([[0], edges[:-1]])
    boundaries: dict[str, pd.Timestamp] = {}
    for name, lo, hi in zip(SLICES, starts, edges, strict=True):
        ids = labelled["deal_id"].astype(str).to_numpy()[lo:hi]
        assignment[ids] = name
        if hi > lo:
            boundaries[f"{name}_from"] = pd.Timestamp(labelled["created_at"].iloc[lo])
            boundaries[f"{name}_to"] = pd.Timestamp(labelled["created_at"].iloc[hi - 1])
    if max_train_deals is not None:
        train_ids = assignment.index[assignment.to_numpy() == "train"]
        if len(train_ids) > max_train_deals:
            drop = train_ids[: len(train_ids) - max_train_deals]
            assignment[drop] = EXCLUDED_TRAIN_LIMIT
    return DealSplit(assignment=assignment, horizon_days=horizon, cohort_end=cohort_end, cut_at=cut,
                     boundaries=boundaries)
