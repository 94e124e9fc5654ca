"""Settings come from DEALSCORE_* variables, with embedded defaults that run on one laptop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio.to_thread
import pytest
from fastapi.testclient import TestClient

from dealscore_service.main import worker_threads
from dealscore_service.settings import Settings


def test_defaults_put_everything_under_the_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert s.resolved_database_url == f"sqlite:///{(tmp_path / '.dealscore' / 'scores.db')}"
    assert s.resolved_model_cache_dir == Path(".dealscore") / "model_cache"
    assert s.max_body_bytes == 1024 * 1024 and s.use_registry and s.migrate_on_start


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DEALSCORE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DEALSCORE_DATABASE_URL", "postgresql+psycopg://u:Zq9-pwd@db/scores")
    monkeypatch.setenv("DEALSCORE_MODEL_PATH", str(tmp_path / "bundle"))
    monkeypatch.setenv("DEALSCORE_USE_REGISTRY", "false")
    monkeypatch.setenv("DEALSCORE_API_KEYS", '[{"name": "x"}]')
    s = Settings()
    assert s.data_dir == tmp_path and s.model_path == tmp_path / "bundle" and not s.use_registry
    assert s.resolved_database_url == "postgresql+psycopg://u:Zq9-pwd@db/scores"
    assert '"x"' not in repr(s) and "Zq9-pwd" not in repr(s), "keys and the store password stay out of reprs and logs"


def test_worker_threads_bound_the_requests_a_worker_runs_at_once(make_client: Callable[..., TestClient]) -> None:
    """The default thread limiter (40 in anyio) is set at start-up: sync endpoints and run_in_threadpool use it."""

    def tokens() -> float:
        return anyio.to_thread.current_default_thread_limiter().total_tokens

    assert make_client(worker_threads=3).portal.call(tokens) == 3
    assert make_client().portal.call(tokens) == 40, "SQLite keeps anyio's default"


def test_worker_threads_default_by_store() -> None:
    """Few threads on a database server, anyio's 40 on SQLite; the setting wins over both."""
    assert Settings().worker_threads is None
    assert worker_threads(Settings(), "postgresql") == 4
    assert worker_threads(Settings(), "sqlite") == 40
    assert worker_threads(Settings(worker_threads=7), "postgresql") == 7


def test_the_docs_list_every_setting_with_its_default() -> None:
    """DEALSCORE_MODEL_NAME, _USE_REGISTRY, _MIGRATE_ON_START and five more were read by the service and named
    nowhere in the docs; the table in docs/service.md is now the settings' own text."""
    from dealscore_service.settings import settings_table

    docs = (Path(__file__).resolve().parents[2] / "docs" / "service.md").read_text(encoding="utf-8")
    shown = docs.split("<!-- settings:start -->\n")[1].split("\n<!-- settings:end -->")[0]
    assert shown == settings_table(), "regenerate the table: python -c 'from dealscore_service.settings import " \
                                      "settings_table; print(settings_table())'"
