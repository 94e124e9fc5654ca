"""Touchpoint features: how much, how recent, who answered, and which key touchpoints happened.

A touchpoint counts for a snapshot once it has both happened and been logged
(``seen`` = the later of ``occurred_at`` and ``recorded_at``), so a meeting
logged two weeks late is invisible until it is logged, and a meeting scheduled
for next week does not count before it took place. Recent windows are measured
on when the touch *happened*: a touch that happened 20 days ago and was logged
yesterday is in the 30-day window but not in the 7-day one.

Each feature is reduced to prefixes of two sort orders per deal (by ``seen`` and
by ``occurred``) or to intervals ``[start, end)`` of snapshot times during which
one touchpoint contributes (see :mod:`dealscore.features.timeline`): an outbound
touch is unanswered from ``seen`` until an inbound touch that happened at or
after it is seen; an inbound touch is a reply from when it and an earlier
outbound touch are both seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from dealscore.features.inputs import ActivityRows
from dealscore.features.spec import KEY_TYPES
from dealscore.features.timeline import NAT, NEVER, Timeline, prefix_sums, segmented_extreme, take
from dealscore.times import DAY_NS

ALL_WINDOWS = (7, 30, 60, 90)  # 60 only serves the trend (previous 30 days = 60-day minus 30-day count)
WINDOW_NS = np.array(ALL_WINDOWS, dtype=np.int64) * DAY_NS
LAST_OF = ("any", "inbound", *KEY_TYPES)  # "days since the last ..." features


@dataclass(frozen=True)
class TouchLayout:
    """Column positions in the per-touch indicator matrix: [all, types..., inbound, outbound, extras...]."""

    activity_types: tuple[str, ...]
    decision_maker: int
    champion: int

    @cached_property
    def n_types(self) -> int:
        return len(self.activity_types)

    @cached_property
    def inbound(self) -> int:
        return 1 + self.n_types

    @cached_property
    def outbound(self) -> int:
        return 2 + self.n_types

    @cached_property
    def windowed(self) -> int:
        """Columns counted per recent window: all, each type, inbound, outbound."""
        return 3 + self.n_types

    @cached_property
    def dm_col(self) -> int:
        return self.windowed

    @cached_property
    def champion_col(self) -> int:
        return self.windowed + 1

    @cached_property
    def contact_col(self) -> int:
        return self.windowed + 2

    @cached_property
    def pricing_col(self) -> int:
        return self.windowed + 3

    @cached_property
    def width(self) -> int:
        return self.windowed + 4

    def type_col(self, name: str) -> int | None:
        return self._type_cols.get(name)

    @cached_property
    def pricing_types(self) -> list[int]:
        """Indicator rows of the activity types that show pricing was discussed."""
        return [c for c in (self.type_col("proposal"), self.type_col("contract")) if c is not None]

    @cached_property
    def key_type_codes(self) -> np.ndarray:
        """Activity type code of each key touchpoint type (-1 when the taxonomy lacks it)."""
        return np.array([(self.type_col(t) or 0) - 1 for t in KEY_TYPES])

    @cached_property
    def _type_cols(self) -> dict[str, int]:
        return {t: 1 + i for i, t in enumerate(self.activity_types)}

    @cached_property
    def count_features(self) -> list[tuple[str, int, int]]:
        """``(name, window, row)`` of the per-type counts: ``window`` 0 is the total (visible counts), else
        that window's counts (built once: formatting ~40 names per call costs more than the counts)."""
        out = [(f"n_touches_{w}d", w, 0) for w in (7, 30, 90)]
        for i, t in enumerate(self.activity_types):
            out += [(f"n_{t}_{w}d", w, 1 + i) for w in (7, 30, 90)]
            out.append((f"n_{t}_total", 0, 1 + i))
        return out

    @cached_property
    def window_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """For the stacked window matrix: the indicator row and the window index behind each of its rows."""
        rows, windows = [], []
        for i, cols in enumerate(self.window_columns.values()):
            rows += list(range(cols.stop - cols.start))
            windows += [i] * (cols.stop - cols.start)
        return np.array(rows), np.array(windows)

    @cached_property
    def window_index(self) -> np.ndarray:
        """Row numbers of the stacked window matrix, as a column for 2-D gathers."""
        return np.arange(len(self.window_rows[0]))[:, None]

    @cached_property
    def window_columns(self) -> dict[int, slice]:
        """Where each window's counts sit in the stacked window matrix (60 days keeps only the total)."""
        out, at = {}, 0
        for w in ALL_WINDOWS:
            width = 1 if w == 60 else self.windowed
            out[w] = slice(at, at + width)
            at += width
        return out


