"""Liveness, readiness and metrics: what orchestrators and Prometheus poll (no API key needed)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from dealscore.errors import StoreUnavailableError
from dealscore_service.deps import ServicesDep
from dealscore_service.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
def healthz() -> Health:
    """Always 200 while the process serves HTTP (the container HEALTHCHECK)."""
    return Health(status="ok")


@router.get(
    "/readyz", response_model=Readiness, summary="Model and store are ready",
    responses={503: {"model": Readiness, "description": "not ready: no model, or the store is unreachable"}},
)
async def readyz(services: ServicesDep) -> JSONResponse:
    """200 when a model is loaded and the score store answers; 503 (with the reasons) otherwise."""
    problems = []
    model_ok = services.models.current is not None
    if not model_ok:
        problems.append(f"model: {services.models.last_error or 'loading'}")
    try:
        await run_in_threadpool(services.store.ping)
        store_ok = True
    except StoreUnavailableError as exc:
        store_ok = False
        problems.append(f"store: {exc.message}")
    ready = model_ok and store_ok
    body = Readiness(status="ready" if ready else "not_ready", model=model_ok, store=store_ok, problems=problems)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
def metrics(services: ServicesDep) -> Response:
    """Request counts and latency by route, scores served, model version."""
    body, content_type = services.metrics.render()
    return Response(content=body, media_type=content_type)
