"""Schemathesis against the OpenAPI schema: generated requests never get a 5xx and responses match the schema.

The app serves a real bundle and a real store, so generated deals that pass the
contract are really scored. Examples are few per operation (the point is the
shape of every answer, not a fuzzing campaign) and derandomized, so the test is
fast and the same on every run.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dealscore_service import Settings, create_app
from dealscore_service.auth import generate_key, hash_key

pytestmark = pytest.mark.slow

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

# The schema is loaded from an app built at import time (schemathesis parametrizes at collection); the
# fixture below puts the trained bundle where the app looks for it and runs the app's lifespan.
_DATA = Path(tempfile.mkdtemp(prefix="dealscore-openapi-"))
ADMIN_KEY = generate_key()
APP = create_app(Settings(
    data_dir=_DATA, model_path=_DATA / "bundle", use_registry=False, model_retry_seconds=0, log_level="WARNING",
    api_keys=json.dumps([{"name": "schemathesis", "hash": hash_key(ADMIN_KEY), "scopes": ["admin"]}]),
))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def running_app(trained_model) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    shutil.copytree(trained_model.bundle_dir, _DATA / "bundle", dirs_exist_ok=True)
    try:
        with TestClient(APP) as client:
            assert client.get("/readyz").status_code == 200
            yield client
    finally:
        shutil.rmtree(_DATA, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=5, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_within_its_schema(case) -> None:  # type: ignore[no-untyped-def]
    case.call_and_validate(headers={"X-API-Key": ADMIN_KEY}, checks=CHECKS)


def test_schema_documents_errors_and_security(running_app: TestClient) -> None:
    doc = running_app.get("/openapi.json").json()
    score = doc["paths"]["/v1/score"]["post"]
    assert {"401", "403", "413", "422", "503"} <= set(score["responses"])
    assert score["security"]
    batch = doc["components"]["schemas"]["BatchScoreRequest"]["properties"]["deals"]
    assert batch["maxItems"] == 1000
    deal = doc["components"]["schemas"]["DealPayload"]["properties"]["activities"]
    assert deal["maxItems"] == 10000


def test_the_documented_examples_score(running_app: TestClient) -> None:
    doc = running_app.get("/openapi.json").json()
    example = doc["components"]["schemas"]["ScoreRequest"]["examples"][0]
    r = running_app.post("/v1/score", json=example, headers={"X-API-Key": ADMIN_KEY})
    assert r.status_code == 200, r.text
    assert r.json()["as_of"] == "2025-05-06T00:00:00Z"
    batch = doc["components"]["schemas"]["BatchScoreRequest"]["examples"][0]
    r = running_app.post("/v1/score/batch", json=batch, headers={"X-API-Key": ADMIN_KEY})
    assert r.status_code == 200 and r.json()["replayed"] == 1
