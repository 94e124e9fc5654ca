"""``create_app()``: the FastAPI app, its lifespan and wiring (FastAPI full-stack template style).

The lifespan migrates the score store and loads the model, but never refuses
to start: with the store or the model missing the process stays up, says why
on ``/readyz`` and keeps trying, so an orchestrator restart loop is never the
recovery mechanism.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
import structlog
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from dealscore import __version__
from dealscore.errors import StoreUnavailableError
from dealscore_service import heap
from dealscore_service.auth import KeyRing
from dealscore_service.deps import Services
from dealscore_service.errors import install_error_handlers
from dealscore_service.limits import BATCH_PATH, SCORE_PATH, BodySizeLimitMiddleware
from dealscore_service.logging import configure_logging
from dealscore_service.metrics import Metrics
from dealscore_service.middleware import RequestContextMiddleware
from dealscore_service.model_loader import ModelLoader
from dealscore_service.routers import deals, forecast, health, model, score
from dealscore_service.settings import Settings
from dealscore_service.store import ScoreStore
from dealscore_service.ui import mount_ui, warm_up_templates

log = structlog.get_logger("dealscore_service")

DESCRIPTION = """
Scores open B2B deals: the stage a deal is really in, its probability of being won, the
reasons in a salesperson's words, warnings and the next-best actions.

Authenticate with an API key in the `X-API-Key` header (or `Authorization: Bearer <key>`).
Scopes: `score` (CRM integrations), `read` (managers), `admin`.
Every error has the shape `{"error": {"type", "message", "fix", "fields": [{"loc", "path", "message"}]}}`.
"""


def load_keyring(settings: Settings) -> KeyRing:
    """Keys from the file and/or the environment (both may be set)."""
    rings = []
    if settings.api_keys_file is not None:
        rings.append(KeyRing.from_file(settings.api_keys_file))
    if settings.api_keys is not None and settings.api_keys.get_secret_value().strip():
        rings.append(KeyRing.from_json(settings.api_keys.get_secret_value()))
    return KeyRing.merged(*rings)


def warm_up(services: Services) -> None:
    """Pay the first request's one-off costs at start-up: the page templates, the list's totals and menus.

    A store that is down is not an error here (the service starts anyway and says so on ``/readyz``).
    """
    warm_up_templates()
    try:
        services.store.warm_up()
    except StoreUnavailableError as exc:
        log.warning("warm_up_skipped", reason=exc.message)


async def _retry_model(services: Services) -> None:
    """Keep trying to load a model while none is loaded (registry back, model promoted)."""
    delay = services.settings.model_retry_seconds
    while services.models.current is None:
        await asyncio.sleep(delay)
        if services.models.current is not None:
            break
        loaded = await run_in_threadpool(services.models.load)
        if loaded is not None:
            heap.after_model_load(services.settings.freeze_heap)
            services.metrics.set_model(loaded.version, loaded.source)


def build_services(settings: Settings) -> Services:
    """Everything the app holds, not yet opened (no I/O besides reading the keys file)."""
    return Services(
        settings=settings,
        store=ScoreStore(settings.resolved_database_url, migrate_on_start=settings.migrate_on_start,
                         keep_scores=settings.scores_kept_per_deal,
                         totals_max_age=settings.list_totals_max_age_seconds),
        models=ModelLoader(settings),
        keys=load_keyring(settings),
        metrics=Metrics(),
    )


#: Requests a worker works on at once when ``Settings.worker_threads`` is not set: on SQLite, on a database server.
SQLITE_THREADS = 40
SERVER_STORE_THREADS = 4


def worker_threads(settings: Settings, dialect: str) -> int:
    """How many requests one worker works on at once: the setting, or the store's default.

    Starlette runs every sync endpoint and ``run_in_threadpool`` call on anyio's
    default thread limiter (40 tokens). On PostgreSQL a request is CPU work under
    one interpreter lock between short round trips: with 40 threads on 2 cores a
    burst makes each round trip wait for the lock behind dozens of threads and for
    one of the pool's connections, and the backlog drains slower than it came
    (the 100 requests/s soak's scoring p99 went from 4.7 s to 83 ms with 4). On
    SQLite a writer waiting for the file lock sleeps in SQLite's busy handler while
    holding its thread, so fewer threads queue everyone behind it (the service
    benchmark's p99 went from 25 to 104 ms with 4): there anyio's 40 stay.
    """
    if settings.worker_threads is not None:
        return settings.worker_threads
    return SQLITE_THREADS if dialect == "sqlite" else SERVER_STORE_THREADS


def limit_threads(n: int) -> None:
    """Let at most ``n`` requests' work run at once in this process (called in the running event loop)."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = n


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the store and the model are opened by its lifespan."""
    settings = settings or Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    services = build_services(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.migrate_on_start:
            try:
                await run_in_threadpool(services.store.migrate)
            except StoreUnavailableError as exc:
                log.error("store_unavailable_at_start", reason=exc.message, store=services.store.safe_url)
        loaded = await run_in_threadpool(services.models.load)
        services.metrics.set_model(loaded.version if loaded else None, loaded.source if loaded else None)
        if not services.keys:
            log.warning("no_api_keys", hint="every request will get 401; create keys with `dealscore api-key create`")
        retry = None
        if loaded is None and settings.model_retry_seconds > 0:
            retry = asyncio.create_task(_retry_model(services))
        limit_threads(worker_threads(settings, services.store.engine.dialect.name))
        await run_in_threadpool(warm_up, services)
        heap.after_model_load(settings.freeze_heap)
        log.info("service_started", model=loaded.version if loaded else None, store=services.store.safe_url,
                 keys=len(services.keys))
        try:
            yield
        finally:
            if retry is not None:
                retry.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await retry
            services.store.dispose()

    app = FastAPI(title="dealscore", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.services = services
    app.state.settings = settings
    install_error_handlers(app)
    for router in (score.router, deals.router, forecast.router, model.router, health.router):
        app.include_router(router)
    mount_ui(app)  # the manager web page at /ui, behind the same keys
    app.add_middleware(
        BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes,
        route_limits={SCORE_PATH: settings.max_score_body_bytes, BATCH_PATH: settings.max_batch_body_bytes},
        body_timeout=settings.timeout_request_body_seconds,
    )
    app.add_middleware(RequestContextMiddleware, metrics=services.metrics)
    return app
