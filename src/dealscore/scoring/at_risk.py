"""The Monday question: which open deals put the most money at risk, and why.

Value at risk (documented in docs/scoring.md)::

    gap   = max(0, stage_typical_p_win − p_win)          # below what this declared stage usually wins
    boost = (1 + w) · (1 + d)
    w     = min(1, 0.2·#high + 0.1·#medium + 0.05·#low warnings)
    d     = min(1, 2 · max(0, previous_p_win − p_win))   # a 10-point drop adds 20%
    value_at_risk = amount · gap · boost

The gap is what makes a deal "at risk" at all: a deal scoring at or above its
stage's historical win rate carries no value at risk, whatever its warnings.
Warnings and a recent drop only reorder the deals that are below par. Deals
without an amount are kept (their value at risk is 0) and ranked after those
with one, by gap × boost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from dealscore.scoring.columns import nan_to_zero
from dealscore.scoring.result import DealWarning, ScoreResult

WARNING_WEIGHTS = {"high": 0.2, "medium": 0.1, "low": 0.05}
DROP_WEIGHT = 2.0


def warning_weight(severities: Iterable[str]) -> float:
    """``w``: the warnings' weight by severity, capped at 1."""
    return min(1.0, sum(WARNING_WEIGHTS.get(s, 0.0) for s in severities))


def risk_factors(
    p_win: ArrayLike, typical: ArrayLike, weight: ArrayLike, previous_p_win: ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``gap`` and ``boost`` of the formula, element by element (NaN typical or previous: none known).

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


def value_at_risk_array(
    amount: ArrayLike, p_win: ArrayLike, typical: ArrayLike, weight: ArrayLike,
    previous_p_win: ArrayLike | None = None,
) -> np.ndarray:
    """amount × gap × boost element by element (0 where the amount is unknown, NaN)."""
    gap, boost = risk_factors(p_win, typical, weight, previous_p_win)
    return nan_to_zero(np.asarray(amount, dtype=float)) * gap * boost


def _nan(value: float | None) -> float:
    return np.nan if value is None else float(value)


def value_at_risk(
    amount: float | None, p_win: float, typical: float | None, warnings: Sequence[DealWarning] = (),
    previous_p_win: float | None = None,
) -> float:
    """amount × gap × boost of one deal (0 when the amount is unknown)."""
    weight = warning_weight(w.severity for w in warnings)
    prev = None if previous_p_win is None else float(previous_p_win)
    return float(value_at_risk_array(_nan(amount), p_win, _nan(typical), weight, prev))


def at_risk(
    results: Iterable[ScoreResult],
    *,
    owner: str | None = None,
    team: str | None = None,
    top: int | None = None,
    previous: Mapping[str, float] | None = None,
) -> list[ScoreResult]:
    """Deals below their stage's usual win rate, largest value at risk first.

    ``previous`` maps deal_id → an earlier p_win (e.g. last week's score); when
    given it overrides each result's ``previous_p_win``. Returned results are
    copies with ``value_at_risk`` (and ``previous_p_win``) filled in.
    """
    ranked: list[tuple[float, float, ScoreResult]] = []
    for r in results:
        if owner is not None and r.owner_id != owner:
            continue
        if team is not None and r.team != team:
            continue
        prev = previous.get(r.deal_id, r.previous_p_win) if previous is not None else r.previous_p_win
        gap, boost = risk_factors(r.p_win, _nan(r.stage_typical_p_win),
                                  warning_weight(w.severity for w in r.warnings), prev)
        if gap <= 0:
            continue
        var = value_at_risk(r.amount, r.p_win, r.stage_typical_p_win, r.warnings, prev)
        ranked.append((var, float(gap * boost), r.model_copy(update={"value_at_risk": var, "previous_p_win": prev})))
    ranked.sort(key=lambda t: (-t[0], -t[1], t[2].deal_id))
    out = [r for _, _, r in ranked]
    return out if top is None else out[: max(0, int(top))]