@dataclass(frozen=True)
class Evidence:
    """Each stage's key touchpoints as weights over the visible-count rows of :func:`touch_features`.

    Every token names one count row (``outbound_touch``: outbound touches,
    ``meeting``: meetings, an activity type: that type, ...) and has happened once
    that count is positive, so a stage's evidence share is a row of one matrix
    product: happened tokens over configured tokens. One product answers all
    stages, where a loop over stages and tokens costs a dozen array operations.
    """

    names: tuple[str, ...]  # the feature of each stage, in stage order: ``evidence_<stage>``
    weights: np.ndarray  # (stages, layout.width): how many of a stage's tokens name each count row
    sizes: np.ndarray  # tokens per stage, NaN where none is configured (its share is NaN)

    @classmethod
    def of(cls, evidence: list[tuple[str, list[str]]], layout: TouchLayout) -> Evidence:
        rows = {"outbound_touch": layout.outbound, "inbound_reply": layout.inbound,
                "decision_maker": layout.dm_col, "champion": layout.champion_col}
        meeting = layout.type_col("meeting")
        weights = np.zeros((len(evidence), layout.width))
        for s, (_, tokens) in enumerate(evidence):
            for tok in tokens:
                if tok in ("first_meeting", "meeting"):
                    if meeting is not None:  # a taxonomy without meetings never sees one
                        weights[s, meeting] += 1
                else:
                    weights[s, rows[tok] if tok in rows else _type_col(layout, tok)] += 1
        return cls(names=tuple(f"evidence_{stage}" for stage, _ in evidence), weights=weights,
                   sizes=np.array([float(len(t)) if t else np.nan for _, t in evidence]))


@dataclass(frozen=True)
class TouchTimelines:
    """All touchpoint facts of a history, sorted and summed once for any number of snapshots."""

    layout: TouchLayout
    seen: Timeline
    seen_sums: np.ndarray
    occurred: Timeline
    window_sums: np.ndarray
    late_sums: np.ndarray | None
    last: np.ndarray  # (len(LAST_OF), n) running latest occurred_at, in seen order
    unanswered_end: Timeline
    reply_start: Timeline


