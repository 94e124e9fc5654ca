"""Real stages without audited labels: learn how a company's reps record, then read the history through it.

No CRM export carries the stage a deal was *really* in. It carries the stage a rep
typed in (days or weeks late, sometimes ahead of the evidence, sometimes never)
and the touchpoints the real stage produced. :class:`StageLabeler` estimates,
for every deal and stage, when the deal really entered that stage:

1. **Evidence.** Each stage's key touchpoints (the taxonomy's ``key_touchpoints``:
   the first buyer reply or meeting for qualification, a meeting with the
   decision maker or with several people for discovery, the demo for solution,
   the proposal, the contract) mark its entry when they appear. Where some deals
   carry audited ``stage_truth``, the typical delay between the real entry and its
   evidence is learned from them and taken off.
2. **Recording habits.** Comparing, stage by stage, when each rep *declared* a
   stage with when its evidence appeared gives each rep's typical offset (the
   lag; negative for reps who type stages in before their evidence), the share of
   stages entered ahead of the evidence and of stages skipped. Per-rep figures
   are shrunk towards the company's (``lag_shrinkage`` stage entries' worth), so a
   rep with few deals inherits the company's habit.
3. **Reading the declared stage.** Where a stage left no evidence (an unlogged
   meeting, a demo never recorded), its entry is the declared entry corrected by
   the rep's own offset.
4. **Hindsight and order.** Real stages only move forward: entering a later stage
   means the earlier ones were entered by then (a skipped stage is entered at the
   same moment); a won deal passed negotiation before its close.

The real stage at any moment is then the last stage entered by that moment.
These labels may look ahead (that is what labels are for); the LightGBM stage
model learns to predict them from point-in-time features and serves in real
time. All of it is a few vectorised passes over the history's rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from dealscore.data.history import DealHistory
from dealscore.errors import ConfigError
from dealscore.features.inputs import as_ns, deal_codes, deal_index
from dealscore.features.timeline import NAT
from dealscore.taxonomy import StageTaxonomy
from dealscore.times import DAY_NS

#: An entry typed in more than this many days before its evidence counts as "ahead of evidence".
AHEAD_DAYS = 1.0


def _activity_markers(history: DealHistory) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Rows (deal code, time ns) of each kind of touchpoint a key_touchpoints name can refer to."""
    a = history.activities
    if not len(a):
        empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        return {k: empty for k in ("inbound_reply", "meeting", "decision_maker", "demo", "proposal", "contract")}
    deal = deal_codes(deal_index(history.deals), a["deal_id"], table="activities")
    t = as_ns(a["occurred_at"], table="activities", column="occurred_at")

    def col(name: str) -> np.ndarray:
        return a[name].astype(object).to_numpy() if name in a else np.full(len(a), None, dtype=object)

    typ, direction, role, contact = col("type"), col("direction"), col("contact_role"), col("contact_id")
    meeting = typ == "meeting"
    # a meeting with the decision maker, or with several people the same day (a lead may itself be the
    # decision maker, so any touch with them would mark the first e-mail)
    day = t // DAY_NS
    m = pd.DataFrame({"deal": deal[meeting], "day": day[meeting], "c": contact[meeting]})
    width = m.groupby(["deal", "day"])["c"].transform("nunique").to_numpy() if len(m) else np.zeros(0)
    broad = np.zeros(len(a), dtype=bool)
    broad[np.flatnonzero(meeting)] = width >= 2
    masks = {
        "inbound_reply": direction == "inbound",
        "meeting": meeting,
        "decision_maker": meeting & ((role == "decision_maker") | broad),
        "demo": typ == "demo",
        "proposal": typ == "proposal",
        "contract": typ == "contract",
        "outbound_touch": direction == "outbound",
    }
    return {k: (deal[v], t[v]) for k, v in masks.items()}


_ALIASES = {"first_meeting": "meeting"}


