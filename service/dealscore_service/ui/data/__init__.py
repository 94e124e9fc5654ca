"""What the pages show, assembled from the score store and the library.

This is the page's one adapter over the service: it reads the store through
:class:`~dealscore_service.store.ScoreStore` (latest score per open deal,
recent win probabilities, a deal's score history), ranks with the library's
:func:`dealscore.scoring.at_risk`, and applies the key's owner/team limits
through the store query and :meth:`Principal.can_see`. No score is computed
here; everything shown was stored by ``POST /v1/score``.
"""

from dealscore_service.ui.data.listing import DealRow, ListPage, ParsedResults, build_list, currency_choices
from dealscore_service.ui.data.query import PER_PAGE, SORTS, ListQuery, read_currency, stage_order, url_problems
from dealscore_service.ui.data.timeline import (
    MAX_TOUCHPOINTS,
    DealView,
    TimelineEvent,
    TouchSummary,
    build_deal,
    stage_change_events,
    timeline,
    touch_summary,
    touchpoint_events,
)

__all__ = [
    "MAX_TOUCHPOINTS",
    "PER_PAGE",
    "SORTS",
    "DealRow",
    "DealView",
    "ListPage",
    "ListQuery",
    "ParsedResults",
    "TimelineEvent",
    "TouchSummary",
    "build_deal",
    "build_list",
    "currency_choices",
    "read_currency",
    "stage_change_events",
    "stage_order",
    "timeline",
    "touch_summary",
    "touchpoint_events",
    "url_problems",
]