def prepare_touches(rows: ActivityRows, n_deals: int, layout: TouchLayout) -> TouchTimelines:
    """Sort the touchpoints (by seen and by occurred time) and derive every touch-level fact once.

    Recent windows use, for a touch with logging lag ``seen - occurred``, the identity
    "visible and in the w-day window" = visible - (lag <= w and occurred <= t - w)
    - (lag > w and visible): each term is a prefix of one of the two sort orders.
    Indicator matrices are ``(quantity, touch)`` so every running sum is contiguous.
    """
    seen_tl = Timeline(rows.deal, rows.seen, n_deals)
    occ_tl = Timeline(rows.deal, rows.occurred, n_deals)
    so, oo = seen_tl.order, occ_tl.order
    n = len(so)
    ind = np.zeros((layout.width, n), dtype=np.int32)  # one column per raw activity
    ind[0] = 1
    ind[1 + rows.type, np.arange(n)] = 1
    ind[layout.inbound] = rows.direction == 0
    ind[layout.outbound] = rows.direction == 1
    ind[layout.dm_col] = rows.role == layout.decision_maker
    ind[layout.champion_col] = rows.role == layout.champion
    ind[layout.contact_col, so] = _first_contact(seen_tl.group, rows.contact[so])
    if layout.pricing_types:
        ind[layout.pricing_col] = ind[layout.pricing_types].max(axis=0)
    late = (rows.seen - rows.occurred) > WINDOW_NS[:, None]  # (windows, n): logged after the window closed
    rows_of, window_of = layout.window_rows
    stacked = ind[rows_of]  # each window's counted quantities, one block of rows per window
    if late.any():
        late_rows = late[window_of]
        late_sums = prefix_sums((stacked * late_rows)[:, so], np.int32)
        on_time = (stacked * ~late_rows)[:, oo]
    else:  # nothing logged after its window closed (one deal scored now, typically): skip the masks
        late_sums, on_time = None, stacked[:, oo]
    which = np.vstack([np.ones((1, n), dtype=bool), rows.direction[so][None, :] == 0,
                       rows.type[so][None, :] == layout.key_type_codes[:, None]])
    return TouchTimelines(
        layout=layout, seen=seen_tl, seen_sums=prefix_sums(ind[:, so], np.int32), occurred=occ_tl,
        window_sums=prefix_sums(on_time, np.int32), late_sums=late_sums,
        last=segmented_extreme(seen_tl.group, rows.occurred[so], which),
        unanswered_end=_unanswered_end(rows, occ_tl, n_deals), reply_start=_reply_start(rows, occ_tl, n_deals),
    )


def _first_contact(deal: np.ndarray, contact: np.ndarray) -> np.ndarray:
    """True on the first touch (in the given order) of each (deal, contact): when the contact became engaged."""
    out = np.zeros(len(deal), dtype=bool)
    known = (contact >= 0).nonzero()[0]
    if len(known):
        key = deal[known] * (int(contact.max()) + 1) + contact[known]
        o = key.argsort(kind="stable")
        first = np.ones(len(o), dtype=bool)
        first[1:] = key[o][1:] != key[o][:-1]
        out[known[o[first]]] = True
    return out


def _unanswered_end(rows: ActivityRows, occ_tl: Timeline, n_deals: int) -> Timeline:
    """Per outbound touch: when it stops counting as unanswered (an inbound touch at or after it is seen)."""
    inbound = occ_tl.subset(rows.direction[occ_tl.order] == 0)
    answered_by = segmented_extreme(inbound.group, rows.seen[inbound.order],
                                    reverse=True, minimum=True)
    out = (rows.direction == 1).nonzero()[0]
    d_out = rows.deal[out]
    _, first_at_or_after = inbound.prefix(d_out, rows.occurred[out], strict=True)
    within = first_at_or_after < inbound.group_end(d_out)
    end = np.maximum(take(answered_by, first_at_or_after, within, NEVER), rows.seen[out])
    return Timeline(d_out, end, n_deals)


def _reply_start(rows: ActivityRows, occ_tl: Timeline, n_deals: int) -> Timeline:
    """Per inbound touch: from when it counts as a reply (it and an earlier outbound touch are seen)."""
    outbound = occ_tl.subset(rows.direction[occ_tl.order] == 1)
    first_seen = segmented_extreme(outbound.group, rows.seen[outbound.order],
                                   minimum=True)
    inb = (rows.direction == 0).nonzero()[0]
    d_in = rows.deal[inb]
    lo, hi = outbound.prefix(d_in, rows.occurred[inb], strict=True)
    start = np.maximum(take(first_seen, hi - 1, hi > lo, NEVER), rows.seen[inb])
    return Timeline(d_in, start, n_deals)


def _type_col(layout: TouchLayout, token: str) -> int:
    col = layout.type_col(token)
    if col is None:  # FeatureSpec construction already refuses such tokens
        raise ValueError(f"key touchpoint {token!r} is neither a known fact nor an activity type")
    return col


