"""The at-risk order as two columns the database can index: ``rank_group`` and ``rank_key``.

:func:`dealscore.scoring.at_risk` ranks deals below their stage's usual win
rate: those with an amount first by priority, then those without one by gap ×
urgency. Every input of a deal's priority (amount, win probability, the stage's
usual rate, warnings, the previous score) is fixed when the deal is scored, so
the store computes it once, through that same function, when it writes the
deal's latest score, and the list becomes an ``ORDER BY rank_group, rank_key, deal_id`` on an index
(all ascending, so one index serves it and, read backwards, its reverse):

====== =========================== ==========================
group  deals                       ``rank_key`` (ascending)
====== =========================== ==========================
0      at risk, with an amount     −priority
1      at risk, no amount          −gap × urgency
2      not at risk                 −amount, 0 when unknown
====== =========================== ==========================

Risk levels stay relative to the list a manager looks at (top decile of the
filtered group 0 is ``high``): :func:`level_bounds` turns the group's size into
the positions where the levels change, using the library's own rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from dealscore.scoring import at_risk
from dealscore.scoring.at_risk import risk_levels
from dealscore.scoring.result import ScoreResult

AT_RISK_WITH_AMOUNT = 0
AT_RISK_NO_AMOUNT = 1
NOT_AT_RISK = 2


@dataclass(frozen=True)
class Rank:
    """Where a deal's latest score sorts, and its value at risk as the list shows it."""

    group: int
    key: float
    value_at_risk: float | None


def rank_of(result: ScoreResult) -> Rank:
    """The rank of one scored deal, computed by the library's ranking of that deal alone."""
    ranked = at_risk([result])
    if not ranked:
        return Rank(NOT_AT_RISK, -float(result.amount or 0.0), result.value_at_risk)
    r = ranked[0]
    has_amount = r.amount is not None and r.amount == r.amount
    group = AT_RISK_WITH_AMOUNT if has_amount else AT_RISK_NO_AMOUNT
    return Rank(group, -float(r.priority or 0.0), r.value_at_risk)


def level_bounds(n_with_amount: int) -> tuple[int, int]:
    """How many of the ``n`` ranked deals with an amount are ``high``, and ``high`` or ``medium``."""
    levels = risk_levels(n_with_amount)
    n_high = levels.count("high")
    return n_high, n_high + levels.count("medium")
