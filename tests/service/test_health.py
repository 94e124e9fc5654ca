"""/healthz, /readyz and /metrics."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient


def test_healthz_is_always_ok(make_client: Callable[..., TestClient]) -> None:
    assert make_client().get("/healthz").json() == {"status": "ok"}


def test_readyz_says_what_is_missing(make_client: Callable[..., TestClient]) -> None:
    r = make_client().get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "not_ready" and body["model"] is False and body["store"] is True
    assert any(p.startswith("model: no model is loaded") for p in body["problems"])


@pytest.mark.slow
def test_readyz_ready_with_model_and_store(scoring_client: TestClient) -> None:
    r = scoring_client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready", "model": True, "store": True, "problems": []}


@pytest.mark.slow
def test_metrics_count_requests_by_route_scores_and_model(
    scoring_client: TestClient, trained_model, keys: dict[str, str],
) -> None:
    h = {"X-API-Key": keys["crm"]}
    body = trained_model.payload()
    scoring_client.post("/v1/score", json=body, headers=h)
    scoring_client.post("/v1/score", json=body, headers=h)
    scoring_client.get("/v1/deals/some-id/scores", headers={"X-API-Key": keys["manager"]})
    text = scoring_client.get("/metrics").text
    assert 'dealscore_http_requests_total{method="POST",route="/v1/score",status="200"} 2.0' in text
    # the route template, not the raw path (bounded label values)
    assert 'route="/v1/deals/{deal_id}/scores",status="404"' in text and "some-id" not in text
    assert 'dealscore_http_request_duration_seconds_bucket{le="0.5",method="POST",route="/v1/score"}' in text
    assert 'dealscore_scores_served_total{kind="fresh",model_version="dealscore/7"} 1.0' in text
    assert 'dealscore_scores_served_total{kind="replayed",model_version="dealscore/7"} 1.0' in text
    assert 'dealscore_model_info{source="path",version="dealscore/7"} 1.0' in text
    assert "dealscore_model_loaded 1.0" in text
