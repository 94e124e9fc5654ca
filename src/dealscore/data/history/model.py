"""`DealHistory`: the tables of one company's CRM history, typed, and its point-in-time views.

Everything is kept in UTC without a time-zone attribute so that every later
comparison is between like values.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import pandas as pd

from dealscore.data.schema import TABLES
from dealscore.errors import DataValidationError
from dealscore.times import shown_apart


@dataclass(frozen=True)
class DealHistory:
    """The contract's tables as typed DataFrames, plus the data cut time.

    ``cut_at`` is when the export was taken: nothing in the history is later, and
    open deals are scored as of it. When unknown it is the latest timestamp seen.
    """

    accounts: pd.DataFrame
    deals: pd.DataFrame
    stage_history: pd.DataFrame
    activities: pd.DataFrame
    stage_truth: pd.DataFrame | None = None
    cut_at: pd.Timestamp | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def table(self, name: str) -> pd.DataFrame | None:
        """A table by its contract name."""
        return getattr(self, name)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The present tables by name, in contract order."""
        out = {name: getattr(self, name) for name in TABLES}
        return {k: v for k, v in out.items() if v is not None}

    def replace(self, **changes: Any) -> DealHistory:
        """A copy with some tables or fields replaced."""
        return replace(self, **changes)

    @property
    def data_cut(self) -> pd.Timestamp:
        """The export time: ``cut_at`` when known, else the latest timestamp in the history."""
        if self.cut_at is not None:
            return self.cut_at
        candidates = [
            self.deals["created_at"].max(),
            self.deals["closed_at"].max() if "closed_at" in self.deals else pd.NaT,
            self.stage_history["changed_at"].max() if len(self.stage_history) else pd.NaT,
            self.activities["occurred_at"].max() if len(self.activities) else pd.NaT,
        ]
        for tbl, col in (("stage_history", "recorded_at"), ("activities", "recorded_at")):
            frame = getattr(self, tbl)
            if col in frame and len(frame):
                candidates.append(frame[col].max())
        valid = [c for c in candidates if not pd.isna(c)]
        return max(valid) if valid else pd.Timestamp("1970-01-01")

    def for_deals(self, deal_ids: list[str] | pd.Index) -> DealHistory:
        """The sub-history of some deals (their accounts are all kept for profile lookups)."""
        ids = pd.Index(deal_ids)
        return self.replace(
            deals=self.deals[self.deals["deal_id"].isin(ids)],
            stage_history=self.stage_history[self.stage_history["deal_id"].isin(ids)],
            activities=self.activities[self.activities["deal_id"].isin(ids)],
            stage_truth=None
            if self.stage_truth is None
            else self.stage_truth[self.stage_truth["deal_id"].isin(ids)],
        )

    def as_known_at(self, as_of: pd.Timestamp | str) -> DealHistory:
        """What an export taken at ``as_of`` would have held.

        Events count from when they were *recorded* (``recorded_at`` when given).
        Deals not yet created vanish; deals closed later are open again. Columns of
        ``deals`` that hold current values cannot be rolled back: ``expected_close_date``
        is cleared (take it from ``stage_history``), ``amount`` is kept under the
        documented assumption that the amount is known from creation. This is the
        reference the point-in-time tests compare features against.
        """
        t = pd.Timestamp(as_of)
        deals = self.deals[self.deals["created_at"] <= t].copy()
        later = deals["closed_at"].notna() & (deals["closed_at"] > t)
        deals.loc[later, "closed_at"] = pd.NaT
        if "outcome" in deals:
            deals.loc[later, "outcome"] = None
        deals.loc[:, "expected_close_date"] = pd.NaT
        known = deals["deal_id"]
        sh = self.stage_history
        sh = sh[known_time(sh, "changed_at") <= t]
        acts = self.activities
        acts = acts[known_time(acts, "occurred_at") <= t]
        truth = self.stage_truth
        if truth is not None:
            truth = truth[truth["as_of"] <= t]
        return self.replace(
            deals=deals,
            stage_history=sh[sh["deal_id"].isin(known)],
            activities=acts[acts["deal_id"].isin(known)],
            stage_truth=truth,
            cut_at=t,
        )


def known_time(frame: pd.DataFrame, event_col: str) -> pd.Series:
    """When a fact became known: the later of ``recorded_at`` and the event time.

    Usually ``recorded_at`` is the later one (a call logged days after it happened).
    CRMs also record events *ahead* of time (a meeting scheduled for next week);
    such an event is not a fact before it has occurred, so the later time wins.
    """
    if "recorded_at" in frame:
        rec = frame["recorded_at"]
        event = frame[event_col]
        return rec.where(rec.notna() & (rec > event), event)
    return frame[event_col]


class KnowsDataCut(Protocol):
    """Anything that can tell a history's data cut: a :class:`DealHistory`, or the handle of a history
    too large to hold in one place (a partitioned history validated on a cluster), whose cut comes
    from all of its partitions without their rows ever meeting."""

    @property
    def data_cut(self) -> pd.Timestamp: ...


def refuse_after_cut(history: KnowsDataCut, as_of: pd.Timestamp, doing: str, fix: str | None = None) -> None:
    """Refuse to work as of a time after the history's data cut (``doing``: "score", "forecast", ...).

    What closed, was won or was created after the export was taken is not in it: as
    of a later time every deal open at the cut would look open and silent ever
    since, and new pipeline would be missing. One rule for every command and the
    forecast, so they accept and refuse the same times, whether the history is held
    in memory or partitioned across a cluster (hence any ``history`` that knows its
    cut). A request the history cannot answer, not a broken configuration: a 4xx for
    any caller that maps errors to HTTP. ``fix`` defaults to the advice every
    command gives, so paths that do the same work give the same fix.
    """
    cut = history.data_cut
    if pd.Timestamp(as_of) > cut:
        shown_t, shown_cut = shown_apart(pd.Timestamp(as_of), cut)
        raise DataValidationError(
            f"cannot {doing} as of {shown_t}: the history's data cut is "
            f"{shown_cut}, and what closed or was created after it is not in the export",
            fix=fix or f"{doing} as of the data cut or earlier (omit --as-of), or export the CRM again",
        )
