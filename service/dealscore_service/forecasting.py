"""The forecast use case behind ``GET /v1/forecast`` and the Forecast page: stored scores → bookings with a range.

It reads the latest score of every open deal the key may see, and hands them to
:func:`dealscore.forecast.engine.forecast_pipeline` with the pipeline-creation
model the bundle carries (the service holds no history to learn creation from).
A team- or owner-limited key gets only its groups: its deals, and the future
pipeline of its teams (or owners), never the company's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from dealscore.errors import ModelNotReadyError
from dealscore.forecast.engine import Forecast, forecast_pipeline, pipeline_from_records
from dealscore.times import naive_utc
from dealscore_service.auth import Principal
from dealscore_service.deps import Services
from dealscore_service.schemas import ForecastDriver, ForecastFanPoint, ForecastResponse, ForecastRow
from dealscore_service.store import DealFilter

DEFAULT_SIMS = 2000
STORE_NOTE = ("bookings already won this period are not in the score store (it holds open deals' scores): "
              "'booked' is 0 and the current period's figures count future bookings only")


def _allowed_groups(principal: Principal, by: str, creation: Any) -> list[str] | None:
    """The groups a limited key may see (None: all)."""
    if not principal.limited:
        return None
    if by == "team":
        return sorted(principal.teams)
    pools = getattr(creation, "pool_of_", {}) if creation is not None else {}
    return sorted(set(principal.owners) | {o for o, team in pools.items() if team in principal.teams})


def compute_forecast(services: Services, principal: Principal, *, period: str = "quarter", by: str = "team",
                     as_of: datetime | None = None, sims: int = DEFAULT_SIMS, seed: int = 0) -> Forecast:
    """The forecast from the latest stored scores (``as_of`` defaults to the newest score's time)."""
    current = services.models.current
    if current is None:
        raise ModelNotReadyError("no model is loaded yet; the forecast needs one",
                                 fix="retry shortly, or check GET /readyz")
    stored = services.store.latest_open_scores(DealFilter(), principal)
    pipe = pipeline_from_records([s.result for s in stored])
    creation = (current.bundle.pipeline_creation or {}).get(by) if getattr(current.bundle, "pipeline_creation",
                                                                            None) else None
    if as_of is not None:
        t = naive_utc(pd.Timestamp(as_of))
    elif len(pipe):
        t = pd.Timestamp(pipe.scored_at.max())
    else:
        t = naive_utc(pd.Timestamp.now(tz="UTC"))
    calibration = getattr(current.bundle, "forecast_calibration", None)
    fc = forecast_pipeline(pipe, t, kind=period, by=by, creation=creation, n_sims=sims, seed=seed,
                           groups=_allowed_groups(principal, by, creation), calibration=calibration)
    fc.notes.append(STORE_NOTE)
    if creation is None:
        fc.notes.append("the model bundle carries no pipeline-creation model: retrain it to include future deals")
    return fc


def forecast_response(fc: Forecast, model_version: str) -> ForecastResponse:
    """The API's JSON form of a forecast."""
    def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
        return [{k: (float(v) if isinstance(v, np.floating) else v) for k, v in r.items()}
                for r in frame.to_dict("records")]

    return ForecastResponse(
        as_of=fc.as_of.to_pydatetime(), period=fc.kind, by=fc.by, sims=fc.n_sims, seed=fc.seed,  # type: ignore[arg-type]
        model_version=model_version,
        rows=[ForecastRow(**r) for r in records(fc.table)],
        fan=[ForecastFanPoint(**{k: v for k, v in r.items() if k != "end"}) for r in records(fc.fan)],
        drivers=[ForecastDriver(**r) for r in records(fc.drivers)],
        notes=list(fc.notes),
    )
