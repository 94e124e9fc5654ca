"""Fixtures for the manager page tests: keys, an app with the page mounted, and a seeded score store.

The fast tests drive the real app (real SQLite store, real key ring, real
session cookies) through Starlette's TestClient over ``https://testserver``,
since the session cookie is Secure. Their scores are hand-built
``ScoreResult`` objects saved through the store's repository, so each test
knows exactly which deal should rank where. The browser tests
(``test_browser.py``) score simulated deals through the real API instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dealscore_service.store import ScoreStore
from tests.ui.ui_helpers import T0, build_app, make_settings, result, save


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return build_app(make_settings(tmp_path))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
        yield c


@pytest.fixture
def store(app: FastAPI, client: TestClient) -> ScoreStore:
    """The app's own store, migrated by its lifespan."""
    return app.state.services.store  # type: ignore[no-any-return]


@pytest.fixture
def seeded(store: ScoreStore) -> ScoreStore:
    """Four open deals in two teams plus one closed deal; D1 has a history of three scores.

    Value at risk (amount × gap, money) and priority (× warning and drop boosts): D1 = 100k × 0.25 = 25,000,
    priority × 1.2 × (1 + 2·0.1) = 36,000 — it fell 10 points; D2 = 80k × 0.15 = 12,000 (priority 14,400);
    E1 (EMEA) = 50k × 0.20 = 10,000 (priority 12,000); D3 is above its stage
    (not at risk); C1 is closed.
    """
    save(store,
         result("D1", p_win=0.40, as_of=T0 - timedelta(days=14), amount=100_000, typical=0.45, warnings=[]),
         result("D1", p_win=0.30, as_of=T0 - timedelta(days=7), amount=100_000, typical=0.45),
         )
    save(store,
         result("D1", p_win=0.20, as_of=T0, amount=100_000, typical=0.45, inferred="discovery").model_copy(
             update={"previous_p_win": 0.30}),
         result("D2", owner="ben", p_win=0.30, amount=80_000, typical=0.45),
         result("E1", owner="eva", team="EMEA", p_win=0.25, amount=50_000, typical=0.45),
         result("D3", owner="ben", p_win=0.70, amount=20_000, typical=0.45, declared="negotiation",
                inferred="negotiation", warnings=[]),
         )
    save(store, result("C1", p_win=0.10, amount=999_999), is_open=False)
    return store
