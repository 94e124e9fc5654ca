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

from dealscore.scoring.result import DealWarning, ScoreResult

WARNING_WEIGHTS = {"high": 0.2, "medium": 0.1, "low": 0.05}
DROP_WEIGHT = 2.0


def risk_boost(warnings: Sequence[DealWarning], p_win: float, previous_p_win: float | None) -> float:
    """The multiplier warnings and a recent score drop put on the probability gap."""
    w = min(1.0, sum(WARNING_WEIGHTS.get(x.severity, 0.0) for x in warnings))
    drop = 0.0 if previous_p_win is None else max(0.0, previous_p_win - p_win)
    return (1.0 + w) * (1.0 + min(1.0, DROP_WEIGHT * drop))


def probability_gap(p_win: float, typical: float | None) -> float:
    """How far the deal scores below what deals in its declared stage usually win."""
    return 0.0 if typical is None else max(0.0, typical - p_win)


def value_at_risk(
    amount: float | None, p_win: float, typical: float | None, warnings: Sequence[DealWarning] = (),
    previous_p_win: float | None = None,
) -> float:
    """amount × gap × boost (0 when the amount is unknown)."""
    if amount is None or amount != amount:  # NaN
        return 0.0
    return float(amount) * probability_gap(p_win, typical) * risk_boost(warnings, p_win, previous_p_win)


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
        gap = probability_gap(r.p_win, r.stage_typical_p_win)
        if gap <= 0:
            continue
        boost = risk_boost(r.warnings, r.p_win, prev)
        var = value_at_risk(r.amount, r.p_win, r.stage_typical_p_win, r.warnings, prev)
        ranked.append((var, gap * boost, r.model_copy(update={"value_at_risk": var, "previous_p_win": prev})))
    ranked.sort(key=lambda t: (-t[0], -t[1], t[2].deal_id))
    out = [r for _, _, r in ranked]
    return out if top is None else out[: max(0, int(top))]
