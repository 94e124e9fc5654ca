"""Where a deal is heading: the change in win probability over its last few stored scores.

Shared by the API's score history (``GET /v1/deals/{id}/scores``) and the deal page.
"""

from __future__ import annotations

from dealscore_service.schemas import Trend
from dealscore_service.store import StoredScore

TREND_WINDOW = 5
STEADY_POINTS = 3.0


def trend_of(scores: list[StoredScore]) -> tuple[Trend, float | None]:
    """Where the deal is heading: the change in win probability over its last few scores.

    Less than ``STEADY_POINTS`` probability points either way is "steady"; one
    score alone has no trend yet.
    """
    recent = scores[-TREND_WINDOW:]
    if len(recent) < 2:
        return "unknown", None
    change = round((recent[-1].p_win - recent[0].p_win) * 100, 2)
    if change >= STEADY_POINTS:
        return "improving", change
    if change <= -STEADY_POINTS:
        return "declining", change
    return "steady", change


__all__ = ["STEADY_POINTS", "TREND_WINDOW", "trend_of"]
