"""Bookings from deals not created yet: each team's pipeline creation and conversion, learned from history.

A quarter's bookings include deals that do not exist when the forecast is made
(created next week, won before the quarter ends). Two figures per group say how
many: the **creation rate** (deals per day over the last ``rate_days``) and the
**conversion curve**, read from a reference cohort of deals created between
``reference_days + lead_days`` and ``lead_days`` before the forecast time — old
enough that every win within ``lead_days`` of creation is already known, so no
fact after the forecast time is needed.

Simulation uses Poisson splitting: a future deal resembling reference win ``r``
(cycle ``c_r``, amount ``a_r``) created at a uniform time in ``[0, H)`` lands in
period ``[a, b)`` with rate ``λ/n_ref · |[a−c_r, b−c_r) ∩ [0, H)|``; the number of
wins landing in each period is Poisson with the summed rate and their amounts are
drawn from the reference wins in proportion to their rates.

The rate itself is an estimate: a creation count over ``rate_days`` and the wins
of one reference cohort. A Poisson draw at the estimated rate treats both as
exact, and the backtest's ranges then sat at the low edge of their target
coverage (71–73% of quarters inside P10–P90 on most presets). So each draw first
scales the group's rate by a Gamma factor of mean 1 whose variance is the two
counts' relative Poisson variance, ``1/created + 1/wins`` (the rate's posterior
under a flat prior, to first order): a Poisson–Gamma (negative binomial) count,
shared by the group's periods because the same estimate feeds all of them.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dealscore.data.history import DealHistory
from dealscore.forecast.periods import instant
from dealscore.times import DAY_NS

#: Forecast groupings and the deals column each reads.
GROUP_COLUMNS = {"team": "team", "owner": "owner_id"}
#: The group of a deal without a team (owner): its own row, never named as somebody's.
NO_GROUP = "(none)"


@dataclass
class _Pool:
    """One group's reference wins: cycle days and amounts, and the cohort size they came from."""

    cycles: np.ndarray
    amounts: np.ndarray
    n_reference: int


def rate_uncertainty(created: int, wins: int) -> float:
    """Relative variance of a rate estimated as created/days × wins/cohort: ``1/created + 1/wins`` (0 when
    either count is 0: nothing is drawn then anyway)."""
    return 1.0 / created + 1.0 / wins if created > 0 and wins > 0 else 0.0


