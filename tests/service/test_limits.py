"""Request limits: bodies over 1 MiB get 413 (declared or streamed), oversized lists get 422 with a path."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi.testclient import TestClient

from dealscore_service.limits import MAX_BATCH_DEALS, MAX_BODY_BYTES, MAX_TOUCHPOINTS_PER_DEAL


def _deal(i: int = 0, n_activities: int = 0) -> dict:
    return {
        "deal_id": f"d{i}", "account_id": "a1", "owner_id": "r1", "created_at": "2024-01-01T00:00:00",
        "account": {"industry": "software"},
        "stage_history": [{"stage": "prospecting", "changed_at": "2024-01-01T00:00:00"}],
        "activities": [{"occurred_at": "2024-01-02T00:00:00", "type": "email"}] * n_activities,
    }


def test_body_over_one_mib_is_413(make_client: Callable[..., TestClient], keys: dict[str, str]) -> None:
    client = make_client()
    body = b'{"pad": "' + b"x" * MAX_BODY_BYTES + b'"}'
    r = client.post("/v1/score", content=body, headers={"X-API-Key": keys["crm"], "Content-Type": "application/json"})
    assert r.status_code == 413
    err = r.json()["error"]
    assert err["type"] == "PayloadTooLargeError" and "1048576" in err["message"] and "split" in err["fix"]


def test_streamed_body_without_length_is_cut_at_one_mib(
    make_client: Callable[..., TestClient], keys: dict[str, str],
) -> None:
    client = make_client()

    def chunks() -> Iterator[bytes]:
        yield b'{"pad": "'
        for _ in range(40):
            yield b"x" * 32768  # 1.25 MiB in total, sent chunked (no Content-Length)
        yield b'"}'

    r = client.post("/v1/score/batch", content=chunks(),
                    headers={"X-API-Key": keys["crm"], "Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "PayloadTooLargeError"
    # it was refused while being read by the route (not from a Content-Length header)
    metrics = client.get("/metrics").text
    assert 'dealscore_http_requests_total{method="POST",route="/v1/score/batch",status="413"} 1.0' in metrics


def test_body_just_under_the_limit_is_not_413(make_client: Callable[..., TestClient], keys: dict[str, str]) -> None:
    client = make_client()
    body = b'{"pad": "' + b"x" * (MAX_BODY_BYTES - 100) + b'"}'
    r = client.post("/v1/score", content=body, headers={"X-API-Key": keys["crm"], "Content-Type": "application/json"})
    assert r.status_code == 422  # read in full, then refused for its content


def test_more_than_1000_deals_is_422_on_deals(make_client: Callable[..., TestClient], keys: dict[str, str]) -> None:
    client = make_client()
    deals = [_deal(i) for i in range(MAX_BATCH_DEALS + 1)]
    r = client.post("/v1/score/batch", json={"deals": deals}, headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 422, r.text[:300]
    fields = r.json()["error"]["fields"]
    assert [f["path"] for f in fields] == ["deals"]
    assert "1000" in fields[0]["message"] and "split" in fields[0]["fix"]


def test_more_than_10000_touchpoints_is_422_on_activities(
    make_client: Callable[..., TestClient], keys: dict[str, str],
) -> None:
    client = make_client()
    r = client.post("/v1/score", json=_deal(0, MAX_TOUCHPOINTS_PER_DEAL + 1), headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 422, r.text[:300]
    assert [f["path"] for f in r.json()["error"]["fields"]] == ["activities"]
    deals = [_deal(0, MAX_TOUCHPOINTS_PER_DEAL + 1)]
    r = client.post("/v1/score/batch", json={"deals": deals}, headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 422
    assert [f["path"] for f in r.json()["error"]["fields"]] == ["deals[0].activities"]
