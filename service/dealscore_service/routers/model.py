"""``GET /v1/model`` and ``POST /v1/model/reload``: which model answers, and swapping it live."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from dealscore_service import heap
from dealscore_service.deps import AdminKey, AnyKey, ServicesDep
from dealscore_service.jsonbody import StrictJSONRoute
from dealscore_service.model_info import model_info
from dealscore_service.schemas import ModelInfo, ReloadResponse, error_responses

router = APIRouter(prefix="/v1/model", tags=["model"], route_class=StrictJSONRoute)


@router.get("", response_model=ModelInfo, summary="The model in use", responses=error_responses(401, 403))
def get_model(principal: AnyKey, services: ServicesDep) -> ModelInfo:
    """Registry version, where it was loaded from, its training window and headline metrics; the recording habits
    of the reps whose deals the key may see (:mod:`dealscore_service.model_info`)."""
    return model_info(services, principal)


@router.post(
    "/reload", response_model=ReloadResponse, summary="Reload the champion without downtime",
    responses=error_responses(401, 403, 503),
)
async def reload_model(principal: AdminKey, services: ServicesDep) -> ReloadResponse:
    """Load the champion again (admin). Requests keep being served by the old model until the new one is ready."""
    previous, new = await run_in_threadpool(services.models.reload)
    await run_in_threadpool(heap.after_model_load, services.settings.freeze_heap)
    services.metrics.set_model(new.version, new.source)
    return ReloadResponse(previous_version=previous, changed=previous != new.version,
                          model=model_info(services, principal))
