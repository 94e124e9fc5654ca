"""Episodes without labels: is a deal active, slowing down, stalled or gone quiet, read from its touch pattern.

No CRM records when a deal stalled or when the buyer went dark, yet both leave a
trace in the touchpoints: a stalled deal's e-mails and calls thin to a trickle on
both sides; a quiet one still gets the rep's follow-ups, and no answer. One
threshold on one measure ("no touchpoint for 11 days") cannot tell a stalled deal
from a slow but healthy one, because deals differ in pace.

:class:`EpisodeModel` is a hidden Markov model over the days of a deal, from the
customer's first reply on (before it the deal is prospecting, where silence is
the normal state). Each day the deal is in one of four hidden states, ``active``,
``slow`` (two paces of a healthy deal), ``stalled`` or ``quiet``, and the state
sets the day's expected number of touches in three streams: sent by the rep
(outbound), by the customer (inbound), and undirected ones (meetings, demos,
notes). The rates and the day-to-day transition probabilities are learned by EM
(Baum-Welch) on the company's own training deals, so a company whose reps
write daily and one whose deals move by a monthly meeting each get their own
notion of "stalled". The states are named after fitting by their rates (quiet:
the customer's lowest; stalled: the lowest of the rest; the other two healthy).

At scoring time the model is only ever run *forward* (a filter): the probability
of each state on the snapshot's day, given the touches known by then (those that
happened and were logged by ``as_of``), so it obeys the same point-in-time rule as
every feature. Between two days with touches the empty days are applied in one
step (a precomputed power of the empty-day matrix), so a deal costs one step per
day with touches, not per calendar day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dealscore.data.history import DealHistory
from dealscore.features.inputs import DIRECTIONS, Table, as_ns, deal_codes, deal_index, encode
from dealscore.features.timeline import NAT
from dealscore.times import DAY_NS

STATES = ("active", "slow", "stalled", "quiet")
#: What the next-best actions condition on: the four states, and "before the first customer reply" (the model
#: says nothing then; prospecting deals and deals of a CRM without touchpoints are all in it).
EPISODES = (*STATES, "unreplied")
STREAMS = ("outbound", "inbound", "other")
#: Sequences longer than this many days are cut for fitting (the filter reads any length).
MAX_FIT_DAYS = 730
#: Fewer deals with a customer reply than this: no model (the warnings keep their fixed rules).
MIN_DEALS = 50
_RATE_FLOOR = 1e-4
#: Up to this many rows the filter multiplies each row's matrices pairwise; beyond, it steps through the days.
PAIRWISE_ROWS = 32


@dataclass(frozen=True)
class TouchDays:
    """Per row ``(deal, as_of)``: the touches known by ``as_of``, as counts per day from the first customer reply.

    ``start`` is the day number (days since the epoch) of the first inbound touch
    known by ``as_of`` (-1: none yet, the model says nothing), ``end`` the day of
    ``as_of``. Row ``i``'s days with touches are ``day[offsets[i]:offsets[i + 1]]``
    (ascending, the first is ``start``) with their counts per stream.
    """

    start: np.ndarray
    end: np.ndarray
    offsets: np.ndarray
    day: np.ndarray
    counts: np.ndarray

    @property
    def n(self) -> int:
        """Rows."""
        return len(self.start)


def touch_days(history: DealHistory, deal_ids: Any, as_of: Any) -> TouchDays:
    """The touches of each ``(deal_ids[i], as_of[i])`` known then, read from a history (training, tests)."""
    return _HistoryTouches.of(history).at(deal_ids, as_of)


@dataclass(frozen=True)
class _HistoryTouches:
    """A history's touchpoints encoded once (deal codes, directions, times), for reading many snapshots of it."""

    index: Any
    deal: np.ndarray
    direction: np.ndarray
    occurred: np.ndarray
    seen: np.ndarray

    @classmethod
    def of(cls, history: DealHistory) -> _HistoryTouches:
        index = deal_index(history.deals)
        acts = Table(history.activities, "activities")
        occurred = acts.times("occurred_at")
        return cls(index, deal_codes(index, acts.labels("deal_id"), table="activities"),
                   encode(acts, "direction", DIRECTIONS), occurred, np.maximum(occurred, acts.times("recorded_at")))

    def at(self, deal_ids: Any, as_of: Any) -> TouchDays:
        return touch_days_of(
            self.deal, self.direction, self.occurred, self.seen,
            deal_codes(self.index, np.asarray(deal_ids, dtype=object), table="snapshots"),
            as_ns(pd.DatetimeIndex(np.asarray(as_of, dtype="datetime64[ns]")), table="snapshots", column="as_of"))


