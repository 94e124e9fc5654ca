"""Per-deal contributions turned into a rep's reasons, in probability points.

**From log-odds to points.** LightGBM's ``pred_contrib`` splits the raw score of
one deal exactly: ``raw = bias + Σ φ_j`` (log-odds, before calibration). The
calibrated probability is ``p = cal(raw)`` and the base is ``p₀ = cal(bias)``,
what the model says about a deal with nothing distinctive. We give each feature
the share of ``p − p₀`` that its ``φ_j`` has of ``raw − bias``:

    points_j = 100 · φ_j · (p − p₀) / (raw − bias)

The factor is the secant slope of the (monotone) calibration between the base
and the deal's score, so it is never negative (signs are kept), never explodes
when the φ's cancel out (it is bounded by the calibration's steepest slope),
and ``100·p₀ + Σ points_j == 100·p`` exactly. When ``raw == bias`` the local
slope is used instead and the points are as small as the distance to the base.

**Grouping.** Features that describe one business fact (e.g. days since the
customer last replied and outbound touches since) are summed into one reason
and worded from the deal's own values: "No reply from the customer in 21 days".
At most five reasons up and five down are shown; whatever the shown reasons do
not cover is reported as ``other_points`` so that the shown figures still add up.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dealscore.scoring.columns import Columns
from dealscore.scoring.result import Reason
from dealscore.wording import percent_text

#: Reasons smaller than this (probability points) are not worth a rep's attention.
MIN_REASON_POINTS = 0.5
MAX_REASONS = 5


def probability_points(
    contributions: np.ndarray, p_win: np.ndarray, calibrate: Callable[[np.ndarray], np.ndarray],
    base_probability: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature points (n, n_features) and base points (n,), all in probability points.

    ``contributions`` is LightGBM's ``pred_contrib`` (last column = bias); ``p_win``
    must be ``calibrate(raw)`` of the same rows; ``base_probability`` is
    ``calibrate(bias)`` when the caller already has it (saves a calibrator call).
    """
    contrib = np.atleast_2d(np.asarray(contributions, dtype=float))
    phi, bias = contrib[:, :-1], contrib[:, -1]
    margin = phi.sum(axis=1)
    base = np.asarray(calibrate(bias) if base_probability is None else base_probability, dtype=float)
    p = np.asarray(p_win, dtype=float)
    small = np.abs(margin) < 1e-9
    slope = np.empty_like(margin)
    slope[~small] = (p[~small] - base[~small]) / margin[~small]
    if small.any():
        h = 1e-4
        raw = bias[small] + margin[small]
        slope[small] = (np.asarray(calibrate(raw + h)) - np.asarray(calibrate(raw - h))) / (2 * h)
    points = 100.0 * phi * slope[:, None]
    return points, 100.0 * base


# --------------------------------------------------------------------------- business groups


def _n(x: float) -> int:
    return round(float(x))


def _days(x: float) -> str:
    k = _n(x)
    return "1 day" if k == 1 else f"{k} days"


def _times(k: int) -> str:
    return {1: "once", 2: "twice"}.get(k, f"{k} times")


def _isnan(x: float) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


@dataclass(frozen=True)
class ReasonGroup:
    """A business fact: the feature columns behind it and how to say it for one deal."""

    key: str
    features: tuple[str, ...]
    describe: Callable[[Columns, int], str]


def _get(c: Columns, name: str, i: int) -> float:
    """A feature value, NaN when the spec has no such column."""
    return float(c.num(name)[i]) if c.has(name) else float("nan")


def _customer_response(c: Columns, i: int) -> str:
    since = _get(c, "days_since_last_inbound", i)
    unanswered = _get(c, "n_outbound_unanswered", i)
    rate = _get(c, "reply_rate", i)
    touches = "touch" if not _isnan(unanswered) and _n(unanswered) == 1 else "touches"
    tail = f" ({_n(unanswered)} outreach {touches} unanswered)" if not _isnan(unanswered) and unanswered >= 1 else ""
    if _isnan(since):
        return "The customer has not replied yet" + tail
    head = (f"No reply from the customer in {_days(since)}" if since >= 7 else
            "Customer replied today" if since < 1 else f"Customer replied {_days(since)} ago")
    if not tail and not _isnan(rate):
        tail = ", answering every outreach" if rate >= 1 else f", answering {percent_text(rate)} of outreach"
    return head + tail


def _activity(c: Columns, i: int) -> str:
    since = _get(c, "days_since_last_touch", i)
    n30 = _get(c, "n_touches_30d", i)
    trend = _get(c, "touch_trend", i)
    if _isnan(since):
        parts = ["No touchpoint logged yet"]
    elif since >= 7:
        parts = [f"No touchpoint in {_days(since)}"]
    else:
        parts = ["Touched today" if since < 1 else f"Last touchpoint {_days(since)} ago"]
    if not _isnan(n30):
        parts.append(f"{_n(n30)} touchpoint{'s' if _n(n30) != 1 else ''} in the last 30 days")
    if not _isnan(trend) and abs(trend) >= 0.5:
        parts.append("picking up" if trend > 0 else "slowing down")
    return ", ".join(parts)


