"""`FeatureContext`: what other deals teach about a snapshot, point in time.

Owner and account win rates, an account's earlier deals and how long won deals
needed per stage all come from *other* deals, and only from deals closed (or
created) before the snapshot's ``as_of``. Training derives them from the
history it builds features on. The API only receives one deal, so the context
fitted on the training history travels in the model bundle and answers the same
questions for ``as_of`` = now: one code path, same figures.

Win rates are shrunk towards the overall rate of deals closed before ``as_of``
(``(wins + k * overall) / (closed + k)``), so an owner with two lucky wins does not
look like a 100% closer. Stage norms (median days won deals spent per stage) are
refreshed on a fixed weekly grid (Mondays 00:00 UTC): a snapshot uses the won
deals closed before the last checkpoint at or before its ``as_of``. A fixed grid
keeps the figures independent of which other snapshots are built in the same run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dealscore.data.history import DealHistory
from dealscore.errors import ModelNotReadyError
from dealscore.features.inputs import DealRows, Vocab, read_deals, read_stage_rows
from dealscore.features.spec import FeatureSpec
from dealscore.features.stage import StageTimeline, prepare_stage, won_stage_durations
from dealscore.features.timeline import NAT, NEVER, Timeline, prefix_sums, take
from dealscore.taxonomy import StageTaxonomy
from dealscore.times import DAY_NS

WEEK = 7 * DAY_NS
GRID_ANCHOR = pd.Timestamp("1970-01-05").value  # a Monday


def checkpoint(times: np.ndarray) -> np.ndarray:
    """The weekly stage-norm checkpoint at or before each time."""
    return GRID_ANCHOR + np.floor_divide(times - GRID_ANCHOR, WEEK) * WEEK


@dataclass(frozen=True)
class _Counts:
    """Deals per key (owner or account) closed / created over time, with their wins."""

    closed: Timeline
    wins: np.ndarray
    created: Timeline

    @classmethod
    def of(cls, key: np.ndarray, n_keys: int, created: np.ndarray, closed: np.ndarray, won: np.ndarray) -> _Counts:
        is_closed = closed != NAT
        k, c, w = key[is_closed], closed[is_closed], won[is_closed]
        closed_tl = Timeline(k, c, n_keys)
        return cls(closed=closed_tl, wins=prefix_sums((w[closed_tl.order] == 1.0).astype(np.float64)),
                   created=Timeline(key, created, n_keys))


@dataclass(frozen=True)
class ContextPart:
    """What one set of deals teaches the context: each deal's keys and dates, and its won-stage durations.

    A partitioned history (:mod:`dealscore.scale`) computes one part per partition
    on the cluster and fits the context from all of them; one history in memory is
    a single part. Either way the same :meth:`FeatureContext.fit_parts` runs, and
    every figure it answers is independent of how the deals were split.
    """

    ids: np.ndarray
    created: np.ndarray
    closed: np.ndarray
    won: np.ndarray
    owner: np.ndarray
    account: np.ndarray
    durations: tuple[np.ndarray, np.ndarray, np.ndarray]  # (stage code, closed_at, days) per won deal and stage

    @classmethod
    def of(cls, deals: DealRows, stage: StageTimeline) -> ContextPart:
        return cls(ids=np.asarray(deals.ids, dtype=object), created=deals.created, closed=deals.closed,
                   won=deals.won, owner=deals.owner, account=deals.account,
                   durations=won_stage_durations(stage, deals))

    @classmethod
    def of_history(cls, history: DealHistory, stages: list[str]) -> ContextPart:
        """The part of a (validated) history, read the way feature building reads it."""
        deals = read_deals(history)
        return cls.of(deals, prepare_stage(read_stage_rows(history, deals.index, Vocab.of(stages)), len(deals)))


class FeatureContext:
    """Cross-deal aggregates fitted on a history and queried at any ``as_of``.

    Parameters
    ----------
    owner_shrinkage, account_shrinkage:
        pseudo-count ``k`` of deals at the overall win rate added to an owner's or
        an account's own record.
    """

    def __init__(self, owner_shrinkage: float = 10.0, account_shrinkage: float = 5.0) -> None:
        self.owner_shrinkage = owner_shrinkage
        self.account_shrinkage = account_shrinkage

    # ------------------------------------------------------------------ fitting
    def fit(self, history: DealHistory, taxonomy: StageTaxonomy | None = None,
            spec: FeatureSpec | None = None) -> FeatureContext:
        """Learn from every deal of ``history`` (queries still only see deals closed before their as_of)."""
        spec = spec or FeatureSpec.default(taxonomy)
        return self.fit_parts([ContextPart.of_history(history, spec.stages)], spec.stages)

    def fit_prepared(self, deals: DealRows, stage: StageTimeline, stages: list[str]) -> FeatureContext:
        """Fit from arrays the feature pipeline already prepared (saves a second pass over the history)."""
        return self.fit_parts([ContextPart.of(deals, stage)], stages)

    def fit_parts(self, parts: list[ContextPart], stages: list[str]) -> FeatureContext:
        """Fit from the parts of a history split by deal (each deal in exactly one part)."""
        self.stages_ = list(stages)
        ids = np.concatenate([p.ids for p in parts]) if parts else np.zeros(0, dtype=object)
        self.deals_ = Vocab.of([str(d) for d in ids])
        self.created_, self.closed_, self.won_, owner, account = (
            np.concatenate([getattr(p, name) for p in parts]) if parts else np.zeros(0)
            for name in ("created", "closed", "won", "owner", "account"))
        created, closed_at, won = self.created_, self.closed_, self.won_
        owners, owner_code = _factorize(owner)
        accounts, account_code = _factorize(account)
        self.owners_, self.owner_code_ = Vocab.of(owners), owner_code
        self.accounts_, self.account_code_ = Vocab.of(accounts), account_code
        self._owner = _Counts.of(owner_code, len(owners), created, closed_at, won)
        self._account = _Counts.of(account_code, len(accounts), created, closed_at, won)
        self._all = _Counts.of(np.zeros(len(ids), np.int64), 1, created, closed_at, won)
        stage_code, closed, days = (np.concatenate([p.durations[i] for p in parts]) for i in range(3))
        self.stage_durations_ = []
        for s in range(len(stages)):
            m = stage_code == s
            o = np.argsort(closed[m], kind="stable")
            self.stage_durations_.append((closed[m][o], days[m][o]))
        self._norms: dict[int, np.ndarray] = {}
        self.n_deals_ = len(ids)
        return self

    # ------------------------------------------------------------------ queries
    def overall(self, q_time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(closed, won) deal counts over all deals closed before each time."""
        zero = np.zeros(len(q_time), np.int64)
        lo, hi = self._all.closed.prefix(zero, q_time, strict=True)
        return (hi - lo).astype(np.float64), self._all.wins[hi] - self._all.wins[lo]

    def cross_deal_features(self, deal_ids: np.ndarray, owner: np.ndarray, account: np.ndarray,
                            q_time: np.ndarray) -> dict[str, np.ndarray]:
        """Owner and account history features, excluding the snapshot's own deal."""
        self._check_fitted()
        me, _ = self.deals_.codes(deal_ids)
        known = me >= 0
        pos = np.maximum(me, 0)
        created = take(self.created_, pos, known, NEVER)
        closed = take(self.closed_, pos, known, NAT)
        self_closed = known & (closed != NAT) & (closed < q_time)
        self_won = self_closed & (take(self.won_, pos, known, np.nan) == 1.0)
        self_open = known & (created <= q_time) & ~((closed != NAT) & (closed <= q_time))
        n_all, w_all = self.overall(q_time)
        n_all, w_all = n_all - self_closed, w_all - self_won
        with np.errstate(invalid="ignore", divide="ignore"):
            prior = np.where(n_all > 0, w_all / n_all, np.nan)
        out: dict[str, np.ndarray] = {}
        for name, counts, vocab, codes, k in (
            ("owner", self._owner, self.owners_, self.owner_code_, self.owner_shrinkage),
            ("account", self._account, self.accounts_, self.account_code_, self.account_shrinkage),
        ):
            key, _ = vocab.codes(owner if name == "owner" else account)
            mine = known & (take(codes, pos, known, -1) == key) & (key >= 0)
            lo, hi = counts.closed.prefix(key, q_time, strict=True)
            n_closed = (hi - lo) - (mine & self_closed)
            wins = counts.wins[hi] - counts.wins[lo] - (mine & self_won)
            rate = (wins + k * prior) / (n_closed + k)
            if name == "owner":
                open_now = counts.created.count(key, q_time) - counts.closed.count(key, q_time) - (mine & self_open)
                out["owner_closed_deals"] = n_closed.astype(np.float64)
                out["owner_win_rate"] = rate
                out["owner_open_deals"] = open_now.astype(np.float64)
            else:
                created_before = counts.created.count(key, q_time) - (mine & (created <= q_time))
                out["account_prior_deals"] = created_before.astype(np.float64)
                out["account_closed_deals"] = n_closed.astype(np.float64)
                out["account_win_rate"] = rate
        return out

    def stage_norms(self, stage_code: np.ndarray, q_time: np.ndarray) -> np.ndarray:
        """Median days won deals spent in each snapshot's stage, as of its weekly checkpoint (NaN: none yet)."""
        self._check_fitted()
        cps = checkpoint(q_time)
        out = np.full(len(q_time), np.nan)
        if len(cps) == 1 or (len(cps) and (cps == cps[0]).all()):
            uniq, inv = cps[:1], np.zeros(len(cps), dtype=np.int64)
        else:
            uniq, inv = np.unique(cps, return_inverse=True)
        table = np.vstack([self._medians_at(int(c)) for c in uniq]) if len(uniq) else np.zeros((0, len(self.stages_)))
        ok = stage_code >= 0
        out[ok] = table[inv[ok], stage_code[ok]]
        return out

    def _medians_at(self, cp: int) -> np.ndarray:
        cached = self._norms.get(cp)
        if cached is None:
            cached = self._quantile_at(cp, 0.5)
            self._norms[cp] = cached
        return cached

    def _quantile_at(self, cp: int, q: float) -> np.ndarray:
        res = np.full(len(self.stages_), np.nan)
        for s, (closed, days) in enumerate(self.stage_durations_):
            n = int(np.searchsorted(closed, cp, side="left"))
            if n:
                res[s] = np.quantile(days[:n], q)
        return res

    def stage_table(self, as_of: pd.Timestamp | str | None = None) -> pd.DataFrame:
        """Per stage: won deals seen, median and 90th-percentile days in stage, as of a time (default: all).

        The model bundle keeps this as its stage statistics (warnings such as
        "longer in stage than 90% of won deals" read it).
        """
        self._check_fitted()
        cp = NEVER if as_of is None else int(checkpoint(np.array([pd.Timestamp(as_of).value]))[0])
        counts = [int(np.searchsorted(c, cp, side="left")) for c, _ in self.stage_durations_]
        return pd.DataFrame({
            "stage": self.stages_,
            "n_won_deals": counts,
            "median_days_in_stage_won": self._quantile_at(cp, 0.5),
            "p90_days_in_stage_won": self._quantile_at(cp, 0.9),
        })

    def _check_fitted(self) -> None:
        if not hasattr(self, "stages_"):
            raise ModelNotReadyError("FeatureContext is not fitted: call fit(history) first")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_norms"] = {}
        return state


def _factorize(values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Sorted distinct non-missing strings and each value's code (-1 for missing)."""
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), sort=True, use_na_sentinel=True)
    return [str(u) for u in uniques], codes.astype(np.int64)
