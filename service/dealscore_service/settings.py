"""The service's one configuration object, read from ``DEALSCORE_*`` environment variables.

Everything an operator may want to change without touching code lives here, with
embedded defaults that run on one laptop: a SQLite score store under the data
folder, the MLflow registry the library's tracking module points at, and the
limits the issue fixes for every deployment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from dealscore.paths import DEFAULT_DATA_DIR
from dealscore_service import limits


class Settings(BaseSettings):
    """Service settings; every field is ``DEALSCORE_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="DEALSCORE_", extra="ignore", protected_namespaces=())

    data_dir: Path = Field(
        default=DEFAULT_DATA_DIR,
        description="the installation's one data folder (shared with the library's tracking defaults): the "
        "default SQLite score store, the embedded MLflow store and the local copy of the model",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL of the score store, e.g. postgresql+psycopg://user@host/db; "
        "default sqlite:///<data_dir>/scores.db",
    )
    migrate_on_start: bool = Field(default=True, description="apply Alembic migrations when the service starts")
    scores_kept_per_deal: int = Field(
        default=100, ge=1,
        description="the newest scores kept per deal (its history and trend); older ones are deleted as new "
        "ones arrive. Only the latest score of a deal keeps its touchpoints and stage changes",
    )
    list_totals_max_age_seconds: float = Field(
        default=1.0, ge=0, le=60,
        description="how old the at-risk list's totals and risk-level cut-offs (and the page's filter menus) may "
        "be while scores keep arriving; the rows, their order and the pages are always read fresh. Recomputing "
        "them on every request after every score costs a scan of the matching deals; 0 recomputes after any change",
    )
    store_retry_after_seconds: int = Field(default=5, ge=1, description="Retry-After sent with a 503 store error")
    worker_threads: int | None = Field(
        default=None, ge=1, le=200,
        description="requests one worker process works on at once (its thread pool); more wait their turn in the "
        "event loop. Default: 4 on a database server (PostgreSQL), where a request's work is CPU under one "
        "interpreter lock between short round trips and more threads only queue for the lock and the pool's "
        "connections; 40 (anyio's default) on SQLite, where a writer waiting for the file lock sleeps holding "
        "its thread. See docs/service.md, 'Requests per worker'",
    )

    model_name: str = Field(default="dealscore", description="registered model name in the MLflow registry")
    model_path: Path | None = Field(
        default=None,
        description="load the bundle from this local folder instead of the registry (tests, containers)",
    )
    model_cache_dir: Path | None = Field(
        default=None, description="where the last registry bundle is kept; default <data_dir>/model_cache"
    )
    use_registry: bool = Field(default=True, description="try the MLflow registry when no model_path is set")
    model_retry_seconds: float = Field(
        default=30.0, ge=0, description="while no model is loaded, retry loading this often (0 = never)"
    )
    freeze_heap: bool = Field(
        default=True,
        description="after each model load, collect garbage and freeze the heap so the collector skips the "
        "model and the libraries (dealscore_service.heap); turn off when the app is embedded in another "
        "process (a notebook, a test suite), whose whole heap each load would otherwise walk and freeze",
    )

    api_keys_file: Path | None = Field(default=None, description="YAML or JSON file of hashed API keys")
    api_keys: SecretStr | None = Field(
        default=None, description="the same key list as JSON, for containers (hashes only, never raw keys)"
    )

    ui_session_secret: SecretStr | None = Field(
        default=None,
        description="signs the web page's session cookie; default a random secret kept in <data_dir> "
        "(set it when workers do not share the data folder)",
    )

    out_of_life: Literal["fail", "drop"] = Field(
        default="fail",
        description="touchpoints and stage changes dated before their deal was created: 'fail' answers 422, "
        "'drop' scores without them and says so in the result's notices (a request's out_of_life overrides it)",
    )
    max_body_bytes: int = Field(
        default=limits.MAX_BODY_BYTES, ge=1024,
        description="largest request body (after gzip decoding) of routes without a cap of their own: 413 above")
    max_score_body_bytes: int = Field(
        default=limits.MAX_SCORE_BODY_BYTES, ge=1024,
        description="largest POST /v1/score body: room for the 10,000-touchpoint cap, which then answers 422")
    max_batch_body_bytes: int = Field(
        default=limits.MAX_BATCH_BODY_BYTES, ge=1024,
        description="largest POST /v1/score/batch body: room for the 1,000-deal cap at up to ~8 KB a deal")
    timeout_request_head_seconds: float = Field(
        default=10.0, gt=0,
        description="a connection must send a request's complete head (request line and headers) within this "
        "long of opening, or of its previous response: else 408 and closed (slow headers, silent connections)")
    timeout_request_body_seconds: float = Field(
        default=limits.BODY_TIMEOUT_SECONDS, gt=0,
        description="a request's body must arrive within this long of its head: else 408 and closed (slow bodies)")
    timeout_keep_alive_seconds: int = Field(
        default=5, ge=1, description="an idle keep-alive connection is closed after this long (uvicorn's own)")
    worker_healthcheck_seconds: int = Field(
        default=30, ge=1,
        description="with several workers, the supervisor restarts a worker that does not answer its ping within "
        "this long (uvicorn's default, 5 s, restarted workers still loading their model on a busy machine)")
    log_level: str = Field(default="INFO", description="the service's log level: DEBUG, INFO, WARNING or ERROR")
    log_json: bool = Field(default=True, description="JSON log lines (set false for readable console logs)")

    @property
    def resolved_database_url(self) -> str:
        """The store URL, defaulting to a SQLite file in the data folder."""
        if self.database_url is not None and self.database_url.get_secret_value():
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.data_dir / 'scores.db').resolve()}"

    @property
    def resolved_model_cache_dir(self) -> Path:
        """Where the local copy of the champion bundle lives."""
        return self.model_cache_dir or self.data_dir / "model_cache"


def settings_table() -> str:
    """Every setting as a Markdown table row (variable, default, meaning): docs/service.md's "Settings" table is
    this text, and a test compares the two, so a setting added here cannot go undocumented."""
    rows = ["| variable | default | what it sets |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = ("unset" if default is None else str(default).lower() if isinstance(default, bool)
                 else f"`{default}`")
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(f"| `DEALSCORE_{name.upper()}` | {shown} | {meaning} |")
    return "\n".join(rows)