def _role(count_col: str, flag_col: str, yes: str, counted: str, no: str) -> Callable[[Columns, int], str]:
    def describe(c: Columns, i: int) -> str:
        k = _get(c, count_col, i)
        if not _isnan(k) and k >= 1:
            return counted.format(times=_times(_n(k)))
        return yes if _get(c, flag_col, i) >= 1 else no
    return describe


def _contacts(c: Columns, i: int) -> str:
    k = _get(c, "n_contacts", i)
    if _isnan(k) or k < 1:
        return "No named contact at the customer"
    if k < 2:
        return "Only one contact at the customer"
    return f"{_n(k)} contacts involved at the customer"


def _touch_type(t: str, noun: str, plural: str) -> Callable[[Columns, int], str]:
    """'3 meetings so far, the last 13 days ago' / 'No demo yet' from a type's counts and recency."""
    def describe(c: Columns, i: int) -> str:
        total = _get(c, f"n_{t}_total", i)
        flag = _get(c, f"has_{t}", i)
        if _isnan(total):
            total = 1.0 if flag >= 1 else (0.0 if not _isnan(flag) else float("nan"))
        if _isnan(total) or total < 1:
            if t == "proposal" and _get(c, "pricing_discussed", i) >= 1:
                return "Pricing discussed, no formal proposal yet"
            return f"No {noun} yet"
        k = _n(total)
        text = f"{k} {noun if k == 1 else plural} so far"
        last = _get(c, f"days_since_last_{t}", i)
        n30 = _get(c, f"n_{t}_30d", i)
        if not _isnan(last):
            text += ", the last today" if last < 1 else f", the last {_days(last)} ago"
        elif not _isnan(n30):
            text += f", {_n(n30)} in the last 30 days"
        return text
    return describe


def _stage(c: Columns, i: int) -> str:
    s = c.text("declared_stage")[i]
    text = f"Recorded in the CRM as {s}" if s else "No stage recorded in the CRM"
    back = _get(c, "n_regressions", i)
    skipped = _get(c, "n_skipped_stages", i)
    if back >= 1:
        text += f", moved back {_times(_n(back))}"
    if skipped >= 1:
        text += f", {_n(skipped)} stage{'s' if _n(skipped) != 1 else ''} skipped"
    return text


def _time_in_stage(c: Columns, i: int) -> str:
    d = _get(c, "days_in_stage", i)
    ratio = _get(c, "stage_time_ratio", i)
    s = c.text("declared_stage")[i] or "this stage"
    if _isnan(d):
        return "Time in stage unknown"
    text = f"{_days(d)} in {s}"
    if not _isnan(ratio) and ratio > 0:
        text += (f", {ratio:.1f}× what won deals needed" if ratio >= 1.05
                 else ", within what won deals needed")
    return text


def _evidence(stages: list[str]) -> Callable[[Columns, int], str]:
    def describe(c: Columns, i: int) -> str:
        k = _get(c, "evidence_stage_order", i)
        if _isnan(k) or k < 1 or not stages:
            return "No stage's key touchpoints have all happened yet"
        return f"Key touchpoints complete up to {stages[min(_n(k), len(stages)) - 1]}"
    return describe


def _close_date(c: Columns, i: int) -> str:
    to_close = _get(c, "days_to_expected_close", i)
    pushes = _get(c, "close_date_pushes", i)
    if _isnan(to_close):
        parts = ["No expected close date"]
    elif to_close < 0:
        parts = [f"Expected close date passed {_days(-to_close)} ago"]
    else:
        parts = [f"Expected to close in {_days(to_close)}"]
    parts.append(f"pushed {_times(_n(pushes))}" if not _isnan(pushes) and pushes >= 1 else "never pushed")
    return ", ".join(parts)


def _age(c: Columns, i: int) -> str:
    a = _get(c, "deal_age_days", i)
    return "Deal age unknown" if _isnan(a) else f"Deal open for {_days(a)}"


def _amount(c: Columns, i: int) -> str:
    a = _get(c, "amount", i)
    if _isnan(a):
        return "No amount recorded"
    share = _get(c, "amount_to_revenue", i)
    tail = f" ({100 * share:.2g}% of the account's revenue)" if not _isnan(share) and share > 0 else ""
    return f"Deal size {_compact(a)}{tail}"


