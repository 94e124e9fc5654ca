"""``GET /v1/deals/at-risk`` and ``GET /v1/deals/{deal_id}/scores``: what managers read.

Both only ever show deals the key may see: a team- or owner-limited key gets
its own deals in the ranking, and a 404 (not a 403, which would confirm the
deal exists) for anyone else's score history.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from dealscore.errors import NotFoundError
from dealscore.scoring.result import DealWarning, NextAction
from dealscore_service.deps import ReadKey, ServicesDep
from dealscore_service.schemas import (
    AtRiskItem,
    AtRiskResponse,
    DealScoresResponse,
    ScorePoint,
    Trend,
    error_responses,
)
from dealscore_service.store import AtRiskQuery, StoredScore
from dealscore_service.store.repository import SortKey

router = APIRouter(prefix="/v1/deals", tags=["deals"])

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


def _item(s: StoredScore, recent: list[float]) -> AtRiskItem:
    warnings = s.result.get("warnings") or []
    actions = s.result.get("actions") or []
    return AtRiskItem(
        deal_id=s.deal_id, account_id=s.result.get("account_id"), owner_id=s.owner_id, team=s.team, amount=s.amount,
        p_win=s.p_win, grade=s.grade, declared_stage=s.declared_stage, inferred_stage=s.inferred_stage,
        stage_mismatch=str(s.result.get("stage_mismatch", "unknown")), value_at_risk=s.value_at_risk,
        top_warning=DealWarning.model_validate(warnings[0]) if warnings else None,
        top_action=NextAction.model_validate(actions[0]) if actions else None,
        as_of=s.as_of, scored_at=s.scored_at, model_version=s.model_version, recent_p_win=recent,
    )


@router.get(
    "/at-risk", response_model=AtRiskResponse, summary="Open deals ranked by value at risk",
    responses=error_responses(401, 403, 422, 503),
)
def at_risk(
    principal: ReadKey,
    services: ServicesDep,
    owner: Annotated[str | None, Query(max_length=200, description="only this owner's deals")] = None,
    team: Annotated[str | None, Query(max_length=200, description="only this team's deals")] = None,
    stage: Annotated[str | None, Query(max_length=100, description="only deals in this declared stage")] = None,
    min_amount: Annotated[float | None, Query(ge=0, le=1e15, description="only deals worth at least this")] = None,
    sort: Annotated[SortKey, Query(description="column to sort by")] = "value_at_risk",
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> AtRiskResponse:
    """The latest score of every open deal, most value at risk first (value at risk = amount × (1 − p_win)).

    Totals (pipeline value, value at risk) cover every matching deal, not just
    this page. A key limited to owners or teams only sees theirs.
    """
    if stage is not None:
        current = services.models.current
        if current is not None:
            stage = current.taxonomy.canonical_stage(stage) or stage
    page = services.store.at_risk(
        AtRiskQuery(owner=owner, team=team, declared_stage=stage, min_amount=min_amount, sort=sort,
                    descending=order == "desc", limit=limit, offset=offset),
        principal,
    )
    recent = services.store.recent_p_wins([s.deal_id for s in page.items])
    return AtRiskResponse(
        items=[_item(s, recent.get(s.deal_id, [])) for s in page.items], total=page.total, limit=limit,
        offset=offset, pipeline_value=page.pipeline_value, value_at_risk=page.value_at_risk,
    )


@router.get(
    "/{deal_id}/scores", response_model=DealScoresResponse, summary="A deal's score history and trend",
    responses=error_responses(401, 403, 404, 422, 503),
)
def deal_scores(
    deal_id: Annotated[str, Path(min_length=1, max_length=200)],
    principal: ReadKey,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many recent scores")] = 100,
) -> DealScoresResponse:
    """Every stored score of the deal (oldest first), its latest full result, and the trend."""
    scores = services.store.deal_scores(deal_id, limit=limit)
    if not scores or not principal.can_see(scores[-1].owner_id, scores[-1].team):
        raise NotFoundError(
            f"no scores for deal {deal_id!r}" + (" visible to this API key" if principal.limited else ""),
            fix="score the deal first (POST /v1/score), or check the deal id",
        )
    trend, change = trend_of(scores)
    points = [
        ScorePoint(as_of=s.as_of, scored_at=s.scored_at, p_win=s.p_win, grade=s.grade,
                   declared_stage=s.declared_stage, inferred_stage=s.inferred_stage, value_at_risk=s.value_at_risk,
                   model_version=s.model_version, warnings=s.warnings)
        for s in scores
    ]
    return DealScoresResponse(deal_id=deal_id, trend=trend, trend_change=change, scores=points,
                              latest=scores[-1].score_result())
