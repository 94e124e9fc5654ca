"""The Monday question: which open deals put the most money at risk, and why.

Three numbers, each with one meaning (documented in docs/scoring.md)::

    gap           = max(0, stage_typical_p_win − p_win)      # below what this declared stage usually wins
    value_at_risk = amount · min(1, gap)                      # money: never more than the amount
    boost         = (1 + w) · (1 + d)
    w             = min(1, 0.2·#high + 0.1·#medium + 0.05·#low warnings)
    d             = min(1, 2 · max(0, previous_p_win − p_win))  # a 10-point drop adds 20%
    priority      = value_at_risk · boost                     # orders the list; not money

``value_at_risk`` is what the deal would be worth in expectation if it won as
often as its stage usually does, minus what it is worth now: money, additive
over deals (the page's total means something). Warnings and a recent drop say
*how urgent* a deal is, not how much money is at stake, so they only enter the
``priority`` that orders the list. A deal scoring at or above its stage's usual
win rate is not at risk, whatever its warnings.

The ``risk_level`` of a listed deal is relative to the list it is ranked in:
``high`` for the top decile of priority (at least one deal), ``medium`` for the
next two deciles, ``low`` for the rest. A label every deal carries discriminates
nothing; a top decile does. Deals without an amount have no money at risk and
are listed after those with one (ordered by gap · boost), at level ``low``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from dealscore.scoring.result import DealWarning, ScoreResult

WARNING_WEIGHTS = {"high": 0.2, "medium": 0.1, "low": 0.05}
DROP_WEIGHT = 2.0
#: Share of the listed deals (by priority) labelled high, and high or medium.
HIGH_SHARE = 0.10
MEDIUM_SHARE = 0.30


def risk_boost(warnings: Sequence[DealWarning], p_win: float, previous_p_win: float | None) -> float:
    """The urgency multiplier warnings and a recent score drop put on a deal's priority."""
    w = min(1.0, sum(WARNING_WEIGHTS.get(x.severity, 0.0) for x in warnings))
    drop = 0.0 if previous_p_win is None else max(0.0, previous_p_win - p_win)
    return (1.0 + w) * (1.0 + min(1.0, DROP_WEIGHT * drop))


def probability_gap(p_win: float, typical: float | None) -> float:
    """How far the deal scores below what deals in its declared stage usually win."""
    return 0.0 if typical is None or typical != typical else max(0.0, typical - p_win)


def value_at_risk(amount: Any, p_win: Any, typical: Any) -> Any:
    """amount × min(1, max(0, typical − p_win)): money, 0 when the amount or the stage's rate is unknown.

    The one formula for the scorer (arrays of a block) and the ranking (one deal):
    scalars give a float, arrays an array.
    """
    a = np.asarray(amount if amount is not None else np.nan, dtype=float)
    t = np.asarray(typical if typical is not None else np.nan, dtype=float)
    gap = np.clip(np.nan_to_num(t - np.asarray(p_win, dtype=float), nan=0.0), 0.0, 1.0)
    out = np.nan_to_num(a, nan=0.0) * gap
    return float(out) if out.ndim == 0 else out


def priority(value: float, gap: float, boost: float, has_amount: bool) -> float:
    """The ordering key: money at risk times urgency (gap times urgency when the amount is unknown)."""
    return value * boost if has_amount else gap * boost


def risk_levels(n: int) -> list[str]:
    """Levels of ``n`` deals already ordered by priority: top decile high, next two deciles medium."""
    if n <= 0:
        return []
    n_high = max(1, math.ceil(HIGH_SHARE * n))
    n_medium = max(n_high, math.ceil(MEDIUM_SHARE * n))
    return ["high" if k < n_high else "medium" if k < n_medium else "low" for k in range(n)]


def at_risk(
    results: Iterable[ScoreResult],
    *,
    owner: str | None = None,
    team: str | None = None,
    top: int | None = None,
    previous: Mapping[str, float] | None = None,
) -> list[ScoreResult]:
    """Deals below their stage's usual win rate, highest priority first.

    ``previous`` maps deal_id → an earlier p_win (e.g. last week's score); when
    given it overrides each result's ``previous_p_win``. Returned results are
    copies with ``value_at_risk``, ``priority``, ``risk_level`` (and
    ``previous_p_win``) filled in; levels are relative to this list (before ``top``).
    """
    ranked: list[tuple[bool, float, ScoreResult, float]] = []
    for r in results:
        if owner is not None and r.owner_id != owner:
            continue
        if team is not None and r.team != team:
            continue
        prev = previous.get(r.deal_id, r.previous_p_win) if previous is not None else r.previous_p_win
        gap = probability_gap(r.p_win, r.stage_typical_p_win)
        if gap <= 0:
            continue
        has_amount = r.amount is not None and r.amount == r.amount
        var = value_at_risk(r.amount, r.p_win, r.stage_typical_p_win)
        prio = priority(var, gap, risk_boost(r.warnings, r.p_win, prev), has_amount)
        ranked.append((has_amount, prio, r.model_copy(update={"previous_p_win": prev}), var))
    ranked.sort(key=lambda t: (not t[0], -t[1], t[2].deal_id))
    with_amount = sum(1 for t in ranked if t[0])
    levels = risk_levels(with_amount) + ["low"] * (len(ranked) - with_amount)
    out = [r.model_copy(update={"value_at_risk": var, "priority": prio, "risk_level": level})
           for (_, prio, r, var), level in zip(ranked, levels, strict=True)]
    return out if top is None else out[: max(0, int(top))]
