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
from collections.abc import Iterable, Mapping

import numpy as np
from numpy.typing import ArrayLike

from dealscore.scoring.columns import nan_to_zero
from dealscore.scoring.result import ScoreResult

WARNING_WEIGHTS = {"high": 0.2, "medium": 0.1, "low": 0.05}
DROP_WEIGHT = 2.0
#: Share of the listed deals (by priority) labelled high, and high or medium.
HIGH_SHARE = 0.10
MEDIUM_SHARE = 0.30


def warning_weight(severities: Iterable[str]) -> float:
    """``w``: the warnings' weight by severity, capped at 1."""
    return min(1.0, sum(WARNING_WEIGHTS.get(s, 0.0) for s in severities))


def risk_factors(
    p_win: ArrayLike, typical: ArrayLike, weight: ArrayLike, previous_p_win: ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``gap`` and ``boost`` of the formulas, element by element (NaN typical or previous: none known).

    The one statement of the rule: :func:`value_at_risk_array` (the scorer, a
    whole block at once), :func:`value_at_risk` (one result) and :func:`at_risk`
    (the ranking) all compute through it.
    """
    p = np.asarray(p_win, dtype=float)
    gap = np.maximum(nan_to_zero(np.asarray(typical, dtype=float)) - p, 0.0)
    boost = 1.0 + np.asarray(weight, dtype=float)
    if previous_p_win is not None:
        drop = np.maximum(nan_to_zero(np.asarray(previous_p_win, dtype=float)) - p, 0.0)
        boost = boost * (1.0 + np.minimum(1.0, DROP_WEIGHT * drop))
    return gap, boost


def value_at_risk_array(amount: ArrayLike, p_win: ArrayLike, typical: ArrayLike) -> np.ndarray:
    """amount × min(1, gap) element by element: money, 0 where the amount is unknown (NaN)."""
    gap, _ = risk_factors(p_win, typical, 0.0)
    return nan_to_zero(np.asarray(amount, dtype=float)) * np.minimum(gap, 1.0)


def _nan(value: float | None) -> float:
    return np.nan if value is None else float(value)


def value_at_risk(amount: float | None, p_win: float, typical: float | None) -> float:
    """amount × min(1, gap) of one deal (0 when the amount or the stage's usual win rate is unknown)."""
    return float(value_at_risk_array(_nan(amount), p_win, _nan(typical)))


def risk_levels(n: int) -> list[str]:
    """Levels of ``n`` deals already ordered by priority: top decile high, next two deciles medium."""
    if n <= 0:
        return []
    n_high = max(1, math.ceil(HIGH_SHARE * n))
    n_medium = max(n_high, math.ceil(MEDIUM_SHARE * n))
    return ["high" if k < n_high else "medium" if k < n_medium else "low" for k in range(n)]


def kept_by_filter(results: Iterable[ScoreResult], owner: str | None = None, team: str | None = None,
                   ) -> list[ScoreResult]:
    """The results an owner and team filter keeps (``None``: no filter on it): the at-risk list's rule, which the
    CLI also reads to tell "nothing matches" from "nothing at risk"."""
    return [r for r in results if (owner is None or r.owner_id == owner) and (team is None or r.team == team)]


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
    for r in kept_by_filter(results, owner, team):
        prev = previous.get(r.deal_id, r.previous_p_win) if previous is not None else r.previous_p_win
        gap, boost = risk_factors(r.p_win, _nan(r.stage_typical_p_win),
                                  warning_weight(w.severity for w in r.warnings), prev)
        if gap <= 0:
            continue
        has_amount = r.amount is not None and r.amount == r.amount
        var = value_at_risk(r.amount, r.p_win, r.stage_typical_p_win)
        # money at risk times urgency; gap times urgency when the amount is unknown (listed after)
        prio = float(var * boost) if has_amount else float(gap * boost)
        ranked.append((has_amount, prio, r.model_copy(update={"previous_p_win": prev}), var))
    ranked.sort(key=lambda t: (not t[0], -t[1], t[2].deal_id))
    with_amount = sum(1 for t in ranked if t[0])
    levels = risk_levels(with_amount) + ["low"] * (len(ranked) - with_amount)
    out = [r.model_copy(update={"value_at_risk": var, "priority": prio, "risk_level": level})
           for (_, prio, r, var), level in zip(ranked, levels, strict=True)]
    return out if top is None else out[: max(0, int(top))]
