"""Fixtures for the service tests: real stores (SQLite and PostgreSQL), real keys, a real small bundle.

Nothing here is mocked: the store tests run against a SQLite file and against
the local PostgreSQL server (each test in its own schema), the API tests use
keys hashed exactly as in production, and scoring uses a LightGBM bundle
trained once per session on a small simulated history.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from dealscore.data.history import DealHistory
from dealscore.scoring.result import DealWarning, NextAction, ScoreResult
from dealscore_service import Settings, create_app
from dealscore_service.auth import add_key_to_file
from dealscore_service.client import deal_payload
from dealscore_service.store import ScoreStore

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# name -> (scopes, owners, teams)
KEY_SPECS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "crm": (["score"], [], []),
    "manager": (["read"], [], []),
    "admin": (["admin"], [], []),
    "east_manager": (["read"], [], ["east"]),
    "east_crm": (["score"], [], ["east"]),
    "rep_r1": (["read"], ["r1"], []),
}


# --------------------------------------------------------------------------- PostgreSQL


def _pg_available() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # the message goes into the failure
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """The local PostgreSQL (started by scripts/system-deps.sh); fails loudly when it is down."""
    problem = _pg_available()
    if problem:
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not reachable ({problem}); run `make system-deps`")
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped after the test."""
    schema = f"dealscore_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_admin_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{pg_admin_url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The score store URL, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'scores.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[ScoreStore]:
    """A migrated, empty store."""
    s = ScoreStore(store_url)
    s.migrate()
    yield s
    s.dispose()


# --------------------------------------------------------------------------- keys and apps


@pytest.fixture(scope="session")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A YAML keys file (hashes only) and the raw keys by name."""
    path = tmp_path_factory.mktemp("keys") / "keys.yaml"
    raw = {name: add_key_to_file(path, name=name, scopes=scopes, owners=owners, teams=teams)
           for name, (scopes, owners, teams) in KEY_SPECS.items()}
    return path, raw


@pytest.fixture(scope="session")
def keys(keys_file: tuple[Path, dict[str, str]]) -> dict[str, str]:
    return keys_file[1]


@pytest.fixture
def make_settings(tmp_path: Path, keys_file: tuple[Path, dict[str, str]]) -> Callable[..., Settings]:
    """Settings for a test app: data under tmp_path, the test keys, no registry unless asked."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data", "api_keys_file": keys_file[0], "use_registry": False,
            "model_retry_seconds": 0, "log_level": "WARNING",
            # exact totals after every write: the tests read right after they write (the default reuses
            # totals for up to a second; test_deals.py checks that behaviour)
            "list_totals_max_age_seconds": 0,
            # each start would walk and freeze the whole suite's heap (~0.15 s); test_heap.py checks it is on
            "freeze_heap": False,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def make_client(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., TestClient]]:
    """Start apps (lifespan included) and close them after the test."""
    opened: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        client = TestClient(create_app(make_settings(**overrides)))
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for c in opened:
        c.__exit__(None, None, None)


# --------------------------------------------------------------------------- results without a model


def _make_result(
    deal_id: str, *, p_win: float = 0.3, owner: str = "r1", team: str | None = "east", amount: float | None = 1000.0,
    as_of: datetime | str = "2024-05-01", stage: str = "proposal", typical: float | None = 0.5,
    value_at_risk: float | None = None, warnings: tuple[str, ...] = ("gone_quiet",), version: str = "dealscore/1",
) -> ScoreResult:
    """A hand-made ScoreResult (store and list tests that do not need a model)."""
    return ScoreResult(
        deal_id=deal_id, as_of=pd.Timestamp(as_of).to_pydatetime(), account_id=f"acc-{deal_id}", owner_id=owner,
        team=team, amount=amount, p_win=p_win, grade="C", declared_stage=stage, inferred_stage=stage,
        inferred_stage_probability=0.8, stage_mismatch="consistent", mismatch_explanation="as recorded",
        stage_typical_p_win=typical,
        warnings=[DealWarning(code=c, title=c.replace("_", " "), evidence="test", severity="high") for c in warnings],
        actions=[NextAction(code="call", text="Call the decision maker", stage=stage, expected_change=4.0,
                            reason="re-engages the buyer")],
        value_at_risk=(amount or 0.0) * max(0.0, (typical or 0) - p_win) if value_at_risk is None else value_at_risk,
        model_version=version,
    )


@pytest.fixture
def make_result() -> Callable[..., ScoreResult]:
    """Build hand-made ScoreResults (store and list tests that need no model)."""
    return _make_result


# --------------------------------------------------------------------------- a real bundle


@dataclass(frozen=True)
class TrainedModel:
    """A small trained bundle on disk and the history it was trained on."""

    bundle_dir: Path
    bundle: Any
    history: DealHistory
    open_ids: list[str]
    training: Any  # the TrainingResult (registry tests log it to MLflow)

    @property
    def as_of(self) -> str:
        return self.history.data_cut.isoformat()

    def payload(self, deal_id: str | None = None, **changes: Any) -> dict[str, Any]:
        """The ``POST /v1/score`` body of one open deal, as of the data cut (rendered by the library)."""
        body = deal_payload(self.history, deal_id or self.open_ids[0])
        body.update(changes)
        return body

    def payloads(self, n: int) -> list[dict[str, Any]]:
        """Batch entries (no per-deal as_of) of the first ``n`` open deals."""
        out = []
        for d in self.open_ids[:n]:
            body = deal_payload(self.history, d)
            body.pop("as_of")
            out.append(body)
        return out


@pytest.fixture(scope="session")
def trained_model(fast_config: Any, tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """A LightGBM bundle trained with the library's pipeline and the suite's fast settings on ~500 simulated
    deals (seed 11: the service's own small store, a few seconds)."""
    from dealscore.data.simulate import simulate
    from dealscore.data.validate import validate_history
    from dealscore.training.pipeline import train_models

    sim = simulate(500, seed=11)
    history, _ = validate_history(sim.history)
    result = train_models(history, fast_config)
    result.bundle.version = "dealscore/7"
    folder = result.bundle.save(tmp_path_factory.mktemp("bundle") / "bundle")
    open_ids = sorted(history.deals.loc[history.deals["outcome"].isna(), "deal_id"].tolist())
    return TrainedModel(bundle_dir=folder, bundle=result.bundle, history=history, open_ids=open_ids, training=result)


@pytest.fixture
def scoring_client(make_client: Callable[..., TestClient], trained_model: TrainedModel) -> TestClient:
    """An app serving the trained bundle from a folder, on a fresh SQLite store."""
    return make_client(model_path=trained_model.bundle_dir)
