"""``uvicorn --factory serve_app:app``: the service app with the manager page, configured from ``DEALSCORE_*``.

The browser tests run the real server process from this factory so that the
page is mounted whether or not ``create_app`` mounts it itself yet.
"""

from __future__ import annotations

from fastapi import FastAPI

from dealscore_service.main import create_app
from dealscore_service.ui import mount_ui


def app() -> FastAPI:
    application = create_app()
    mount_ui(application)
    return application
