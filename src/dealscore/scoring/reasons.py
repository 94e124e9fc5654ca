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


def _customer_response(c: Columns, i: int) -> str:
    since = c.num("days_since_last_inbound")[i]
    unanswered = c.num("n_outbound_unanswered")[i]
    tail = f" ({_n(unanswered)} outreach touches unanswered)" if not _isnan(unanswered) and unanswered >= 1 else ""
    if _isnan(since):
        return "The customer has not replied yet" + tail
    if since >= 7:
        return f"No reply from the customer in {_days(since)}" + tail
    return ("Customer replied today" if since < 1 else f"Customer replied {_days(since)} ago") + tail


def _activity(c: Columns, i: int) -> str:
    since = c.num("days_since_last_touch")[i]
    n30 = c.num("n_touches_30d")[i]
    parts = []
    if _isnan(since):
        parts.append("No touchpoint logged yet")
    elif since >= 7:
        parts.append(f"No touchpoint in {_days(since)}")
    else:
        parts.append("Touched today" if since < 1 else f"Last touchpoint {_days(since)} ago")
    if not _isnan(n30):
        parts.append(f"{_n(n30)} touchpoint{'s' if _n(n30) != 1 else ''} in the last 30 days")
    return ", ".join(parts)


def _count_or_flag(count_col: str, flag_col: str, yes: str, counted: str, no: str) -> Callable[[Columns, int], str]:
    def describe(c: Columns, i: int) -> str:
        k = c.num(count_col)[i] if c.has(count_col) else float("nan")
        flag = c.num(flag_col)[i]
        if not _isnan(k) and k >= 1:
            return counted.format(times=_times(_n(k)))
        if (not _isnan(flag) and flag >= 1) or (not _isnan(k) and k >= 1):
            return yes
        return no
    return describe


def _contacts(c: Columns, i: int) -> str:
    k = c.num("n_contacts")[i]
    if _isnan(k) or k < 1:
        return "No named contact at the customer"
    if k < 2:
        return "Only one contact at the customer"
    return f"{_n(k)} contacts involved at the customer"


def _flag_text(col: str, yes: str, no: str) -> Callable[[Columns, int], str]:
    return lambda c, i: yes if c.num(col)[i] >= 1 else no


def _proposal(c: Columns, i: int) -> str:
    if c.num("has_proposal")[i] >= 1:
        return "Proposal sent"
    if c.num("pricing_discussed")[i] >= 1:
        return "Pricing discussed, no formal proposal yet"
    return "No proposal sent and pricing not discussed"


def _stage(c: Columns, i: int) -> str:
    s = c.text("declared_stage")[i]
    return f"Recorded in the CRM as {s}" if s else "No stage recorded in the CRM"


def _time_in_stage(c: Columns, i: int) -> str:
    d = c.num("days_in_stage")[i]
    ratio = c.num("stage_time_ratio")[i]
    s = c.text("declared_stage")[i] or "this stage"
    if _isnan(d):
        return "Time in stage unknown"
    text = f"{_days(d)} in {s}"
    if not _isnan(ratio) and ratio > 0:
        text += (f", {ratio:.1f}× what won deals needed" if ratio >= 1.05
                 else ", within what won deals needed")
    return text


def _close_date(c: Columns, i: int) -> str:
    to_close = c.num("days_to_expected_close")[i]
    pushes = c.num("close_date_pushes")[i]
    parts = []
    if _isnan(to_close):
        parts.append("No expected close date")
    elif to_close < 0:
        parts.append(f"Expected close date passed {_days(-to_close)} ago")
    else:
        parts.append(f"Expected to close in {_days(to_close)}")
    if not _isnan(pushes) and pushes >= 1:
        parts.append(f"pushed {_times(_n(pushes))}")
    else:
        parts.append("never pushed")
    return ", ".join(parts)


def _age(c: Columns, i: int) -> str:
    a = c.num("deal_age_days")[i]
    return "Deal age unknown" if _isnan(a) else f"Deal open for {_days(a)}"


def _amount(c: Columns, i: int) -> str:
    a = c.num("amount")[i]
    return "No amount recorded" if _isnan(a) else f"Deal size {a:,.0f}"


#: The business groups the scoring layer knows how to word; other features fall
#: back to their FeatureSpec group and meaning.
KNOWN_GROUPS: tuple[ReasonGroup, ...] = (
    ReasonGroup("customer_response", ("days_since_last_inbound", "n_outbound_unanswered"), _customer_response),
    ReasonGroup("activity", ("days_since_last_touch", "n_touches_30d"), _activity),
    ReasonGroup("decision_maker", ("decision_maker_engaged", "n_decision_maker_touches"), _count_or_flag(
        "n_decision_maker_touches", "decision_maker_engaged",
        "Decision maker engaged", "Decision maker met {times}", "No decision maker engaged yet")),
    ReasonGroup("champion", ("champion_engaged", "n_champion_touches"), _count_or_flag(
        "n_champion_touches", "champion_engaged",
        "Champion engaged", "Champion engaged {times}", "No champion engaged yet")),
    ReasonGroup("stakeholders", ("n_contacts",), _contacts),
    ReasonGroup("meetings", ("has_meeting", "n_meetings"), _count_or_flag(
        "n_meetings", "has_meeting", "A meeting has happened", "Met the customer {times}", "No meeting yet")),
    ReasonGroup("demo", ("has_demo",), _flag_text("has_demo", "Demo given", "No demo yet")),
    ReasonGroup("proposal", ("has_proposal", "pricing_discussed"), _proposal),
    ReasonGroup("contract", ("has_contract",), _flag_text("has_contract", "Contract sent", "No contract sent yet")),
    ReasonGroup("stage", ("declared_stage", "declared_stage_order"), _stage),
    ReasonGroup("time_in_stage", ("days_in_stage", "stage_time_ratio"), _time_in_stage),
    ReasonGroup("close_date", ("days_to_expected_close", "close_date_pushes"), _close_date),
    ReasonGroup("deal_age", ("deal_age_days",), _age),
    ReasonGroup("deal_size", ("amount",), _amount),
)


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
    def build(cls, feature_names: Sequence[str], spec_info: Mapping[str, tuple[str, str, str | None]] | None = None
              ) -> ReasonGrouping:
        """Group ``feature_names``; ``spec_info`` maps feature → (group, meaning, unit) for the fallback."""
        info = dict(spec_info or {})
        names = list(feature_names)
        groups: list[ReasonGroup] = []
        owner: dict[str, int] = {}
        for g in KNOWN_GROUPS:
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