def touch_days_of(deal: np.ndarray, direction: np.ndarray, occurred: np.ndarray, seen: np.ndarray,
                  row_deal: np.ndarray, row_time: np.ndarray) -> TouchDays:
    """:class:`TouchDays` from arrays as the features read them (:class:`dealscore.features.inputs.ActivityRows`:
    deal codes, direction codes of ``DIRECTIONS``, times in ns) for snapshots ``(row_deal[i], row_time[i])``.

    A touch counts once it happened and was logged (``seen`` at or before the
    snapshot), on the day it happened.
    """
    n = len(row_deal)
    stream_of = np.full(len(DIRECTIONS) + 1, 2, dtype=np.int64)  # the last slot: no direction (code -1)
    stream_of[DIRECTIONS.lookup["outbound"]], stream_of[DIRECTIONS.lookup["inbound"]] = 0, 1
    stream = stream_of[direction]
    dated = occurred != NAT
    deal, occurred, seen, stream = deal[dated], occurred[dated], seen[dated], stream[dated]
    # touches sorted by (deal, day) under one integer key, so each row's touches are one slice of it, and only
    # those that happened by the row's day (a backtest's many rows of a deal pair with their own past only)
    day0 = int(occurred.min() // DAY_NS) if len(occurred) else 0
    span = (int(occurred.max() // DAY_NS) - day0 + 2) if len(occurred) else 1
    key = deal * span + (occurred // DAY_NS - day0)
    order = np.argsort(key, kind="stable")
    key, occurred, seen, stream = key[order], occurred[order], seen[order], stream[order]
    row_day = np.clip(row_time // DAY_NS - day0, -1, span - 1)
    lo = np.searchsorted(key, row_deal * span - 1, "right")
    hi = np.searchsorted(key, row_deal * span + row_day, "right")
    size = np.maximum(hi - lo, 0)
    # one pair per (row, touch of its slice): rows ascending, and days ascending within a row
    row = np.repeat(np.arange(n), size)
    touch = np.arange(int(size.sum())) - np.repeat(np.cumsum(size) - size, size) + np.repeat(lo, size)
    known = seen[touch] <= row_time[row]
    row, touch = row[known], touch[known]
    day = occurred[touch] // DAY_NS
    s = stream[touch]
    none = np.iinfo(np.int64).max
    start = np.full(n, none, dtype=np.int64)
    np.minimum.at(start, row[s == 1], day[s == 1])
    keep = day >= start[row]  # from the first customer reply on (rows without one keep nothing)
    row, day, s = row[keep], day[keep], s[keep]
    new = np.ones(len(row), dtype=bool)
    new[1:] = (row[1:] != row[:-1]) | (day[1:] != day[:-1])
    group = np.cumsum(new) - 1
    groups = int(new.sum())
    counts = np.bincount(group * len(STREAMS) + s, minlength=groups * len(STREAMS)).reshape(groups, len(STREAMS)
                                                                                           ).astype(float)
    return TouchDays(start=np.where(start < none, start, -1), end=row_time // DAY_NS,
                     offsets=np.searchsorted(row[new], np.arange(n + 1)), day=day[new], counts=counts)


@dataclass
class EpisodeModel:
    """Hidden Markov model of a deal's days: state rates per stream, day-to-day transitions, first-day state."""

    rates: np.ndarray  # (states, streams) expected touches per day
    transition: np.ndarray  # (states, states), rows sum to 1
    initial: np.ndarray  # (states,) on the day of the first customer reply
    deals: int = 0
    log_likelihood_per_day: float = float("nan")
    #: (powers of the empty-day matrix, each power times the transition), published as one object so that a
    #: scorer's threads never see one table grown and the other not
    _tables_cache: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ fitting

    @classmethod
    def fit(cls, days: TouchDays, *, iterations: int = 20, max_deals: int = 2000, seed: int = 0
            ) -> EpisodeModel | None:
        """Baum-Welch on whole deals (one row per deal, seen to its close or the data cut); None if too few.

        Fitting reads the whole of each training deal (hindsight is allowed for
        learning the rates); only the filter is used on snapshots.
        """
        rows = np.flatnonzero(days.start >= 0)
        if len(rows) < MIN_DEALS:
            return None
        if len(rows) > max_deals:
            rows = np.sort(np.random.default_rng(seed).choice(rows, max_deals, replace=False))
        X, mask = _dense(days, rows)
        mean = (X * mask[:, :, None]).sum((0, 1)) / max(mask.sum(), 1)
        mean = np.maximum(mean, 1e-3)
        rates = np.vstack([2.0 * mean, 0.8 * mean, 0.25 * mean,
                           [1.5 * mean[0], 0.005 * mean[1], 0.1 * mean[2]]])
        transition = np.full((4, 4), 0.01) + np.diag([0.95, 0.95, 0.94, 0.97])
        transition /= transition.sum(1, keepdims=True)
        initial = np.array([0.45, 0.45, 0.05, 0.05])
        ll = float("nan")
        for _ in range(iterations):
            rates, transition, initial, ll = _em_step(X, mask, rates, transition, initial)
        model = cls(rates=rates, transition=transition, initial=initial, deals=len(rows),
                    log_likelihood_per_day=ll / max(int(mask.sum()), 1))
        return model._named()

    def _named(self) -> EpisodeModel:
        """Order the states as :data:`STATES`: quiet has the customer's lowest rate, stalled the lowest total
        of the rest, and of the two healthy states the busier is ``active``."""
        k = len(self.rates)
        quiet = int(np.argmin(self.rates[:, 1]))
        rest = [i for i in range(k) if i != quiet]
        total = self.rates.sum(1)
        stalled = min(rest, key=lambda i: total[i])
        healthy = sorted((i for i in rest if i != stalled), key=lambda i: -total[i])
        order = np.array([*healthy, stalled, quiet])
        return EpisodeModel(rates=self.rates[order], transition=self.transition[np.ix_(order, order)],
                            initial=self.initial[order], deals=self.deals,
                            log_likelihood_per_day=self.log_likelihood_per_day)

    # ------------------------------------------------------------------ filtering

    def probabilities(self, days: TouchDays) -> np.ndarray:
        """P(state on the day of ``as_of`` | touches known then), one row per row of ``days`` (NaN: no reply yet).

        A row's forward pass is a product of small matrices, one per day with touches (the empty days since the
        previous one, the day's transition and its touches) and one for the empty days up to ``as_of``. Two ways
        of taking it give the same numbers (both are tested against a day-by-day pass): a few rows (the API's
        one deal) multiply their matrices pairwise in a handful of batched products; many rows (a batch, a
        backtest) step through the days with touches, all rows at once, which does the least arithmetic.
        """
        n, k = days.n, len(self.initial)
        out = np.full((n, k), np.nan)
        rows = np.flatnonzero(days.start >= 0)
        if not len(rows):
            return out
        first, count = days.offsets[rows], days.offsets[rows + 1] - days.offsets[rows]
        e = self._emission(days.counts, np.log(self.rates))
        alpha = self.initial[None, :] * e[first]
        alpha /= alpha.sum(1, keepdims=True)
        if len(rows) <= PAIRWISE_ROWS:
            alpha, last = self._pairwise(days, alpha, first, count, e)
        else:
            alpha, last = self._stepwise(days, alpha, first, count, e)
        a = np.einsum("nk,nkl->nl", alpha, self._power(np.maximum(days.end[rows] - last, 0)))
        out[rows] = a / a.sum(1, keepdims=True)
        return out

    def _pairwise(self, days: TouchDays, alpha: np.ndarray, first: np.ndarray, count: np.ndarray, e: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Each row's matrices after its first day, multiplied pairwise (rows padded with identities)."""
        k = len(self.initial)
        width = max(int(count.max()) - 1, 1)
        block = np.broadcast_to(np.eye(k), (len(first), width, k, k)).copy()
        owner = np.repeat(np.arange(len(first)), count - 1)
        at = np.concatenate([np.arange(f + 1, f + c) for f, c in zip(first.tolist(), count.tolist(), strict=True)]
                            ).astype(np.int64) if len(owner) else np.zeros(0, dtype=np.int64)
        block[owner, at - first[owner] - 1] = self._step(days, at, e)
        while block.shape[1] > 1:
            if block.shape[1] % 2:
                block = np.concatenate([block, np.broadcast_to(np.eye(k), (len(first), 1, k, k))], axis=1)
            block = block[:, 0::2] @ block[:, 1::2]
            block /= block.max(axis=(2, 3), keepdims=True)
        return np.einsum("nk,nkl->nl", alpha, block[:, 0]), days.day[first + count - 1]

    def _stepwise(self, days: TouchDays, alpha: np.ndarray, first: np.ndarray, count: np.ndarray, e: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Day with touches ``j`` of every row that has one, for j = 1, 2, ... (longest rows first, so the rows
        still going are a prefix)."""
        order = np.argsort(-count, kind="stable")
        alpha, first_o, count_o = alpha[order], first[order], count[order]
        for j in range(1, int(count_o[0])):
            live = int(np.searchsorted(-count_o, -j, side="left"))  # rows with more than j days with touches
            at = first_o[:live] + j
            a = np.einsum("nk,nkl->nl", alpha[:live], self._step(days, at, e))
            alpha[:live] = a / a.sum(1, keepdims=True)
        out = np.empty_like(alpha)
        out[order] = alpha
        return out, days.day[first + count - 1]

    def _step(self, days: TouchDays, at: np.ndarray, e: np.ndarray) -> np.ndarray:
        """The matrix of touch day ``at``: the empty days since the row's previous touch day, then the day."""
        gaps = days.day[at] - days.day[at - 1] - 1
        return self._tables(gaps)[1][gaps] * e[at][:, None, :]

    def _emission(self, counts: np.ndarray, log_rates: np.ndarray) -> np.ndarray:
        """Poisson likelihood of each row's counts under each state, scaled per row (the x! terms cancel)."""
        log_e = counts @ log_rates.T - self.rates.sum(1)[None, :]
        return np.exp(log_e - log_e.max(1, keepdims=True))

    def _power(self, gaps: np.ndarray) -> np.ndarray:
        """The empty-day matrix ``A · diag(P(no touch))`` to the power of each gap."""
        return self._tables(gaps)[0][gaps]

    def _tables(self, gaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The powers of the empty-day matrix up to the longest gap, and each power times the transition (the
        step into a day with touches), grown on demand. Each power is rescaled: the filter normalises anyway, and
        a year of empty days would underflow."""
        need = int(gaps.max()) if len(gaps) else 0
        cached = self._tables_cache
        if cached is None or need >= len(cached[0]):
            step = self.transition * np.exp(-self.rates.sum(1))[None, :]
            size = max(need + 1, 2 * len(cached[0]) if cached is not None else 512)
            grown = np.empty((size, *step.shape))
            grown[0] = np.eye(len(step))
            for g in range(1, size):
                p = grown[g - 1] @ step
                grown[g] = p / p.max()
            cached = self._tables_cache = (grown, grown @ self.transition)
        return cached

    def after_reply(self, weights: np.ndarray) -> np.ndarray:
        """:func:`episode_weights` once the customer answers today: one more inbound touch on the snapshot's day.

        The filter's last step already holds the day's touches, so one more customer
        touch multiplies each state's probability by its inbound rate (the Poisson
        likelihood of k + 1 touches over k, up to a factor all states share); a deal
        without a reply so far starts the model today, on a day with this reply alone. A quiet deal that
        answers is then most likely active again: the revival an action can bring.
        """
        w = np.asarray(weights, dtype=float)
        k = len(STATES)
        inbound = self.rates[:, 1]
        replied = w[:, :k] * inbound[None, :]
        replied /= np.maximum(replied.sum(1, keepdims=True), np.finfo(float).tiny)
        first = self.initial * inbound * np.exp(-self.rates.sum(1))  # the filter's first day: this reply alone
        out = np.zeros_like(w)
        # a row of episode_weights is either the filter's states or all "unreplied"
        out[:, :k] = np.where(w[:, k:] > 0, (first / first.sum())[None, :], replied)
        return out

    # ------------------------------------------------------------------ storage and words

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters (kept in the bundle's stage statistics)."""
        return {"states": list(STATES), "streams": list(STREAMS), "rates_per_day": self.rates.tolist(),
                "transition": self.transition.tolist(), "initial": self.initial.tolist(), "deals": self.deals,
                "log_likelihood_per_day": self.log_likelihood_per_day}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> EpisodeModel | None:
        """The model stored by :meth:`to_dict` (None for a bundle trained without one)."""
        if not raw or "rates_per_day" not in raw:
            return None
        return cls(rates=np.asarray(raw["rates_per_day"], dtype=float),
                   transition=np.asarray(raw["transition"], dtype=float),
                   initial=np.asarray(raw["initial"], dtype=float), deals=int(raw.get("deals", 0)),
                   log_likelihood_per_day=float(raw.get("log_likelihood_per_day", float("nan"))))

    def paces(self) -> list[dict[str, Any]]:
        """Each state's learned pace: touches a week per stream and how long a spell of it typically lasts."""
        return [{"state": name, "rep_touches_per_week": float(r[0] * 7), "customer_touches_per_week": float(r[1] * 7),
                 "other_touches_per_week": float(r[2] * 7), "typical_days": float(1 / max(1 - stay, 1e-9))}
                for name, r, stay in zip(STATES, self.rates, np.diag(self.transition), strict=True)]

    def summary(self) -> list[str]:
        """The learned paces in words, for the model page and the report."""
        return [f"{p['state'].capitalize()}: {p['rep_touches_per_week']:.1f} touches a week from the rep, "
                f"{p['customer_touches_per_week']:.1f} from the customer, {p['other_touches_per_week']:.1f} "
                f"meetings, demos or notes; a spell lasts about {p['typical_days']:.0f} days"
                for p in self.paces()]


def episode_weights(proba: np.ndarray | None, n: int) -> np.ndarray:
    """Per row, the probability of each of :data:`EPISODES`: the filter's states, or all weight on "unreplied"
    for a row without a customer reply (NaN) or without a model (``proba`` None)."""
    out = np.zeros((n, len(EPISODES)))
    if proba is None:
        out[:, -1] = 1.0
        return out
    p = np.asarray(proba, dtype=float)
    known = ~np.isnan(p[:, 0])
    out[known, :len(STATES)] = p[known]
    out[~known, -1] = 1.0
    return out


#: Snapshots per pass of :func:`weights_at`: a pass pairs each snapshot with every touch of its deal.
WEIGHTS_CHUNK = 50_000


def weights_at(model: EpisodeModel | None, history: DealHistory, deal_ids: Any, as_of: Any) -> np.ndarray:
    """:func:`episode_weights` of each ``(deal_ids[i], as_of[i])`` read from a history (training tables), in
    passes of :data:`WEIGHTS_CHUNK` rows so that memory stays bounded on a long history."""
    ids = np.asarray(deal_ids, dtype=object)
    times = np.asarray(as_of, dtype="datetime64[ns]")
    if model is None or not len(ids):
        return episode_weights(None, len(ids))
    touches = _HistoryTouches.of(history)
    return np.concatenate([
        episode_weights(model.probabilities(touches.at(ids[lo:lo + WEIGHTS_CHUNK], times[lo:lo + WEIGHTS_CHUNK])),
                        len(ids[lo:lo + WEIGHTS_CHUNK]))
        for lo in range(0, len(ids), WEIGHTS_CHUNK)])


def _dense(days: TouchDays, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Day-by-day counts (rows, days, streams) and the mask of real days, for fitting."""
    length = np.minimum(days.end[rows] - days.start[rows] + 1, MAX_FIT_DAYS)
    length = np.maximum(length, 1)
    X = np.zeros((len(rows), int(length.max()), len(STREAMS)))
    for r, i in enumerate(rows):
        lo, hi = days.offsets[i], days.offsets[i + 1]
        d = days.day[lo:hi] - days.start[i]
        ok = d < length[r]
        X[r, d[ok]] = days.counts[lo:hi][ok]
    mask = np.arange(X.shape[1])[None, :] < length[:, None]
    return X, mask


def _em_step(X: np.ndarray, mask: np.ndarray, rates: np.ndarray, transition: np.ndarray, initial: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """One Baum-Welch pass (scaled forward-backward) over sequences that all start on day 0."""
    n, length, _ = X.shape
    k = len(initial)
    log_e = X @ np.log(rates).T - rates.sum(1)[None, None, :]
    e = np.exp(log_e - log_e.max(2, keepdims=True))
    alpha = np.zeros((n, length, k))
    scale = np.ones((n, length))
    a = initial[None, :] * e[:, 0]
    scale[:, 0] = a.sum(1)
    alpha[:, 0] = a / scale[:, 0, None]
    for t in range(1, length):
        a = (alpha[:, t - 1] @ transition) * e[:, t]
        s = a.sum(1)
        live = mask[:, t]
        s = np.where(live, s, 1.0)
        alpha[:, t] = np.where(live[:, None], a / s[:, None], alpha[:, t - 1])
        scale[:, t] = s
    beta = np.ones((n, length, k))
    for t in range(length - 2, -1, -1):
        b = ((e[:, t + 1] * beta[:, t + 1]) @ transition.T) / scale[:, t + 1, None]
        beta[:, t] = np.where(mask[:, t + 1, None], b, 1.0)
    gamma = alpha * beta * mask[:, :, None]
    pair = (mask[:, :-1] & mask[:, 1:])[:, :, None]
    xi = np.einsum("nti,ij,ntj->ij", alpha[:, :-1] * pair, transition, e[:, 1:] * beta[:, 1:] / scale[:, 1:, None])
    transition = xi / np.maximum(xi.sum(1, keepdims=True), 1e-300)
    weight = gamma.reshape(-1, k)
    rates = np.maximum((weight.T @ X.reshape(-1, X.shape[2])) / np.maximum(weight.sum(0)[:, None], 1e-12),
                       _RATE_FLOOR)
    initial = gamma[:, 0].sum(0)
    initial = initial / initial.sum()
    log_likelihood = float((np.log(np.where(mask, scale, 1.0)) + np.where(mask, log_e.max(2), 0.0)).sum())
    return rates, transition, initial, log_likelihood


__all__ = ["EPISODES", "MAX_FIT_DAYS", "MIN_DEALS", "PAIRWISE_ROWS", "STATES", "STREAMS", "WEIGHTS_CHUNK",
           "EpisodeModel", "TouchDays", "episode_weights", "touch_days", "touch_days_of", "weights_at"]
