"""The manager web page at ``/ui``: deals at risk, one deal's reasons and trend, the model in use.

Served by the service's own FastAPI app and protected by the same API keys: a
login form takes a key with the ``read`` scope and keeps a signed, HTTP-only,
secure session cookie (see :mod:`dealscore_service.ui.session`). Everything
shown is read from the score store; a key limited to some owners or teams sees
only their deals, as on the API.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from dealscore_service.ui.data import ParsedResults
from dealscore_service.ui.evaluation import EvaluationCache
from dealscore_service.ui.router import PREFIX, LoginRequired, PageStoreDown, router, store_error, templates
from dealscore_service.ui.session import SessionManager, resolve_secret

__all__ = ["mount_ui", "warm_up_templates"]


async def _to_login(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    from urllib.parse import urlencode

    params = {"next": exc.next_url}
    if exc.notice:
        params["notice"] = "revoked"
    response = RedirectResponse(f"{request.scope.get('root_path', '')}{PREFIX}/login?{urlencode(params)}",
                                status_code=303)
    if exc.notice:
        SessionManager.clear(response)
    return response


async def _store_down(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageStoreDown)
    return store_error(request, exc.cause, None)


def mount_ui(app: FastAPI) -> None:
    """Add the page's routes, its static files and its session handling to the service app.

    Idempotent, so ``create_app`` and a test may both call it. Needs
    ``app.state.settings`` (set by ``create_app``) for the session secret.
    """
    if getattr(app.state, "ui_mounted", False):
        return
    settings = getattr(app.state, "settings", None)
    app.state.ui_sessions = SessionManager(resolve_secret(settings))
    app.state.ui_evaluations = EvaluationCache()
    app.state.ui_parsed = ParsedResults()
    # the static files first: the router ends with a catch-all "not found" page under /ui
    app.mount(f"{PREFIX}/static", StaticFiles(directory=str(files("dealscore_service") / "static")),
              name="ui-static")
    app.include_router(router)
    app.add_exception_handler(LoginRequired, _to_login)
    app.add_exception_handler(PageStoreDown, _store_down)
    app.state.ui_mounted = True


def warm_up_templates() -> None:
    """Compile every page template now rather than on the first request that renders it."""
    for name in templates.env.list_templates():
        templates.env.get_template(name)