def touch_features(tt: TouchTimelines, q_deal: np.ndarray, q_time: np.ndarray, evidence: Evidence
                   ) -> dict[str, np.ndarray]:
    """Touchpoint features of each snapshot from the touches seen by its ``as_of``."""
    lay = tt.layout
    nq = len(q_time)
    lo, hi = tt.seen.prefix(q_deal, q_time)
    vis = (tt.seen_sums[:, hi] - tt.seen_sums[:, lo]).astype(np.float64)  # (quantity, snapshot)
    # all four windows in one search: occurred <= t - w, for each w
    # (np.tile and np.flatnonzero are Python-level wrappers: on one deal's arrays they cost more than the work)
    ol, oh = tt.occurred.prefix(np.concatenate((q_deal,) * len(ALL_WINDOWS)), (q_time - WINDOW_NS[:, None]).ravel())
    # every window's "gone" counts in one gather: row r of the stacked window matrix belongs to window
    # window_of[r], whose snapshots sit in columns [window_of[r] * nq, (window_of[r] + 1) * nq) of ol/oh
    rows_of, window_of = lay.window_rows
    at = window_of[:, None] * nq + np.arange(nq)
    gone = tt.window_sums[lay.window_index, oh[at]] - tt.window_sums[lay.window_index, ol[at]]
    if tt.late_sums is not None:
        gone += tt.late_sums[:, hi] - tt.late_sums[:, lo]
    left = vis[rows_of] - gone  # (stacked window rows, snapshot)
    counts = {w: left[cols] for w, cols in lay.window_columns.items()}
    counts[0] = vis
    out: dict[str, np.ndarray] = {"n_touches_total": vis[0]}
    for name, w, row in lay.count_features:
        out[name] = counts[w][row]
    n30 = counts[30][0]
    out["touch_trend"] = np.log2((n30 + 1.0) / (counts[60][0] - n30 + 1.0))
    n_in, n_out = vis[lay.inbound], vis[lay.outbound]
    out["n_inbound_30d"] = counts[30][lay.inbound]
    out["n_outbound_30d"] = counts[30][lay.outbound]
    out["n_inbound_total"] = n_in
    out["n_outbound_total"] = n_out
    directed = n_in + n_out
    replies = tt.reply_start.count(q_deal, q_time).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["inbound_share"] = np.where(directed > 0, n_in / directed, np.nan)
        out["reply_rate"] = np.where(n_out > 0, replies / n_out, np.nan)
    out["n_replies"] = replies
    out["n_outbound_unanswered"] = n_out - tt.unanswered_end.count(q_deal, q_time)
    out["n_contacts"] = vis[lay.contact_col]
    positive = (vis > 0).astype(np.float64)  # 1.0 where a count row has happened at least once
    out["decision_maker_engaged"] = positive[lay.dm_col]
    out["champion_engaged"] = positive[lay.champion_col]
    out["pricing_discussed"] = positive[lay.pricing_col]
    has = hi > lo
    last = tt.last[:, hi - 1] if tt.last.shape[1] else np.full((len(LAST_OF), nq), NAT)
    last = np.where(has, last, NAT)
    days_since = np.where(last != NAT, (q_time - last) / DAY_NS, np.nan)
    out["days_since_last_touch"] = days_since[0]
    out["days_since_last_inbound"] = days_since[1]
    for i, t in enumerate(KEY_TYPES):
        col = lay.type_col(t)
        out[f"days_since_last_{t}"] = days_since[2 + i] if col is not None else np.full(nq, np.nan)
        out[f"has_{t}"] = positive[col] if col is not None else np.zeros(nq)
    with np.errstate(invalid="ignore"):
        share = (evidence.weights @ positive) / evidence.sizes[:, None]  # (stage, snapshot); exact small integers
    out.update(zip(evidence.names, share, strict=True))
    # the furthest stage (in order, from 1) whose key touchpoints all happened; 0: none
    n_stages = len(evidence.names)
    full = (share >= 1.0) * np.arange(1, n_stages + 1)[:, None]
    out["evidence_stage_order"] = (full.max(axis=0) if n_stages else np.zeros(nq, dtype=np.int64)).astype(
        np.float64)
    return out
