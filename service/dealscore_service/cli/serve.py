"""``dealscore serve`` (the scoring API under uvicorn) and ``dealscore api-key create``.

The service is configured by ``DEALSCORE_*`` environment variables (see
``dealscore_service.settings.Settings``); these commands only add what belongs
on a command line: where to listen, how many workers, and creating keys.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from dealscore.cli import app, console, err_console
from dealscore.errors import ConfigError
from dealscore_service.auth import add_key_to_file

api_key_app = typer.Typer(help="Create API keys for the scoring service (stored hashed).", no_args_is_help=True)
app.add_typer(api_key_app, name="api-key")

SCOPES = ("score", "read", "admin")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on (0.0.0.0 in a container)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="worker processes (each loads the model)")] = 1,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
) -> None:
    """Run the scoring API: POST /v1/score, the at-risk list, /docs, /healthz, /metrics.

    Configure it with environment variables: DEALSCORE_DATABASE_URL (default: SQLite under
    DEALSCORE_DATA_DIR), DEALSCORE_API_KEYS_FILE, DEALSCORE_MODEL_PATH or the MLflow registry
    (MLFLOW_TRACKING_URI), DEALSCORE_LOG_JSON.
    """
    # the app and its server are imported when serving, not whenever the CLI starts
    import uvicorn

    from dealscore_service import listener
    from dealscore_service.store import ScoreStore

    os.environ.setdefault("DEALSCORE_LOG_LEVEL", log_level.upper())
    settings = _checked_settings()
    if settings.migrate_on_start:
        # once here, so that several workers starting together do not race on the schema
        store = ScoreStore(settings.resolved_database_url)
        try:
            store.migrate()
        except Exception as exc:  # the service starts anyway and reports it on /readyz
            err_console.print(f"[yellow]warning:[/] score store not migrated yet: {exc}")
        finally:
            store.dispose()
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="dealscore-metrics-")
    console.print(f"dealscore API on http://{host}:{port}  (docs: http://{host}:{port}/docs)", highlight=False)
    from dealscore_service.timeouts import TimedHTTPProtocol

    options: dict[str, Any] = {"factory": True, "host": host, "port": port, "workers": workers, "log_config": None,
                               "log_level": log_level.lower(), "access_log": False, "server_header": False,
                               # deadlines for slow clients (docs/service.md, "Slow clients")
                               "http": TimedHTTPProtocol, "timeout_keep_alive": settings.timeout_keep_alive_seconds,
                               "timeout_worker_healthcheck": settings.worker_healthcheck_seconds}
    if workers > 1 and listener.supported():
        # one socket per worker, so connections opened together spread over the workers
        listener.run_workers(uvicorn.Config("dealscore_service.main:create_app", **options))
    else:
        uvicorn.run("dealscore_service.main:create_app", **options)


def _checked_settings() -> Any:
    """Settings and keys read once here, so a bad variable or keys file is a one-line error, not a traceback."""
    from dealscore_service.main import load_keyring
    from dealscore_service.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(f"DEALSCORE_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid service settings: {problems}") from exc
    load_keyring(settings)
    return settings


@api_key_app.command("create")
def create_key(
    name: Annotated[str, typer.Option(help="who uses the key (logged instead of the key)")],
    scope: Annotated[list[str], typer.Option(help="score, read or admin (repeat for several)")],
    file: Annotated[Path, typer.Option(help="YAML keys file to add the hashed key to")] = Path("api_keys.yaml"),
    team: Annotated[list[str] | None, typer.Option(help="limit the key to this team (repeatable)")] = None,
    owner: Annotated[list[str] | None, typer.Option(help="limit the key to this owner (repeatable)")] = None,
) -> None:
    """Create a key, store its hash in FILE and print the key once (it cannot be recovered)."""
    bad = [s for s in scope if s not in SCOPES]
    if bad:
        raise ConfigError(f"unknown scope(s) {bad}; use {list(SCOPES)}")
    key = add_key_to_file(file, name=name, scopes=scope, owners=owner or [], teams=team or [])
    err_console.print(f"added key {name!r} ({', '.join(scope)}) to {file}; point DEALSCORE_API_KEYS_FILE at it. "
                      "The key is shown only now:", highlight=False)
    console.print(key, highlight=False, soft_wrap=True)
