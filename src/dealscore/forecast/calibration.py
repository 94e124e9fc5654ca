"""Open-deal calibration: what open deals *really* booked in past forecast windows, against what was forecast.

The forecast from open deals is ``Σ amount · p_win · P(close in the period | won)``.
Both factors can be off in the same direction for reasons no single model sees:
the time-to-close model is trained on won deals whose close is already known, so
the slowest wins of its last months are missing (right censoring makes closes look
earlier than they are), and a bundle is used for months after its training cut.
The backtest measured that bias (mixed preset, 20k deals: open deals' bookings
over-forecast by ~6% of the quarter, about half of it timing), and the deals of
one team in one quarter move together more than independent draws allow (an
owner's bad quarter, a slow month), so P10–P90 ranges were too narrow.

This step measures both on the history itself, *as known at the forecast time*:

1. **Windows.** Origins every ``every_days`` days on a fixed calendar grid, within
   ``lookback_days`` before the forecast time; each window runs from its origin to
   the end of the origin's quarter and is used only if it **ended at or before the
   forecast time**, so every outcome it reads was known then (and read from
   ``history.as_known_at(forecast time)``, which holds nothing later).
2. **Forecast then.** The deals open at each origin are scored as of the origin
   (``score_at``: the bundle's scorer on ``history.as_known_at(origin)``), giving
   each team's expected open-deal bookings ``E`` in the window and the Monte Carlo
   variance ``V = Σ a²π(1−π)``.
3. **Booked.** ``A``: what those same deals won inside the window.
   Only deals the bundle's models were **not fitted on** count (created after the
   last deal of its train, validation and calibration slices: ``unseen_after``),
   and only windows holding some: the deals open at a forecast time are new to the
   model, and a model looks better calibrated on its own training deals (backtest,
   sparse_evidence preset: ratio 0.91 over all deals where the open deals' forecast
   was 23% too high). Too few such windows: every deal counts.
4. **Learn.** ``ratio_ = ΣA / ΣE`` over all windows and teams (amount-weighted,
   clipped to [0.5, 2]), each window weighted by how recently it ended (halved every
   ``half_life_days``, one quarter by default): the model's error drifts as the
   bundle ages and the business moves, and the next quarter is most like the last
   (backtest, sparse_evidence, seed 2: open deals booked 0.91 of their uncalibrated
   forecast in the quarter after the bundle's cut, 0.72–0.77 in the three after).
   ``spread_``: the variance of ``A − ratio·E`` beyond the independent-deal
   variance, as the standard deviation of a multiplicative factor shared by one
   team's open deals in one draw (method of moments, clipped to [0, 0.5]).
   ``ratio_sd_``: how far the next quarter's own ratio may fall from the learned
   one, relative to it (a *predictive* error, not only the mean's): the learned
   ratio's standard error (the weighted residuals ``A − ratio·E`` summed per
   quarter end, since windows ending together share their outcomes, and the
   sandwich variance taken over those clusters) plus the variance of the
   quarter ends' own ratios around it (weighted by their share of ``w·E``). The
   standard error alone was too narrow: on the backtest (mixed preset, seed 1) it
   said 2–5% while the quarters' realised ratios ran 0.85–1.01 around 0.92, and
   the first quarter's forecast sat below P10 for 6 of 12 teams. Clipped to
   [0, 0.5]. Fewer than ``min_windows`` windows or two quarters: neutral (1, 0, 0).

The forecast then scales each open deal's in-period probabilities by ``ratio_``,
multiplies each team's open-deal bookings per draw by a lognormal factor of mean 1
and standard deviation ``spread_`` (the correlated risk the independent draws miss),
and every team's by one more factor of mean 1 and standard deviation ``ratio_sd_``
shared by all teams in a draw (the ratio is one number for all of them, so its error
moves them together). A range built on the ratio alone was too narrow: the backtest's
P10–P90 held the booked figure 69–75% of the time on most presets.
The windows are quarter windows; the same two numbers are applied to month
forecasts and to owner groupings (documented approximation). Scores at an origin
depend only on the origin (and the bundle), so a :class:`WindowCache` lets a
backtest reuse them across forecast times.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dealscore.data.history import DealHistory
from dealscore.forecast.close_time import BUCKET_EDGES, period_probabilities
from dealscore.forecast.creation import NO_GROUP
from dealscore.forecast.periods import instant, period_of
from dealscore.times import DAY_NS

#: Origins sit on this fixed grid (a Monday), so two forecast times share their windows' scores.
_GRID_EPOCH = pd.Timestamp("2000-01-03")


@dataclass
class WindowScores:
    """The deals open at one origin, as scored then: group key, amount and P(won inside the window)."""

    origin: pd.Timestamp
    end: pd.Timestamp
    deal_id: np.ndarray
    team: np.ndarray
    amount: np.ndarray
    p_window: np.ndarray


#: (history as known at the origin, origin) → (deal_id, team, amount, p_win, close-time pmf, scored_at)
ScoreAt = Callable[[DealHistory, pd.Timestamp], "OpenScores"]


@dataclass
class OpenScores:
    """What :data:`ScoreAt` returns: the open deals' scores at one origin."""

    deal_id: np.ndarray
    team: np.ndarray
    amount: np.ndarray
    p_win: np.ndarray
    pmf: np.ndarray


