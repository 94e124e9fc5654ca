"""``GET /v1/forecast``: expected bookings per month or quarter, with a range, by team or owner."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from dealscore_service.deps import ReadKey, ServicesDep, well_formed_query
from dealscore_service.forecasting import (
    DEFAULT_SIMS,
    compute_forecast,
    forecast_currencies,
    forecast_response,
    groupings,
)
from dealscore_service.jsonbody import StrictJSONRoute
from dealscore_service.schemas import (
    CURRENCY_PATTERN,
    CurrencyFilter,
    ForecastResponse,
    Timestamp,
    error_responses,
)

router = APIRouter(prefix="/v1/forecast", tags=["forecast"], dependencies=[Depends(well_formed_query)],
                   route_class=StrictJSONRoute)


@router.get("", response_model=ForecastResponse, summary="Bookings forecast with a P10–P90 range",
            responses=error_responses(401, 403, 422, 503))
def get_forecast(
    principal: ReadKey,
    services: ServicesDep,
    period: Annotated[Literal["month", "quarter"], Query(description="month or quarter")] = "quarter",
    by: Annotated[Literal["team", "owner"] | None, Query(
        description="split by team or by owner (default: team; owner for a key limited to owners)")] = None,
    as_of: Annotated[Timestamp | None, Query(description="forecast time, 1900–2200 (default: the newest stored "
                                                          "score's)")] = None,
    sims: Annotated[int, Query(ge=100, le=20_000, description="Monte Carlo draws")] = DEFAULT_SIMS,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1, description="random seed: same seed, same numbers")] = 0,
    currency: Annotated[CurrencyFilter, Query(
        pattern=CURRENCY_PATTERN,
        description="only the open deals in this currency (ISO 4217 code, e.g. EUR), so the figures add like "
        "money; deals not created yet have no currency, so the future pipeline is left out")] = None,
) -> ForecastResponse:
    """Median and P10–P90 of bookings for the current and next period, per group and for the company.

    Drawn deal by deal from the latest stored scores (won or not by ``p_win``, and
    when by the deal's close outlook), plus deals not created yet from the bundle's
    pipeline-creation model. A key limited to teams or owners sees only theirs; one limited
    to owners forecasts by owner, its default (``by=team`` is a 422 at ``by`` for it:
    :func:`~dealscore_service.forecasting.groupings`). Amounts are added as given, whatever their
    currency: ``currencies`` and ``mixed_currencies`` say when that mixes money, and ``currency``
    forecasts one currency's open deals at a time.
    """
    by = by or groupings(principal)[0]
    fc = compute_forecast(services, principal, period=period, by=by, as_of=as_of, sims=sims, seed=seed,
                          currency=currency)  # CurrencyFilter: the ISO code, upper case
    current = services.models.current
    return forecast_response(fc, current.version if current is not None else "none",
                             [currency] if currency else forecast_currencies(services.store, principal, fc))