class PipelineCreationModel:
    """Creation rate per group and conversion (won within x days, and for how much) per pool.

    ``group`` is the column forecasts are split by (``team`` or ``owner_id``);
    ``pool`` the column conversion is learned over (a team's deals: one rep's are
    too few). Parameters are stored as given; learned attributes end in ``_``.
    """

    def __init__(self, *, rate_days: float = 91.0, reference_days: float = 365.0, lead_days: float = 200.0,
                 group: str = "team", pool: str = "team") -> None:
        self.rate_days = rate_days
        self.reference_days = reference_days
        self.lead_days = lead_days
        self.group = group
        self.pool = pool

    def fit(self, history: DealHistory, as_of: pd.Timestamp | str | None = None) -> PipelineCreationModel:
        """Learn rates and conversion from what ``history`` knew at ``as_of`` (default: its data cut)."""
        t = instant(history.data_cut if as_of is None else as_of)
        d = history.deals
        created = pd.DatetimeIndex(d["created_at"]).asi8
        closed = pd.DatetimeIndex(d["closed_at"]).asi8 if "closed_at" in d else np.full(len(d), np.iinfo(np.int64).min)
        closed_known = (closed != np.iinfo(np.int64).min) & (closed <= t.value)
        won = closed_known & (d["outcome"].to_numpy(dtype=object) == "won") if "outcome" in d else closed_known & False
        group = _keys(d, self.group)
        pool = _keys(d, self.pool)
        amount = np.nan_to_num(d["amount"].to_numpy(dtype=float), nan=0.0) if "amount" in d else np.zeros(len(d))
        # creation rate: deals created in (t - rate_days, t], per day (the window is cut at the first deal)
        first = created.min() if len(created) else t.value
        span = min(self.rate_days, max((t.value - first) / DAY_NS, 1.0))
        recent = (created > t.value - span * DAY_NS) & (created <= t.value)
        groups, counts = np.unique(group[recent], return_counts=True)
        self.rate_per_day_ = {str(g): float(c) / span for g, c in zip(groups, counts, strict=True)}
        self.created_ = {str(g): int(c) for g, c in zip(groups, counts, strict=True)}
        # pool of each group: the most common pool value among its deals (a rep's team)
        self.pool_of_ = {}
        frame = pd.DataFrame({"g": group, "p": pool})
        for g, sub in frame.groupby("g", sort=True):
            self.pool_of_[str(g)] = str(sub["p"].mode().iloc[0])
        # reference cohort: old enough that every win within lead_days is known at t
        hi = t.value - self.lead_days * DAY_NS
        lo = hi - self.reference_days * DAY_NS
        ref = (created > lo) & (created <= hi)
        if ref.sum() == 0:  # a young history: the oldest deals, whatever their age (documented bias: fewer slow wins)
            ref = created <= t.value - 0.5 * self.lead_days * DAY_NS
        cycle = (closed - created) / DAY_NS
        self.pools_ = {}
        for p in np.unique(pool[ref]):
            sel = ref & (pool == p)
            w = sel & won & (cycle <= self.lead_days)
            self.pools_[str(p)] = _Pool(cycle[w].astype(float), amount[w], int(sel.sum()))
        self.as_of_ = t
        return self

    def expected(self, group: str, offsets: np.ndarray) -> np.ndarray:
        """Expected bookings per period for one group (``offsets``: periods × [start, end) in days)."""
        mu, pool = self._rates(group, offsets)
        return mu.T @ pool.amounts if pool is not None else np.zeros(len(offsets))

    def simulate(self, groups: list[str], offsets: np.ndarray, n_sims: int, seed: int) -> np.ndarray:
        """Drawn bookings (sims × groups × periods) from deals created after the forecast time.

        Each group draws from its own random stream (seeded by ``seed`` and the group's
        name), so a group's numbers do not depend on which other groups are forecast
        beside it (a team-limited API key sees the same figures as the full CLI run).
        """
        off = np.asarray(offsets, dtype=float)
        out = np.zeros((n_sims, len(groups), len(off)))
        for gi, g in enumerate(groups):
            mu, pool = self._rates(g, off)
            if pool is None or not len(pool.amounts):
                continue
            rng = np.random.default_rng([seed, zlib.crc32(str(g).encode("utf-8"))])
            factor = self._rate_factor(g, pool, n_sims, rng)
            for m in range(len(off)):
                total = mu[:, m].sum()
                if total <= 0:
                    continue
                counts = rng.poisson(total * factor, size=n_sims)
                n = int(counts.sum())
                if n == 0:
                    continue
                picks = rng.choice(len(pool.amounts), size=n, p=mu[:, m] / total)
                out[:, gi, m] = np.bincount(np.repeat(np.arange(n_sims), counts), weights=pool.amounts[picks],
                                            minlength=n_sims)
        return out

    def _rate_factor(self, group: str, pool: _Pool, n_sims: int, rng: np.random.Generator) -> np.ndarray:
        """Per draw, the group's rate relative to its estimate: Gamma, mean 1, variance :func:`rate_uncertainty`.

        A model fitted before the counts were kept (no ``created_``) draws at the estimate, as it did then.
        """
        created = getattr(self, "created_", {}).get(str(group), 0)
        var = rate_uncertainty(created, len(pool.amounts))
        if var <= 0:
            return np.ones(n_sims)
        return rng.gamma(1.0 / var, var, size=n_sims)

    def _rates(self, group: str, off: np.ndarray) -> tuple[np.ndarray, _Pool | None]:
        """Poisson rate of each reference win landing in each period (wins × periods)."""
        lam = self.rate_per_day_.get(str(group), 0.0)
        pool = self.pools_.get(self.pool_of_.get(str(group), str(group)))
        if pool is None or lam <= 0 or pool.n_reference == 0:
            return np.zeros((0, len(off))), None
        horizon = float(off[:, 1].max()) if len(off) else 0.0
        c = pool.cycles[:, None]
        a = np.clip(off[None, :, 0] - c, 0.0, horizon)
        b = np.clip(off[None, :, 1] - c, 0.0, horizon)
        return lam / pool.n_reference * np.clip(b - a, 0.0, None), pool


def _keys(deals: pd.DataFrame, column: str) -> np.ndarray:
    if column == "company":
        return np.full(len(deals), "company", dtype=object)
    if column not in deals:
        return np.full(len(deals), NO_GROUP, dtype=object)
    return np.array([NO_GROUP if v is None or v != v else str(v) for v in deals[column].to_numpy(dtype=object)],
                    dtype=object)


def fit_creation_models(history: DealHistory, as_of: pd.Timestamp | str | None = None
                        ) -> dict[str, PipelineCreationModel]:
    """The creation models a bundle carries: one per grouping, fitted at ``as_of`` (default: the data cut)."""
    return {by: PipelineCreationModel(group=col, pool="team").fit(history, as_of) for by, col in GROUP_COLUMNS.items()}


__all__ = ["GROUP_COLUMNS", "PipelineCreationModel", "fit_creation_models"]