@dataclass
class WindowCache:
    """Scores per origin (they depend on the origin and the bundle only, never on the forecast time)."""

    scores: dict[pd.Timestamp, WindowScores] = field(default_factory=dict)


def window_origins(as_of: pd.Timestamp, lookback_days: float, every_days: int, min_days: float
                   ) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """(origin, end of the origin's quarter) for grid origins whose window ended by ``as_of``."""
    t = instant(as_of)
    step = pd.Timedelta(days=every_days)
    k = int(np.floor((t - _GRID_EPOCH) / step))
    out = []
    origin = _GRID_EPOCH + k * step
    while origin >= t - pd.Timedelta(days=lookback_days):
        end = period_of(origin, "quarter").end
        if end <= t and (end - origin) >= pd.Timedelta(days=min_days):
            out.append((origin, end))
        origin -= step
    return sorted(out)


def score_window(history: DealHistory, origin: pd.Timestamp, end: pd.Timestamp, score_at: ScoreAt) -> WindowScores:
    """Score the deals open at ``origin`` from the history as known then; P(won in [origin, end))."""
    s = score_at(history.as_known_at(origin), origin)
    days = (end - origin).value / DAY_NS
    p_in = (period_probabilities(np.asarray(s.pmf, dtype=float), np.array([[0.0, days]]), BUCKET_EDGES)[:, 0]
            if len(s.deal_id) else np.zeros(0))
    return WindowScores(origin=origin, end=end, deal_id=np.asarray(s.deal_id, dtype=object),
                        team=np.array([NO_GROUP if v is None or v != v else str(v) for v in s.team], dtype=object),
                        amount=np.nan_to_num(np.asarray(s.amount, dtype=float), nan=0.0),
                        p_window=np.clip(np.asarray(s.p_win, dtype=float), 0, 1) * np.clip(p_in, 0, 1))


