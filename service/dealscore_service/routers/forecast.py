"""``GET /v1/forecast``: expected bookings per month or quarter, with a range, by team or owner."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from dealscore_service.deps import ReadKey, ServicesDep
from dealscore_service.forecasting import DEFAULT_SIMS, compute_forecast, forecast_response
from dealscore_service.jsonbody import StrictJSONRoute
from dealscore_service.schemas import ForecastResponse, Timestamp, error_responses

router = APIRouter(prefix="/v1/forecast", tags=["forecast"], route_class=StrictJSONRoute)


@router.get("", response_model=ForecastResponse, summary="Bookings forecast with a P10–P90 range",
            responses=error_responses(401, 403, 422, 503))
def get_forecast(
    principal: ReadKey,
    services: ServicesDep,
    period: Annotated[Literal["month", "quarter"], Query(description="month or quarter")] = "quarter",
    by: Annotated[Literal["team", "owner"], Query(description="split by team or by owner")] = "team",
    as_of: Annotated[Timestamp | None, Query(description="forecast time, 1900–2200 (default: the newest stored "
                                                          "score's)")] = None,
    sims: Annotated[int, Query(ge=100, le=20_000, description="Monte Carlo draws")] = DEFAULT_SIMS,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1, description="random seed: same seed, same numbers")] = 0,
) -> ForecastResponse:
    """Median and P10–P90 of bookings for the current and next period, per group and for the company.

    Drawn deal by deal from the latest stored scores (won or not by ``p_win``, and
    when by the deal's close outlook), plus deals not created yet from the bundle's
    pipeline-creation model. A key limited to teams or owners sees only theirs.
    """
    fc = compute_forecast(services, principal, period=period, by=by, as_of=as_of, sims=sims, seed=seed)
    current = services.models.current
    return forecast_response(fc, current.version if current is not None else "none")
