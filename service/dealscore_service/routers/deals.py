"""``GET /v1/deals/at-risk`` and ``GET /v1/deals/{deal_id}/scores``: what managers read.

Both only ever show deals the key may see: a team- or owner-limited key gets
its own deals in the ranking, and a 404 (not a 403, which would confirm the
deal exists) for anyone else's score history.

A deal id is any text but ``.`` and ``..`` (``OPP/2025/17`` is scored like any other;
:data:`dealscore_service.schemas.DealId` says why those two are refused), sent as one
percent-encoded segment. Starlette decodes ``%2F`` before routing, so the routes under a
deal take its id with the ``path`` converter: a ``{deal_id}`` segment never matched such a
deal, which then could not be closed and stayed on the at-risk list. The fixed last segment
(``/scores``, ``/outcome``) keeps ``/at-risk`` and each other apart.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from dealscore.errors import NotFoundError
from dealscore_service.deps import ReadKey, ScoreKey, ServicesDep, well_formed_query
from dealscore_service.errors import InvalidPayloadError, InvalidQueryError, query_field
from dealscore_service.jsonbody import StrictJSONRoute
from dealscore_service.payload import close_time_problems, now_utc
from dealscore_service.schemas import (
    CURRENCY_PATTERN,
    MAX_QUERY_TEXT,
    AtRiskItem,
    AtRiskResponse,
    CurrencyFilter,
    CurrencyTotal,
    DealScoresResponse,
    OutcomeRequest,
    OutcomeResponse,
    ScorePoint,
    api_result,
    error_responses,
)
from dealscore_service.store import DealFilter, ListedDeal, ListRequest
from dealscore_service.trend import trend_of

router = APIRouter(prefix="/v1/deals", tags=["deals"], dependencies=[Depends(well_formed_query)],
                   route_class=StrictJSONRoute)



def _item(listed: ListedDeal, recent: list[float]) -> AtRiskItem:
    r = listed.result
    return AtRiskItem(
        deal_id=r.deal_id, account_id=r.account_id, owner_id=r.owner_id, team=r.team, amount=r.amount,
        currency=r.currency, p_win=r.p_win, grade=r.grade, declared_stage=r.declared_stage,
        inferred_stage=r.inferred_stage, stage_mismatch=r.stage_mismatch, value_at_risk=r.value_at_risk,
        priority=r.priority, risk_level=r.risk_level, previous_p_win=r.previous_p_win,
        stage_typical_p_win=r.stage_typical_p_win,
        top_warning=r.warnings[0] if r.warnings else None, top_action=r.actions[0] if r.actions else None,
        as_of=listed.as_of, scored_at=listed.scored_at, model_version=r.model_version, recent_p_win=recent,
    )


SortKey = Literal["value_at_risk", "p_win", "amount", "as_of", "deal_id"]


@router.get(
    "/at-risk", response_model=AtRiskResponse, summary="Open deals ranked by value at risk",
    responses=error_responses(401, 403, 422, 503),
)
def at_risk_deals(
    principal: ReadKey,
    services: ServicesDep,
    owner: Annotated[str | None, Query(max_length=MAX_QUERY_TEXT, description="only this owner's deals")] = None,
    team: Annotated[str | None, Query(max_length=MAX_QUERY_TEXT, description="only this team's deals")] = None,
    stage: Annotated[str | None, Query(max_length=100, description="only deals in this declared stage")] = None,
    min_amount: Annotated[float | None, Query(ge=0, le=1e15, allow_inf_nan=False,
                                              description="only deals worth at least this")] = None,
    currency: Annotated[CurrencyFilter, Query(
        pattern=CURRENCY_PATTERN,
        description="only deals in this currency (ISO 4217 code, e.g. EUR): with deals in several currencies, "
        "the one way to a ranking and a min_amount that compare like money")] = None,
    sort: Annotated[SortKey, Query(description="value_at_risk keeps the at-risk ranking; others re-sort it")] = (
        "value_at_risk"
    ),
    order: Annotated[Literal["asc", "desc"], Query(description="desc: the ranking's top (or the largest) first; "
                                                   "asc reverses it")] = "desc",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> AtRiskResponse:
    """The latest score of every open deal, ranked by :func:`dealscore.scoring.at_risk`.

    A deal is at risk when it scores below the usual win rate of its declared
    stage; its value at risk is the amount times that gap (money), and the
    ranking orders by priority: value at risk weighed by the deal's warnings and
    its drop since the previous score. Totals cover every matching deal, not just this
    page. A key limited to owners or teams only sees theirs. Closed deals (an
    outcome recorded) are not listed. Filtered, ranked and paged by the database.

    Amounts are in the currency each deal's payload gave, never converted: each item
    says its currency, and the money totals come per currency too (``by_currency``, with
    ``mixed_currencies`` saying when the flat totals add unlike money). Those figures are
    the ones the store keeps with the totals, per revision of the deals: no extra scan.
    The ranking itself compares values at risk as numbers, so with mixed currencies
    ask for one currency at a time (``currency=EUR``) to rank like money.
    """
    problems = [query_field(name, "is empty", f"omit {name} to list every {name}'s deals")
                for name, value in (("owner", owner), ("team", team), ("stage", stage))
                if value is not None and not value.strip()]
    current = services.models.current
    if stage is not None and stage.strip() and current is not None:
        canonical = current.taxonomy.canonical_stage(stage)
        if canonical is None:  # listed as nothing, it would read as "no deal in that stage"
            problems.append(query_field("stage", f"{stage!r} is not a stage of the model's taxonomy",
                                   f"use one of {', '.join(current.taxonomy.names)}"))
        stage = canonical
    if problems:
        raise InvalidQueryError("; ".join(f"{p['path']} {p['message']}" for p in problems),
                                fix=problems[0]["fix"], fields=problems)
    filters = DealFilter(owner=owner, team=team, declared_stage=stage, min_amount=min_amount,
                         currency=currency)  # CurrencyFilter: the ISO code, upper case
    req = ListRequest(filters=filters,
                      sort="rank" if sort == "value_at_risk" else sort,
                      order=order, limit=limit, offset=offset)
    page = services.store.list_page(req, principal)
    recent = services.store.recent_p_wins([i.result.deal_id for i in page.items])
    return AtRiskResponse(
        items=[_item(i, recent.get(i.result.deal_id, [])) for i in page.items],
        total=page.at_risk, open_deals=page.open_deals, limit=limit, offset=offset,
        pipeline_value=page.pipeline_value, value_at_risk=page.value_at_risk,
        by_currency=[CurrencyTotal.model_validate(t, from_attributes=True) for t in page.by_currency],
    )


@router.post(
    "/{deal_id:path}/outcome", response_model=OutcomeResponse, summary="Record that a deal closed (won or lost)",
    responses=error_responses(401, 403, 404, 422, 503),
)
def record_outcome(
    deal_id: Annotated[str, Path(min_length=1, max_length=200)],
    body: OutcomeRequest,
    principal: ScoreKey,
    services: ServicesDep,
) -> OutcomeResponse:
    """The CRM says the deal closed: its outcome and close time are kept (model monitoring, retraining).

    The deal leaves the at-risk list and the page, and is no longer scored
    (409). Sending the same outcome again changes nothing; a different one
    corrects it. Every change is recorded with the key's name. A key limited
    to owners or teams may only close deals it may see (404 otherwise). A close
    time before the deal's stored creation or in the future is a 422 at ``closed_at``
    (:func:`~dealscore_service.payload.close_time_problems`).
    """
    state = services.store.deal_states([deal_id]).get(deal_id)
    if state is None or not principal.can_see(state.owner_id, state.team):
        raise NotFoundError(
            f"no deal {deal_id!r}" + (" visible to this API key" if principal.limited else ""),
            fix="score the deal first (POST /v1/score), or check the deal id",
        )
    problems = close_time_problems(body.closed_at, state.created_at, now_utc())
    if problems:
        summary = "; ".join(f"{f['path']}: {f['message']}" for f in problems)
        raise InvalidPayloadError(f"the outcome is invalid: {summary}", fields=problems, fix=problems[0]["fix"])
    closed = services.store.record_outcome(deal_id, body.outcome, body.closed_at, key_name=principal.name)
    if closed is None or closed.outcome is None or closed.closed_at is None or closed.outcome_recorded_at is None:
        raise NotFoundError(f"no deal {deal_id!r}", fix="score the deal first (POST /v1/score)")
    return OutcomeResponse(deal_id=deal_id, outcome=closed.outcome, closed_at=closed.closed_at,  # type: ignore[arg-type]
                           recorded_at=closed.outcome_recorded_at, is_open=closed.is_open,
                           last_p_win=closed.p_win, model_version=closed.model_version)


@router.get(
    "/{deal_id:path}/scores", response_model=DealScoresResponse, summary="A deal's score history and trend",
    responses=error_responses(401, 403, 404, 422, 503),
)
def deal_scores(
    deal_id: Annotated[str, Path(min_length=1, max_length=200)],
    principal: ReadKey,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many recent scores")] = 100,
) -> DealScoresResponse:
    """Every stored score of the deal (oldest first), its latest full result, and the trend."""
    state = services.store.deal_states([deal_id]).get(deal_id)
    scores = services.store.deal_scores(deal_id, limit=limit) if state is not None else []
    if not scores or state is None or not principal.can_see(state.owner_id, state.team):
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
                              latest=api_result(scores[-1].score_result()))