def _owner(c: Columns, i: int) -> str:
    closed, rate, open_ = (_get(c, f"owner_{k}", i) for k in ("closed_deals", "win_rate", "open_deals"))
    if not _isnan(closed) and closed < 1:
        parts = ["Owner has no closed deals yet"]
    elif not _isnan(rate):
        over = f" over {_n(closed)} closed deals" if not _isnan(closed) else ""
        parts = [f"Owner's estimated win rate {percent_text(rate)}{over}"]
    else:
        parts = [f"Owner has closed {_n(closed)} deals"] if not _isnan(closed) else []
    if not _isnan(open_):
        parts.append(f"{_n(open_)} other deals open")
    return ", ".join(parts) or "Owner's record unknown"


def _account(c: Columns, i: int) -> str:
    prior, closed, rate = (_get(c, f"account_{k}", i) for k in ("prior_deals", "closed_deals", "win_rate"))
    if _isnan(prior) or prior < 1:
        return "First deal with this account"
    text = f"{_n(prior)} earlier deal{'s' if _n(prior) != 1 else ''} with this account"
    if not _isnan(closed) and closed >= 1:
        text += f", {_n(closed)} closed" + (f" (estimated win rate {percent_text(rate)})" if not _isnan(rate) else "")
    return text


_TYPE_NOUNS = {"meeting": ("meeting", "meetings"), "demo": ("demo", "demos"), "proposal": ("proposal", "proposals"),
               "contract": ("contract", "contracts"), "email": ("email", "emails"), "call": ("call", "calls"),
               "note": ("note", "notes")}
_WINDOWS = ("7d", "30d", "90d", "total")


def known_groups(activity_types: Sequence[str], stages: Sequence[str]) -> list[ReasonGroup]:
    """The business groups scoring words itself, for a spec's activity types and stages."""
    groups = [
        ReasonGroup("customer_response", ("days_since_last_inbound", "n_outbound_unanswered", "n_replies", "reply_rate",
                                          "inbound_share", "n_inbound_30d", "n_inbound_total", "n_outbound_30d",
                                          "n_outbound_total"), _customer_response),
        ReasonGroup("activity", ("days_since_last_touch", "n_touches_7d", "n_touches_30d", "n_touches_90d",
                                 "n_touches_total", "touch_trend"), _activity),
        ReasonGroup("decision_maker", ("decision_maker_engaged", "n_decision_maker_touches"), _role(
            "n_decision_maker_touches", "decision_maker_engaged",
            "Decision maker engaged", "Decision maker met {times}", "No decision maker engaged yet")),
        ReasonGroup("champion", ("champion_engaged", "n_champion_touches"), _role(
            "n_champion_touches", "champion_engaged",
            "Champion engaged", "Champion engaged {times}", "No champion engaged yet")),
        ReasonGroup("stakeholders", ("n_contacts",), _contacts),
    ]
    for t in activity_types:
        noun, plural = _TYPE_NOUNS.get(t, (f"{t} touchpoint", f"{t} touchpoints"))
        feats = (f"has_{t}", *(f"n_{t}_{w}" for w in _WINDOWS), f"days_since_last_{t}")
        if t == "proposal":
            feats = (*feats, "pricing_discussed")
        groups.append(ReasonGroup(plural.replace(" ", "_"), feats, _touch_type(t, noun, plural)))
    if "proposal" not in activity_types:
        groups.append(ReasonGroup("pricing", ("pricing_discussed",), lambda c, i: "Pricing discussed"
                                  if _get(c, "pricing_discussed", i) >= 1 else "Pricing not discussed yet"))
    groups += [
        ReasonGroup("evidence", (*(f"evidence_{s}" for s in stages), "evidence_stage_order"), _evidence(list(stages))),
        ReasonGroup("stage", ("declared_stage", "declared_stage_order", "max_stage_order", "n_stage_changes",
                              "n_regressions", "n_skipped_stages", "days_since_stage_update"), _stage),
        ReasonGroup("time_in_stage", ("days_in_stage", "stage_time_ratio", "stage_median_days_won"), _time_in_stage),
        ReasonGroup("close_date", ("days_to_expected_close", "close_date_pushes"), _close_date),
        ReasonGroup("deal_age", ("deal_age_days",), _age),
        ReasonGroup("deal_size", ("amount", "amount_to_revenue"), _amount),
        ReasonGroup("owner", ("owner_closed_deals", "owner_win_rate", "owner_open_deals"), _owner),
        ReasonGroup("account_history", ("account_prior_deals", "account_closed_deals", "account_win_rate"), _account),
    ]
    return groups


#: The groups for the shipped taxonomy (kept for callers that do not pass a spec).
KNOWN_GROUPS: tuple[ReasonGroup, ...] = tuple(known_groups(
    ("email", "call", "meeting", "demo", "proposal", "contract", "note"),
    ("prospecting", "qualification", "discovery", "solution", "proposal", "negotiation"),
))