class OpenDealCalibration:
    """Scale and spread of open deals' bookings, learned from past windows that closed before the forecast time.

    Parameters are stored as given; learned attributes end in ``_``. An unfitted
    or neutral calibration (``ratio_ = 1``, ``spread_ = 0``) leaves the forecast unchanged.
    """

    def __init__(self, *, lookback_days: float = 365.0, every_days: int = 14, min_window_days: float = 14.0,
                 min_windows: int = 3, ratio_bounds: tuple[float, float] = (0.5, 2.0), max_spread: float = 0.5,
                 half_life_days: float = 91.0) -> None:
        self.lookback_days = lookback_days
        self.every_days = every_days
        self.min_window_days = min_window_days
        self.min_windows = min_windows
        self.ratio_bounds = ratio_bounds
        self.max_spread = max_spread
        self.half_life_days = half_life_days

    @classmethod
    def neutral(cls) -> OpenDealCalibration:
        """A calibration that changes nothing (no past windows to learn from)."""
        cal = cls()
        cal.ratio_, cal.spread_, cal.windows_, cal.quarters_, cal.as_of_ = 1.0, 0.0, 0, 0, pd.NaT
        cal.ratio_sd_ = 0.0
        cal.unseen_after_, cal.sample_ = pd.NaT, "all"
        cal.table_ = pd.DataFrame(columns=["origin", "end", "team", "expected", "variance", "booked"])
        return cal

    def fit(self, history: DealHistory, score_at: ScoreAt, as_of: pd.Timestamp | str | None = None, *,
            unseen_after: pd.Timestamp | str | None = None, cache: WindowCache | None = None,
            ) -> OpenDealCalibration:
        """Learn ``ratio_`` and ``spread_`` from the windows that ended by ``as_of`` (default: the data cut).

        Outcomes are read from ``history.as_known_at(as_of)``: a deal won after the
        forecast time is open there, so nothing later can move the result.

        ``unseen_after``: creation time of the last deal the scorer's models were fitted
        on. When given, only deals created after it count (the deals open at a forecast
        time are unseen ones, and a model looks better calibrated on its own training
        deals than on new ones); if their windows are too few to learn from, every
        deal counts (``sample_`` says which: ``"unseen"`` or ``"all"``).
        """
        t = instant(history.data_cut if as_of is None else as_of)
        known = history.as_known_at(t)
        d = known.deals
        ids = d["deal_id"].astype(str).to_numpy()
        closed_at = pd.DatetimeIndex(d["closed_at"])
        won = (d["outcome"].to_numpy(dtype=object) == "won") if "outcome" in d else np.zeros(len(d), dtype=bool)
        won_at = pd.Series(np.where(won & ~closed_at.isna(), closed_at.asi8, np.iinfo(np.int64).max), index=ids)
        created = pd.Series(pd.DatetimeIndex(d["created_at"]).as_unit("ns").asi8, index=ids)
        windows = window_origins(t, self.lookback_days, self.every_days, self.min_window_days)
        self.as_of_ = t
        self.unseen_after_ = pd.NaT if unseen_after is None or pd.isna(unseen_after) else instant(unseen_after)
        self.sample_ = "all"
        if not pd.isna(self.unseen_after_):
            after = self.unseen_after_.value
            # no unseen deal is open at an origin before the first one was created: those windows are skipped
            table = self._windows(history, [w for w in windows if w[0].value > after], score_at, won_at, cache,
                                  created=created, after=after)
            if self._enough(table):
                self.sample_ = "unseen"
        if self.sample_ == "all":
            table = self._windows(history, windows, score_at, won_at, cache)
        self.table_ = table
        self.windows_ = int(table["origin"].nunique()) if len(table) else 0
        self.quarters_ = int(table["end"].nunique()) if len(table) else 0
        self.ratio_, self.spread_, self.ratio_sd_ = self._learn(self.table_)
        return self

    def _windows(self, history: DealHistory, windows: list[tuple[pd.Timestamp, pd.Timestamp]], score_at: ScoreAt,
                 won_at: pd.Series, cache: WindowCache | None, *, created: pd.Series | None = None,
                 after: int | None = None) -> pd.DataFrame:
        """Per window and team: expected ``E``, variance ``V`` and booked ``A`` of the deals open at the origin
        (only those created after ``after`` when given)."""
        rows = []
        for origin, end in windows:
            ws = cache.scores.get(origin) if cache is not None else None
            if ws is None:
                ws = score_window(history, origin, end, score_at)
                if cache is not None:
                    cache.scores[origin] = ws
            keys = ws.deal_id.astype(str)
            keep = (np.ones(len(keys), dtype=bool) if created is None or after is None
                    else created.reindex(keys).fillna(np.iinfo(np.int64).min).to_numpy(dtype=np.int64) > after)
            if not keep.any():
                continue
            when = won_at.reindex(keys[keep]).fillna(np.iinfo(np.int64).max).to_numpy(dtype=np.int64)
            hit = (when >= origin.value) & (when < end.value)
            amount, p = ws.amount[keep], ws.p_window[keep]
            frame = pd.DataFrame({"team": ws.team[keep], "expected": amount * p, "variance": amount**2 * p * (1 - p),
                                  "booked": np.where(hit, amount, 0.0)})
            per = frame.groupby("team", sort=True).sum().reset_index()
            per.insert(0, "end", end)
            per.insert(0, "origin", origin)
            rows.append(per)
        return (pd.concat(rows, ignore_index=True) if rows
                else pd.DataFrame(columns=["origin", "end", "team", "expected", "variance", "booked"]))

    def _enough(self, table: pd.DataFrame) -> bool:
        """One quarter's windows share their outcomes: two quarters and ``min_windows`` windows at least."""
        return bool(len(table)) and table["origin"].nunique() >= self.min_windows and table["end"].nunique() >= 2

    def _learn(self, table: pd.DataFrame) -> tuple[float, float, float]:
        """``ratio_``, ``spread_`` and ``ratio_sd_`` of the windows' table (see module docstring)."""
        if not self._enough(table):
            return 1.0, 0.0, 0.0
        e = table["expected"].to_numpy(dtype=float)
        a = table["booked"].to_numpy(dtype=float)
        v = table["variance"].to_numpy(dtype=float)
        if e.sum() <= 0:
            return 1.0, 0.0, 0.0
        w = self._weights(table, self.as_of_)
        lo, hi = self.ratio_bounds
        ratio = float(np.clip((w * a).sum() / (w * e).sum(), lo, hi))
        # the scaled probabilities' own variance is ≈ ratio · V (π small); what is left is shared by the team's deals
        excess = float(((a - ratio * e) ** 2 - ratio * v).sum())
        scale = float(((ratio * e) ** 2).sum())
        spread = float(np.sqrt(max(excess, 0.0) / scale)) if scale > 0 else 0.0
        return ratio, float(min(spread, self.max_spread)), self._ratio_sd(w, e, a, table["end"].to_numpy(), ratio)

    def _weights(self, table: pd.DataFrame, at: pd.Timestamp) -> np.ndarray:
        """Each window's weight in the ratio: halved every ``half_life_days`` of its end before ``at`` (the
        model's error drifts as the bundle ages and the business moves, and the next quarter is most like the last)."""
        age = (at.value - pd.DatetimeIndex(table["end"]).as_unit("ns").asi8) / DAY_NS
        return np.asarray(0.5 ** (age / self.half_life_days), dtype=float)

    def _ratio_sd(self, w: np.ndarray, e: np.ndarray, a: np.ndarray, ends: np.ndarray, ratio: float) -> float:
        """Predictive relative error of the ratio: ``sqrt(se² + between²) / ratio`` over the quarter ends.

        With ``W_q = Σ w·E`` and ``r_q = Σ w·A / W_q`` per end and ``s_q = W_q / ΣW``:
        ``se² = k/(k−1) Σ s_q² (r_q − ratio)²`` (the sandwich over the ends' summed
        weighted residuals: the learned ratio's error) and ``between² = k/(k−1) Σ s_q
        (r_q − ratio)²`` (how much one quarter's ratio varies: what the next one will
        do). Each ``r_q`` also carries its own deals' sampling noise, which the
        forecast's independent draws count again, so the range errs a little wide.
        """
        frame = pd.DataFrame({"we": w * e, "wa": w * a}).groupby(ends).sum()
        frame = frame[frame["we"] > 0]
        k, total = len(frame), float(frame["we"].sum())
        if k < 2 or total <= 0 or ratio <= 0:
            return 0.0
        share = frame["we"].to_numpy() / total
        dev2 = (frame["wa"].to_numpy() / frame["we"].to_numpy() - ratio) ** 2
        se2 = k / (k - 1) * float((share**2 * dev2).sum())
        between2 = k / (k - 1) * float((share * dev2).sum())
        return float(min(np.sqrt(se2 + between2) / ratio, self.max_spread))

    # ------------------------------------------------------------------ applying it

    def factors(self, groups: list[str], n_sims: int, seed: int) -> np.ndarray:
        """A lognormal factor of mean 1 and sd ``spread_`` per draw and group, times one of sd ``ratio_sd_`` per
        draw shared by every group (sims × groups).

        Each group draws from its own stream (seed and the group's name), so a
        group's figures do not depend on which other groups are forecast beside it.
        """
        out = np.ones((n_sims, len(groups)))
        s = float(getattr(self, "spread_", 0.0))
        if s > 0:
            sigma = np.sqrt(np.log1p(s * s))
            for gi, g in enumerate(groups):
                rng = np.random.default_rng([seed, 7, _crc(g)])
                out[:, gi] = np.exp(sigma * rng.standard_normal(n_sims) - 0.5 * sigma * sigma)
        r = float(getattr(self, "ratio_sd_", 0.0))  # a calibration learned before it was kept has none
        if r > 0:
            sigma = np.sqrt(np.log1p(r * r))
            shared = np.random.default_rng([seed, 11]).standard_normal(n_sims)
            out *= np.exp(sigma * shared - 0.5 * sigma * sigma)[:, None]
        return out

    def summary(self) -> dict[str, float | int | str]:
        """The learned numbers, for notes and reports."""
        return {"ratio": round(float(self.ratio_), 4), "spread": round(float(self.spread_), 4),
                "ratio_sd": round(float(getattr(self, "ratio_sd_", 0.0)), 4),
                "windows": int(self.windows_), "as_of": str(self.as_of_),
                "sample": str(getattr(self, "sample_", "all")),
                "unseen_after": str(getattr(self, "unseen_after_", pd.NaT))}


