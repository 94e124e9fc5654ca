"""Request limits: bodies over their route's cap get 413 (declared, streamed or gzip-decoded), oversized lists 422.

The caps follow from the item caps: a batch of 1,000 realistic deals and a deal of
10,001 touchpoints reach the documented 422, never a 413 first.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator

from fastapi.testclient import TestClient

from dealscore_service.limits import (
    MAX_BATCH_BODY_BYTES,
    MAX_BATCH_DEALS,
    MAX_BODY_BYTES,
    MAX_SCORE_BODY_BYTES,
    MAX_TOUCHPOINTS_PER_DEAL,
)


def _deal(i: int = 0, n_activities: int = 0) -> dict:
    return {
        "deal_id": f"d{i}", "account_id": "a1", "owner_id": "r1", "created_at": "2024-01-01T00:00:00",
        "account": {"industry": "software"},
        "stage_history": [{"stage": "prospecting", "changed_at": "2024-01-01T00:00:00"}],
        "activities": [{"occurred_at": "2024-01-02T00:00:00", "type": "email"}] * n_activities,
    }


def test_body_over_the_routes_cap_is_413(make_client: Callable[..., TestClient], keys: dict[str, str]) -> None:
    client = make_client()
    headers = {"X-API-Key": keys["crm"], "Content-Type": "application/json"}
    for path, cap in (("/v1/score", MAX_SCORE_BODY_BYTES), ("/v1/score/batch", MAX_BATCH_BODY_BYTES),
                      ("/v1/deals/d1/outcome", MAX_BODY_BYTES)):
        body = b'{"pad": "' + b"x" * cap + b'"}'
        r = client.post(path, content=body, headers=headers)
        assert r.status_code == 413, path
        err = r.json()["error"]
        assert err["type"] == "PayloadTooLargeError" and str(cap) in err["message"] and "split" in err["fix"]


def test_streamed_body_without_length_is_cut_at_one_mib(
    make_client: Callable[..., TestClient], keys: dict[str, str],
) -> None:
    client = make_client()

    def chunks() -> Iterator[bytes]:
        yield b'{"pad": "'
        for _ in range(MAX_BATCH_BODY_BYTES // 32768 + 8):
            yield b"x" * 32768  # 8.25 MiB in total, sent chunked (no Content-Length)
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
    body = b'{"pad": "' + b"x" * (MAX_SCORE_BODY_BYTES - 100) + b'"}'
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


def _realistic_deal(i: int, n_activities: int = 20) -> dict:
    """A deal as a CRM sends it: names, ids and roles on every touchpoint (~4.5 KB with 20 touchpoints)."""
    deal = {
        "deal_id": f"OPP-{i:07d}", "deal_name": f"Globex Growth rollout {i}", "account_id": f"ACC-{i:06d}",
        "owner_id": "rep-ana", "owner_name": "Ana Silva", "team": "EMEA Mid-Market", "currency": "EUR",
        "created_at": "2025-03-03T09:12:00Z", "amount": 48000, "product": "Growth", "source": "inbound",
        "expected_close_date": "2025-06-30",
        "account": {"account_name": "Globex GmbH", "industry": "software", "employees": 420, "region": "EMEA"},
        "stage_history": [{"stage": "qualification", "changed_at": "2025-03-03T09:12:00Z"},
                          {"stage": "discovery", "changed_at": "2025-03-20T15:00:00Z"}],
        "activities": [{"activity_id": f"ACT-{i:07d}-{j:03d}", "occurred_at": f"2025-03-{4 + j % 20:02d}T10:00:00Z",
                        "type": "email", "direction": "outbound", "contact_id": f"C-{j % 4}",
                        "contact_name": "Jo Buyer", "contact_role": "decision_maker"} for j in range(n_activities)],
    }
    return deal


def test_the_batch_cap_is_reachable_with_realistic_deals(
    make_client: Callable[..., TestClient], keys: dict[str, str],
) -> None:
    """1,000 realistic deals fit the batch body cap; the 1,001st is the documented 422 on ``deals``, not 413."""
    one = len(json.dumps(_realistic_deal(0)))
    assert 4000 < one < 5500, one
    assert one * MAX_BATCH_DEALS < MAX_BATCH_BODY_BYTES < one * MAX_BATCH_DEALS * 2
    client = make_client()
    deals = [_realistic_deal(i) for i in range(MAX_BATCH_DEALS + 1)]
    r = client.post("/v1/score/batch", json={"deals": deals}, headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 422, r.text[:300]
    assert [f["path"] for f in r.json()["error"]["fields"]] == ["deals"]


def test_10001_realistic_touchpoints_are_the_documented_422_not_413(
    make_client: Callable[..., TestClient], keys: dict[str, str],
) -> None:
    client = make_client()
    deal = _realistic_deal(0, MAX_TOUCHPOINTS_PER_DEAL + 1)
    assert len(json.dumps(deal)) > 1024 * 1024  # what answered 413 under one 1 MiB cap for every route
    r = client.post("/v1/score", json=deal, headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 422, r.text[:300]
    assert [f["path"] for f in r.json()["error"]["fields"]] == ["activities"]


def test_a_gzip_body_is_decoded_and_its_cap_applies_after_decoding(
    make_client: Callable[..., TestClient], keys: dict[str, str],
) -> None:
    client = make_client()
    headers = {"X-API-Key": keys["crm"], "Content-Type": "application/json", "Content-Encoding": "gzip"}
    # decoded, the body reaches the schema: one missing field is a 422 at its path
    bad = _realistic_deal(0)
    del bad["owner_id"]
    r = client.post("/v1/score", content=gzip.compress(json.dumps(bad).encode()), headers=headers)
    assert r.status_code == 422 and [f["path"] for f in r.json()["error"]["fields"]] == ["owner_id"], r.text[:300]
    # a 12 KB bomb that decodes past the cap stops at the cap
    bomb = gzip.compress(b'{"pad": "' + b"x" * (MAX_SCORE_BODY_BYTES + 10) + b'"}')
    assert len(bomb) < 64 * 1024
    r = client.post("/v1/score", content=bomb, headers=headers)
    assert r.status_code == 413 and r.json()["error"]["type"] == "PayloadTooLargeError"
    # not gzip at all, or another encoding: a clear 4xx
    r = client.post("/v1/score", content=b'{"deal_id": "x"}', headers=headers)
    assert r.status_code == 422 and "gzip" in r.json()["error"]["message"]
    r = client.post("/v1/score", content=b"{}", headers={**headers, "Content-Encoding": "br"})
    assert r.status_code == 415 and "gzip" in r.json()["error"]["fix"]