def _compact(v: float) -> str:
    """45,000 → '45,000'; 2,203,608,000 → '2.2bn': big figures stay readable in a sentence."""
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:.1f}bn"
    if a >= 1e7:
        return f"{v / 1e6:.0f}m"
    return f"{v:,.0f}" if a >= 100 else f"{v:.3g}"


def format_value(v: float, unit: str | None) -> str:
    """A feature value in the words of its catalog unit."""
    u = (unit or "").lower()
    if u == "days":
        return "1 day" if round(v) == 1 else f"{round(v)} days"
    if u in ("0/1", "flag"):
        return "yes" if v >= 0.5 else "no"
    if u == "share":
        return f"{v:.0%}"
    if u in ("count", "people", "stage order"):
        return f"{round(v):,}"
    if u == "log2 ratio":
        return f"{v:+.2f}"
    if u == "ratio":
        return f"{v:.2f}"
    return _compact(v)


def _fallback(feature: str, meaning: str, unit: str | None) -> Callable[[Columns, int], str]:
    """Word an unknown feature from its catalog entry: 'The account's annual revenue: 2.2bn'."""
    label = (meaning or feature.replace("_", " ")).split(" (")[0].rstrip(".")
    label = label[:1].upper() + label[1:]

    def describe(c: Columns, i: int) -> str:
        v = c.value(feature, i)
        if v is None or _isnan(v):
            return f"{label}: unknown"
        if isinstance(v, float):
            return f"{label}: {format_value(v, unit)}"
        return f"{label}: {v}"
    return describe


@dataclass
class ReasonGrouping:
    """Feature → group assignment for one feature spec, precomputed once per bundle."""

    groups: list[ReasonGroup]
    matrix: np.ndarray  # (n_features, n_groups) 0/1

    @classmethod
    def build(cls, feature_names: Sequence[str], spec_info: Mapping[str, tuple[str, str, str | None]] | None = None,
              *, activity_types: Sequence[str] | None = None, stages: Sequence[str] | None = None
              ) -> ReasonGrouping:
        """Group ``feature_names``; ``spec_info`` maps feature → (group, meaning, unit) for the fallback.

        ``activity_types`` and ``stages`` (the spec's) name the per-type and
        per-stage evidence columns; by default they are read off the names.
        """
        info = dict(spec_info or {})
        names = list(feature_names)
        if activity_types is None:
            activity_types = [n[len("n_"):-len("_total")] for n in names
                              if n.startswith("n_") and n.endswith("_total") and n != "n_touches_total"
                              and n not in ("n_inbound_total", "n_outbound_total")]
        if stages is None:
            stages = [n[len("evidence_"):] for n in names if n.startswith("evidence_") and n != "evidence_stage_order"]
        groups: list[ReasonGroup] = []
        owner: dict[str, int] = {}
        for g in known_groups(activity_types, stages):
            present = tuple(f for f in g.features if f in names)
            if present:
                owner.update({f: len(groups) for f in present})
                groups.append(ReasonGroup(g.key, present, g.describe))
        for f in names:
            if f in owner:
                continue
            group, meaning, unit = info.get(f, ("other", f, None))
            owner[f] = len(groups)
            groups.append(ReasonGroup(f"{group}:{f}", (f,), _fallback(f, meaning, unit)))
        matrix = np.zeros((len(names), len(groups)))
        for j, f in enumerate(names):
            matrix[j, owner[f]] = 1.0
        return cls(groups, matrix)

    def group_points(self, points: np.ndarray) -> np.ndarray:
        """Sum per-feature points into per-group points: (n, n_groups)."""
        return np.atleast_2d(points) @ self.matrix


def pick_reasons(
    grouping: ReasonGrouping,
    group_points: np.ndarray,
    cols: Columns,
    i: int,
    *,
    max_reasons: int = MAX_REASONS,
    min_points: float = MIN_REASON_POINTS,
) -> tuple[list[Reason], list[Reason], float]:
    """Reasons up and down for row ``i`` and the points the shown reasons leave out."""
    row = group_points[i]
    order = np.argsort(-row, kind="stable")
    up_idx = [j for j in order[:max_reasons] if row[j] >= min_points]
    down_order = np.argsort(row, kind="stable")
    down_idx = [j for j in down_order[:max_reasons] if row[j] <= -min_points]

    def make(j: int) -> Reason:
        g = grouping.groups[j]
        return Reason(group=g.key.split(":")[0], text=g.describe(cols, i), points=float(row[j]),
                      features=list(g.features))

    up = [make(j) for j in up_idx]
    down = [make(j) for j in down_idx]
    other = float(row.sum() - sum(r.points for r in up) - sum(r.points for r in down))
    return up, down, other