def _crc(text: str) -> int:
    return zlib.crc32(str(text).encode("utf-8"))


def scorer_score_at(scorer: Any) -> ScoreAt:
    """The calibration's view of a bundle: the deals open at an origin, scored as of then.

    ``scorer`` is a :class:`dealscore.scoring.Scorer` (read through its public
    ``score_blocks``; not imported here, so training can fit the calibration too).
    """
    def score_at(past: DealHistory, t: pd.Timestamp) -> OpenScores:
        blocks = [b for b in scorer.score_blocks(past, t, explain=False, actions=False) if len(b)]
        if any(b.close_pmf is None for b in blocks):
            raise ValueError("the open-deal calibration needs a bundle with a time-to-close model")
        k = len(BUCKET_EDGES) - 1

        def cat(name: str, empty: np.ndarray) -> np.ndarray:
            return np.concatenate([np.asarray(getattr(b, name)) for b in blocks]) if blocks else empty

        return OpenScores(deal_id=cat("deal_id", np.array([], dtype=object)),
                          team=cat("team", np.array([], dtype=object)),
                          amount=cat("amount", np.array([], dtype=float)),
                          p_win=cat("p_win", np.array([], dtype=float)),
                          pmf=cat("close_pmf", np.zeros((0, k))))
    return score_at


def unseen_after(bundle: Any) -> pd.Timestamp | None:
    """Creation time of the last deal the bundle's models were fitted on (``None`` for bundles that do not say)."""
    window = getattr(bundle, "training_window", None) or {}
    value = window.get("fitted_to")
    return None if value is None or pd.isna(value) else instant(value)


def fit_open_calibration(history: DealHistory, scorer: Any, as_of: pd.Timestamp | str | None = None, *,
                         cache: WindowCache | None = None) -> OpenDealCalibration:
    """The open-deal calibration for a forecast at ``as_of``, from windows of ``history`` that ended by then,
    on the deals the scorer's bundle was not fitted on (when it says which)."""
    return OpenDealCalibration().fit(history, scorer_score_at(scorer), as_of,
                                     unseen_after=unseen_after(getattr(scorer, "bundle", None)), cache=cache)


__all__ = ["OpenDealCalibration", "OpenScores", "ScoreAt", "WindowCache", "WindowScores", "fit_open_calibration",
           "score_window", "scorer_score_at", "unseen_after", "window_origins"]
