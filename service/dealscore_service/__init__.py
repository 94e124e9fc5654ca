"""dealscore's HTTP service: a thin FastAPI layer over ``dealscore.scoring``.

Routers, API keys, limits, the score store and model loading live here; no ML
logic does. ``create_app()`` builds the app, ``dealscore serve`` runs it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing one small module (limits, auth) does not build the whole app.
    if name == "create_app":
        from dealscore_service.main import create_app

        return create_app
    if name == "Settings":
        from dealscore_service.settings import Settings

        return Settings
    raise AttributeError(name)
