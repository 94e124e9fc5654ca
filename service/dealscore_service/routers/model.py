"""``GET /v1/model`` and ``POST /v1/model/reload``: which model answers, and swapping it live."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from dealscore.models.stage_labels import describe_habits
from dealscore_service import heap
from dealscore_service.deps import AdminKey, AnyKey, Services, ServicesDep
from dealscore_service.schemas import ModelInfo, RecordingHabits, ReloadResponse, error_responses

router = APIRouter(prefix="/v1/model", tags=["model"])


def model_info(services: Services) -> ModelInfo:
    """What ``/v1/model`` reports (also used by the web page)."""
    m = services.models.current
    name = services.settings.model_name
    if m is None:
        return ModelInfo(loaded=False, name=name, message=services.models.last_error or "loading")
    habits = m.recording_habits or {}
    return ModelInfo(loaded=True, name=name, version=m.version, source=m.source, loaded_at=m.loaded_at,
                     training_window=m.training_window, metrics=m.metrics, message=m.message,
                     recording_habits=RecordingHabits(company=habits.get("company") or {},
                                                      reps=habits.get("reps") or [],
                                                      summary=describe_habits(habits)))


@router.get("", response_model=ModelInfo, summary="The model in use", responses=error_responses(401, 403))
def get_model(principal: AnyKey, services: ServicesDep) -> ModelInfo:
    """Registry version, where it was loaded from, its training window and headline metrics."""
    return model_info(services)


@router.post(
    "/reload", response_model=ReloadResponse, summary="Reload the champion without downtime",
    responses=error_responses(401, 403, 503),
)
async def reload_model(principal: AdminKey, services: ServicesDep) -> ReloadResponse:
    """Load the champion again (admin). Requests keep being served by the old model until the new one is ready."""
    previous, new = await run_in_threadpool(services.models.reload)
    await run_in_threadpool(heap.settle)
    services.metrics.set_model(new.version, new.source)
    return ReloadResponse(previous_version=previous, changed=previous != new.version, model=model_info(services))