class StageLabeler:
    """Estimate each deal's real stage over time from evidence and each rep's learned recording habits.

    scikit-learn style: ``__init__`` stores parameters, :meth:`fit` returns self and
    learns ``delay_days_`` (evidence after the real entry, per stage), ``rep_offset_days_``,
    ``habits_`` (per rep: stage entries compared, lag, ahead and skipped shares),
    ``company_lag_days_``, ``company_ahead_share_``, ``company_offset_days_`` and
    ``n_fit_deals_``. :meth:`label` gives the real stage at any snapshots.
    """

    def __init__(
        self,
        stages: Sequence[str],
        key_touchpoints: Mapping[str, Sequence[str]] | None = None,
        lag_shrinkage: float = 10.0,
        coverage_limit: float = 0.9,
        precise_days: float = 2.0,
        use_outcome: bool = True,
    ) -> None:
        self.stages = stages
        self.key_touchpoints = key_touchpoints
        self.lag_shrinkage = lag_shrinkage
        self.coverage_limit = coverage_limit
        self.precise_days = precise_days
        self.use_outcome = use_outcome

    @classmethod
    def for_taxonomy(cls, taxonomy: StageTaxonomy, **params: Any) -> StageLabeler:
        """A labeler whose evidence follows the taxonomy's ``key_touchpoints``."""
        keys = {s.name: list(getattr(s, "key_touchpoints", None) or []) for s in taxonomy.stages}
        return cls(taxonomy.names, key_touchpoints=keys, **params)

    # ------------------------------------------------------------------ per-deal entry times

    def _evidence_entries(self, history: DealHistory) -> np.ndarray:
        """(deals x stages) days since origin of each stage's first key touchpoint (inf: none)."""
        n, n_s = len(history.deals), len(self.stages)
        out = np.full((n, n_s), np.inf)
        markers = _activity_markers(history)
        keys = dict(self.key_touchpoints or {})
        for j, name in enumerate(self.stages):
            if j == 0:
                continue
            for touch in keys.get(name, []):
                deal, t = markers.get(_ALIASES.get(touch, touch), (np.zeros(0, np.int64), np.zeros(0, np.int64)))
                if len(deal):
                    np.minimum.at(out[:, j], deal, t / DAY_NS)
        return out

    def _declared_entries(self, history: DealHistory) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """First declared time (days) at or beyond each stage, whether each stage was declared exactly, and
        the stage declared at creation (per deal)."""
        n, n_s = len(history.deals), len(self.stages)
        first = np.full((n, n_s), np.inf)
        exact = np.zeros((n, n_s), dtype=bool)
        initial = np.zeros(n, dtype=np.int64)
        sh = history.stage_history
        if not len(sh):
            return first, exact, initial
        deal = deal_codes(deal_index(history.deals), sh["deal_id"], table="stage_history")
        t = as_ns(sh["changed_at"], table="stage_history", column="changed_at") / DAY_NS
        code = pd.Index(list(self.stages)).get_indexer(sh["stage"].astype(object))
        ok = code >= 0
        deal, t, code = deal[ok], t[ok], code[ok]
        o = np.lexsort((t, deal))
        deal, t, code = deal[o], t[o], code[o]
        is_first = np.r_[True, deal[1:] != deal[:-1]] if len(deal) else np.zeros(0, bool)
        initial[deal[is_first]] = code[is_first]
        exact[deal, code] = True
        for j in range(1, n_s):
            sel = code >= j
            np.minimum.at(first[:, j], deal[sel], t[sel])
        return first, exact, initial

    @staticmethod
    def _deal_times(history: DealHistory) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        d = history.deals
        created = as_ns(d["created_at"], table="deals", column="created_at") / DAY_NS
        closed_ns = as_ns(d["closed_at"], table="deals", column="closed_at") if "closed_at" in d \
            else np.full(len(d), NAT)
        closed = np.where(closed_ns != NAT, closed_ns / DAY_NS, np.inf)
        won = (d["outcome"].astype(object).to_numpy() == "won") if "outcome" in d else np.zeros(len(d), bool)
        return created, closed, won

    def _rep_codes(self, history: DealHistory) -> np.ndarray:
        d = history.deals
        owners = d["owner_id"].astype(object).where(d["owner_id"].notna(), "").to_numpy(dtype=object) \
            if "owner_id" in d else np.full(len(d), "", dtype=object)
        return pd.Index(self.rep_index_).get_indexer(owners)  # -1: unknown rep, the company's habits apply

    # ------------------------------------------------------------------ fit

    def fit(self, history: DealHistory, deal_ids: Sequence[str] | None = None) -> StageLabeler:
        """Learn evidence delays and each rep's recording habits from ``history`` (or its ``deal_ids``)."""
        if self.lag_shrinkage < 0:
            raise ConfigError(f"StageLabeler.lag_shrinkage must be >= 0 (got {self.lag_shrinkage})",
                              fix="use the default, 10 stage entries")
        d = history.deals
        rows = np.arange(len(d)) if deal_ids is None else np.unique(deal_codes(
            deal_index(d), pd.Series(list(deal_ids), dtype=object), table="deals"))
        owners = d["owner_id"].astype(object).where(d["owner_id"].notna(), "") if "owner_id" in d \
            else pd.Series([""] * len(d))
        self.rep_index_ = list(pd.unique(owners.to_numpy(dtype=object)))
        ev = self._evidence_entries(history)
        dec, exact, initial = self._declared_entries(history)
        created, _, _ = self._deal_times(history)
        self.delay_days_ = self._learn_delays(history, ev, rows)
        self.coverage_ = self._learn_coverage(ev, rows)
        ev = ev - self.delay_days_[None, :]
        rep = self._rep_codes(history)
        # stage entries where both the evidence and the rep's record exist, after the deal was opened there
        n_s = len(self.stages)
        jj = np.arange(n_s)[None, :]
        ok = np.isfinite(ev) & np.isfinite(dec) & (jj > initial[:, None]) & (jj > 0) & (ev > created[:, None] + 0.5)
        ok[np.setdiff1d(np.arange(len(d)), rows)] = False
        dd, sj = np.nonzero(ok)
        offset = dec[dd, sj] - ev[dd, sj]
        skipped_ok = np.isfinite(ev) & (jj > initial[:, None]) & (jj > 0) & np.isfinite(dec)
        skipped_ok[np.setdiff1d(np.arange(len(d)), rows)] = False
        sd, ssj = np.nonzero(skipped_ok)
        self._learn_habits(rep[dd], offset, rep[sd], ~exact[sd, ssj])
        self.n_fit_deals_ = len(rows)
        return self

    def _learn_coverage(self, ev: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Share of deals that reached a later stage (its evidence exists) showing each stage's own evidence.

        A stage whose evidence nearly always appears (a buyer's first reply) is judged by it alone; one
        whose evidence often goes unlogged (a meeting) falls back on the rep's corrected record.
        """
        n_s = len(self.stages)
        cov = np.zeros(n_s)
        e = ev[rows]
        for j in range(1, n_s):
            later = np.isfinite(e[:, j + 1:]).any(axis=1) if j + 1 < n_s else np.zeros(len(e), bool)
            cov[j] = float(np.isfinite(e[later, j]).mean()) if later.sum() >= 20 else 0.0
        return cov

    def _learn_delays(self, history: DealHistory, ev: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Median days from the audited entry of each stage to its first evidence (0 without stage_truth)."""
        n_s = len(self.stages)
        delays = np.zeros(n_s)
        truth = history.stage_truth
        if truth is None or not len(truth):
            return delays
        deal = deal_codes(deal_index(history.deals), truth["deal_id"], table="stage_truth")
        t = as_ns(truth["as_of"], table="stage_truth", column="as_of") / DAY_NS
        code = pd.Index(list(self.stages)).get_indexer(truth["stage"].astype(object))
        real = np.full((len(history.deals), n_s), np.inf)
        ok = (code >= 0) & np.isin(deal, rows)
        np.minimum.at(real, (deal[ok], code[ok]), t[ok])
        for j in range(1, n_s):
            both = np.isfinite(real[:, j]) & np.isfinite(ev[:, j])
            gap = ev[both, j] - real[both, j]
            gap = gap[(gap > -30) & (gap < 60)]  # an early demo or an evidence-less stage says nothing of delay
            if len(gap) >= 20:
                delays[j] = float(np.median(gap))
        return delays

    def _learn_habits(self, rep: np.ndarray, offset: np.ndarray, skip_rep: np.ndarray, skipped: np.ndarray) -> None:
        """Per rep: typical lag, ahead share, signed offset and skipped share, each shrunk to the company's."""
        n_reps = len(self.rep_index_)
        ahead = offset < -AHEAD_DAYS
        late = np.maximum(offset, 0.0)
        self.company_lag_days_ = float(np.median(late[~ahead])) if (~ahead).any() else 0.0
        self.company_ahead_share_ = float(ahead.mean()) if len(ahead) else 0.0
        self.company_offset_days_ = float(np.median(offset)) if len(offset) else 0.0
        frame = pd.DataFrame({"rep": rep, "offset": offset, "ahead": ahead, "late": late})
        g = frame.groupby("rep")
        idx = range(n_reps)
        n_all = g.size().reindex(idx, fill_value=0).to_numpy(dtype=float)
        n_ahead = g["ahead"].sum().reindex(idx, fill_value=0).to_numpy(dtype=float)
        med_offset = g["offset"].median().reindex(idx).fillna(0.0).to_numpy(dtype=float)
        not_ahead = frame[~frame["ahead"]].groupby("rep")["late"]
        n_late = not_ahead.size().reindex(idx, fill_value=0).to_numpy(dtype=float)
        med_late = not_ahead.median().reindex(idx).fillna(0.0).to_numpy(dtype=float)
        k = self.lag_shrinkage
        lag = (n_late * med_late + k * self.company_lag_days_) / np.maximum(n_late + k, 1e-9)
        ahead_share = (n_ahead + k * self.company_ahead_share_) / np.maximum(n_all + k, 1e-9)
        spread = g["offset"].quantile(0.75) - g["offset"].quantile(0.25)
        spread = spread.reindex(idx).fillna(0.0).to_numpy(dtype=float) / 1.349
        company_spread = float(np.subtract(*np.percentile(offset, [75, 25]))) / 1.349 if len(offset) else 0.0
        self.company_spread_days_ = company_spread
        self.rep_spread_days_ = np.r_[(n_all * spread + k * company_spread) / np.maximum(n_all + k, 1e-9),
                                      company_spread]
        self.rep_offset_days_ = np.r_[(n_all * med_offset + k * self.company_offset_days_)
                                      / np.maximum(n_all + k, 1e-9), self.company_offset_days_]
        sk = pd.DataFrame({"rep": skip_rep, "s": skipped}).groupby("rep")["s"]
        skipped_share = (sk.sum().reindex(idx, fill_value=0) / sk.size().reindex(idx, fill_value=0).clip(lower=1))
        self.habits_ = pd.DataFrame({
            "rep_id": [str(r) for r in self.rep_index_],
            "stage_entries": n_all.astype(int),
            "lag_days": lag.round(1),
            # the rep's own entries' share of lag_days (the rest is the company's): what the sentences lean on
            "lag_weight": (n_late / np.maximum(n_late + k, 1e-9)).round(3),
            "ahead_share": ahead_share.round(3),
            "skipped_share": skipped_share.to_numpy(dtype=float).round(3),
        }).sort_values(["lag_days", "rep_id"], ascending=[False, True], kind="stable").reset_index(drop=True)

    # ------------------------------------------------------------------ label

    def entry_times(self, history: DealHistory) -> np.ndarray:
        """(deals x stages) days since the epoch when each deal really entered each stage (inf: not yet)."""
        n_s = len(self.stages)
        ev = self._evidence_entries(history) - self.delay_days_[None, :]
        dec, _, _ = self._declared_entries(history)
        created, closed, won = self._deal_times(history)
        rep = self._rep_codes(history)
        offset = self.rep_offset_days_[np.where(rep >= 0, rep, len(self.rep_offset_days_) - 1)]
        # where a stage left no evidence: the rep's record corrected by the rep's offset, unless the stage
        # nearly always leaves evidence (then its absence means the deal has not got there)
        from_record = np.maximum(dec, created[:, None]) - offset[:, None]
        trust_record = self.coverage_ < self.coverage_limit
        entry = np.where(np.isfinite(ev), ev, np.where(trust_record[None, :], from_record, np.inf))
        # a rep whose record keeps close to the evidence (a tight spread of offsets) records as things happen:
        # read by the dates typed in (evidence trails the real change by a day or two), which also skips the
        # misleading evidence (a demo held in discovery) the rule above would follow
        spread = self.rep_spread_days_[np.where(rep >= 0, rep, len(self.rep_spread_days_) - 1)]
        precise = (spread <= self.precise_days)[:, None] & (np.arange(n_s) > 0)[None, :]
        entry = np.where(precise, np.maximum(dec, created[:, None]), entry)
        entry[:, 0] = created
        entry = np.clip(entry, created[:, None], None)
        entry = np.where(entry < closed[:, None], entry, np.where(np.isfinite(entry), closed[:, None], entry))
        if self.use_outcome:
            entry[won, -1] = np.minimum(entry[won, -1], closed[won])
        # stages only move forward: entering a later stage means every earlier one was entered by then
        return np.minimum.accumulate(entry[:, ::-1], axis=1)[:, ::-1]

    def label(self, history: DealHistory, snapshots: pd.DataFrame) -> pd.DataFrame:
        """The inferred real stage at each snapshot (the last stage entered by its ``as_of``)."""
        q = deal_codes(deal_index(history.deals), snapshots["deal_id"], table="snapshots")
        t = as_ns(snapshots["as_of"], table="snapshots", column="as_of") / DAY_NS
        entry = self.entry_times(history)
        stage = (entry[q] <= t[:, None]).sum(axis=1) - 1
        names = np.array([*self.stages, None], dtype=object)
        return pd.DataFrame({"real_stage": names[np.where(stage >= 0, stage, len(self.stages))]},
                            index=snapshots.index)

    def hindsight_frame(self, history: DealHistory, snapshots: pd.DataFrame) -> pd.DataFrame:
        """What this labeler reads about each snapshot's deal, in days relative to the snapshot (hindsight).

        Per stage: when its evidence appeared (``evidence_<stage>``), when the rep first declared it or a
        later stage (``declared_<stage>``) and this labeler's estimate of its real entry (``entry_<stage>``),
        each minus the snapshot time (NaN: never); the stage this labeler and the record put the deal in;
        days to the close and its outcome; the deal's age; the rep's learned offset and spread. Where some
        deals carry audited stages, :class:`dealscore.models.audited_labels.AuditedLabelModel` learns from
        these readings how they map to the real stage. Labels only: it looks past the snapshot.
        """
        q = deal_codes(deal_index(history.deals), snapshots["deal_id"], table="snapshots")
        t = as_ns(snapshots["as_of"], table="snapshots", column="as_of") / DAY_NS
        ev = self._evidence_entries(history) - self.delay_days_[None, :]
        dec, _, initial = self._declared_entries(history)
        created, closed, won = self._deal_times(history)
        entry = self.entry_times(history)
        rep = self._rep_codes(history)
        r = np.where(rep >= 0, rep, len(self.rep_offset_days_) - 1)[q]

        def rel(x: np.ndarray) -> np.ndarray:
            return np.where(np.isfinite(x), x - t, np.nan)

        cols: dict[str, np.ndarray] = {}
        for j, name in enumerate(self.stages):
            if j == 0:
                continue
            cols[f"evidence_{name}"] = rel(ev[q, j])
            cols[f"declared_{name}"] = rel(dec[q, j])
            cols[f"entry_{name}"] = rel(entry[q, j])
        cols["labeler_stage"] = ((entry[q] <= t[:, None]).sum(axis=1) - 1).astype(float)
        cols["declared_stage"] = (dec[q, 1:] <= t[:, None]).sum(axis=1).astype(float)
        cols["initial_stage"] = initial[q].astype(float)
        cols["days_to_close"] = rel(closed[q])
        cols["won"] = np.where(np.isfinite(closed[q]), won[q].astype(float), np.nan)
        cols["age_days"] = t - created[q]
        cols["rep_offset_days"] = self.rep_offset_days_[r]
        cols["rep_spread_days"] = self.rep_spread_days_[r]
        return pd.DataFrame(cols, index=snapshots.index)

    def habits_summary(self, top: int | None = None) -> dict[str, Any]:
        """JSON-ready recording habits: the company's and each rep's (largest lag first)."""
        reps = self.habits_ if top is None else self.habits_.head(top)
        return {
            "company": {"lag_days": round(self.company_lag_days_, 1),
                        "ahead_share": round(self.company_ahead_share_, 3),
                        "offset_days": round(self.company_offset_days_, 1)},
            "reps": reps.to_dict(orient="records"),
        }


def describe_habits(summary: Mapping[str, Any], top: int = 5) -> list[str]:
    """Plain sentences a manager can coach with, largest lags first (for the report, API and page).

    e.g. "R0032 typically records stage changes about 12 days late; 8% of their stages are typed in ahead
    of their evidence (34 stage entries compared)". The lag is a median, not a mean ("typically"), and a
    rep's figures are shrunk towards the company's: where the company's figure weighs more than the rep's
    own entries (``lag_weight`` below one half) the sentence says it leans on the company's.
    """
    company = summary.get("company") or {}
    out = []
    if company:
        out.append(f"The company typically records stage changes about {company.get('lag_days', 0):.0f} days late; "
                   f"{company.get('ahead_share', 0):.0%} of stages are typed in ahead of their evidence.")
    compared = [rep for rep in summary.get("reps") or [] if rep.get("stage_entries", 0) > 0]  # 0: nothing to say
    for rep in compared[:top]:
        leans = (f"; too few to stand alone, so the lag leans on the company's {company.get('lag_days', 0):.0f} days"
                 if company and rep.get("lag_weight", 1.0) < 0.5 else "")
        out.append(f"{rep['rep_id']} typically records stage changes about {rep['lag_days']:.0f} days late; "
                   f"{rep['ahead_share']:.0%} of their stages are typed in ahead of their evidence "
                   f"({rep['stage_entries']} stage entries compared{leans}).")
    return out


__all__ = ["AHEAD_DAYS", "StageLabeler", "describe_habits"]
