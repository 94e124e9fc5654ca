"""One error shape: every DealscoreError by its http_status, validation errors with paths, never a 500 for input."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dealscore.errors import (
    ConfigError,
    DataValidationError,
    DealscoreError,
    InsufficientDataError,
    ModelNotReadyError,
    NotFoundError,
    StoreUnavailableError,
)
from dealscore_service.errors import (
    AuthenticationError,
    InvalidPayloadError,
    PermissionDeniedError,
    field_path,
    install_error_handlers,
)

ERRORS = [
    (DealscoreError("generic"), 400),
    (DataValidationError("bad table", table="deals", column="amount", ids=["d1"], fix="fix it"), 422),
    (InsufficientDataError("too thin"), 422),
    (NotFoundError("no such deal"), 404),
    (ModelNotReadyError("no model"), 503),
    (StoreUnavailableError("store down"), 503),
    (AuthenticationError("who are you"), 401),
    (PermissionDeniedError("not yours"), 403),
    (ConfigError("broken taxonomy"), 500),
    (InvalidPayloadError("bad deal", fields=[{"loc": ["body", "amount"], "path": "amount", "message": "neg"}]), 422),
]


@pytest.fixture
def raising_app() -> TestClient:
    app = FastAPI()
    app.state.settings = type("S", (), {"store_retry_after_seconds": 7})()
    install_error_handlers(app)

    @app.get("/raise/{i}")
    def boom(i: int) -> None:
        raise ERRORS[i][0]

    return TestClient(app)


@pytest.mark.parametrize("i", range(len(ERRORS)))
def test_each_error_maps_to_its_status_in_one_shape(raising_app: TestClient, i: int) -> None:
    exc, status = ERRORS[i]
    r = raising_app.get(f"/raise/{i}")
    assert r.status_code == status == exc.http_status
    err = r.json()["error"]
    assert err["type"] == type(exc).__name__
    assert err["message"].startswith(exc.message.split(". Fix:")[0])
    if status == 503:
        assert r.headers["retry-after"] == "7"
    else:
        assert "retry-after" not in r.headers
    if isinstance(exc, DataValidationError) and exc.fix:
        assert err["fix"] == "fix it" and err["detail"]["table"] == "deals" and err["detail"]["ids"] == ["d1"]
    if isinstance(exc, InvalidPayloadError):
        assert err["fields"][0]["path"] == "amount"


def test_field_paths_read_like_json() -> None:
    assert field_path(["body", "deals", 3, "activities", 0, "type"]) == "deals[3].activities[0].type"
    assert field_path(["body"]) == "body"
    assert field_path(["query", "limit"]) == "query.limit"


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        ({"deal_id": "d1"}, {"account_id", "owner_id", "created_at", "account"}),
        ({"deal_id": 5, "account_id": "a", "owner_id": "r", "created_at": "yesterday", "account": {"industry": "x"}},
         {"deal_id", "created_at"}),
        ({"deal_id": "d", "account_id": "a", "owner_id": "r", "created_at": "2024-01-01", "amount": -5,
          "account": {"industry": "x"}, "activities": [{"occurred_at": "2024-01-02", "type": "email", "mood": 1}]},
         {"amount"}),  # an unknown field ("mood") is accepted and listed in ignored_fields
        ({"deal_id": "d", "account_id": "a", "owner_id": "r", "created_at": "9999-01-01T00:00:00",
          "account": {"industry": "x"}}, {"created_at"}),
        ({"deal_id": "d\u0000", "account_id": "a", "owner_id": "r", "created_at": "2024-01-01",
          "account": {"industry": "x"}}, {"deal_id"}),
        ({"deal_id": "d", "account_id": "a", "owner_id": "r", "created_at": "2024-01-01", "outcome": "maybe",
          "account": {"industry": "x"}}, {"outcome"}),
    ],
)
def test_wrong_types_and_values_are_422_with_field_paths(
    make_client: Callable[..., TestClient], keys: dict[str, str], body: dict, paths: set[str],
) -> None:
    r = make_client().post("/v1/score", json=body, headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["type"] == "RequestValidationError"
    assert {f["path"] for f in err["fields"]} == paths
    assert all(f["message"] for f in err["fields"])


def test_malformed_json_is_422_saying_where(make_client: Callable[..., TestClient], keys: dict[str, str]) -> None:
    r = make_client().post("/v1/score", content=b'{"deal_id": "d1",,}',
                           headers={"X-API-Key": keys["crm"], "Content-Type": "application/json"})
    assert r.status_code == 422
    field = r.json()["error"]["fields"][0]
    assert field["type"] == "json_invalid" and "JSON decode error" in field["message"] and field["fix"]


def test_unknown_route_and_method_use_the_same_shape(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    r = client.get("/v2/nothing")
    assert r.status_code == 404 and r.json()["error"]["type"] == "HTTPError"
    r = client.delete("/v1/score")
    assert r.status_code == 405 and r.json()["error"]["message"]


def test_an_unexpected_bug_is_a_json_500_with_the_request_id(make_client: Callable[..., TestClient]) -> None:
    client = make_client()

    @client.app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug, not the client's fault")

    r = client.get("/boom", headers={"X-Request-ID": "req-123"})
    assert r.status_code == 500
    assert r.json()["error"] == {"type": "InternalError", "message": "internal error; please report request id req-123",
                                 "request_id": "req-123"}
    assert r.headers["x-request-id"] == "req-123"


_VALID = {"deal_id": "d", "account_id": "a", "owner_id": "r", "created_at": "2024-01-01", "account": {"industry": "x"}}


@pytest.mark.parametrize(("change", "path", "fix_says"), [
    ({"amount": -5}, "amount", "0"),
    ({"amount": 1e300}, "amount", "≤ 1000000000000000"),
    ({"deal_id": "x" * 201}, "deal_id", "200 characters"),
    ({"deal_id": ""}, "deal_id", "character"),
    ({"team": ""}, "team", "character"),
    ({"deal_name": "x" * 301}, "deal_name", "300 characters"),
    ({"out_of_life": "keep"}, "out_of_life", "'fail'"),
    ({"outcome": "WON"}, "outcome", "'won'"),
    ({"account": None}, "account", "object"),
    ({"amount": True}, "amount", "number"),
    ({"account": {"industry": "x", "employees": True}}, "account.employees", "whole number"),
    ({"currency": "ZZZ"}, "currency", "ISO 4217"),  # three letters, but no currency: a total of its own
])
def test_every_422_field_says_its_own_fix(make_client: Callable[..., TestClient], keys: dict[str, str],
                                          change: dict, path: str, fix_says: str) -> None:
    """Each field's fix names what to send; a fix about batches for a long deal id, or none, helped no one."""
    r = make_client().post("/v1/score", json={**_VALID, **change}, headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 422, r.text
    (field,) = [f for f in r.json()["error"]["fields"] if f["path"] == path]
    assert "fix" in field and fix_says in field["fix"], field
    assert "batch" not in field["fix"] or path == "deals"


@pytest.mark.parametrize(("query", "path", "fix_says"), [
    ("limit=0", "limit", "1"), ("limit=501", "limit", "500"), ("offset=-1", "offset", "0"),
    ("sort=risk", "sort", "value_at_risk"), ("order=up", "order", "asc"), ("min_amount=nan", "min_amount", "finite"),
    ("currency=EUE", "currency", "ISO 4217"),  # a typo listed nothing, as if no deal were in euros
])
def test_every_query_422_says_its_own_fix(make_client: Callable[..., TestClient], keys: dict[str, str],
                                          query: str, path: str, fix_says: str) -> None:
    r = make_client().get(f"/v1/deals/at-risk?{query}", headers={"X-API-Key": keys["manager"]})
    assert r.status_code == 422, r.text
    (field,) = r.json()["error"]["fields"]
    assert field["path"] == f"query.{path}" and fix_says in field.get("fix", ""), field
