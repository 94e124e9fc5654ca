"""The shared dependencies: query parameters are declared ones, one value each, of UTF-8 text, or the request is a
422."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize(("path", "query", "name"), [
    ("/v1/deals/at-risk", "owner=%FF", "owner"),
    ("/v1/deals/at-risk", "team=ok&stage=caf%E9", "stage"),  # Latin-1 é
    ("/v1/deals/at-risk", "%FF=x", "\ufffd"),
    ("/v1/deals/OPP-1/scores", "limit=%C3", "limit"),  # a truncated UTF-8 sequence
    ("/v1/forecast", "by=%FFteam", "by"),
])
def test_a_query_parameter_that_is_not_utf8_is_422_naming_it(
        make_client: Callable[..., TestClient], keys: dict[str, str], path: str, query: str, name: str) -> None:
    """Starlette decodes a query with ``errors="replace"``: ``?owner=%FF`` became the owner "\\ufffd", matched
    no deal, and the client got 200 with an empty list for a request it had got wrong."""
    client = make_client()
    r = client.get(f"{path}?{query}", headers={"X-API-Key": keys["manager"]})
    assert r.status_code == 422, r.text
    (field,) = r.json()["error"]["fields"]
    assert field["loc"] == ["query", name] and field["path"] == f"query.{name}"
    assert "UTF-8" in field["message"] and "%C3%A9" in field["fix"]


def test_utf8_query_text_and_repeats(make_client: Callable[..., TestClient], keys: dict[str, str]) -> None:
    """Percent-encoded UTF-8 is read as the text it encodes; a parameter given twice is still refused (forecast
    included, which read the last of them)."""
    client = make_client()
    h = {"X-API-Key": keys["manager"]}
    assert client.get("/v1/deals/at-risk?owner=Jos%C3%A9+Mar%C3%ADa", headers=h).status_code == 200
    r = client.get("/v1/forecast?by=team&by=owner", headers=h)
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["loc"] == ["query", "by"]


@pytest.mark.parametrize(("path", "query", "name"), [
    ("/v1/deals/at-risk", "declared_stage=negotiation", "declared_stage"),  # the filter is `stage`
    ("/v1/deals/at-risk", "owner=ana&min_p_win=0.3", "min_p_win"),
    ("/v1/deals/OPP-1/scores", "sort=p_win", "sort"),
    ("/v1/forecast", "group_by=owner", "group_by"),
])
def test_a_parameter_the_endpoint_does_not_declare_is_422_naming_it(
        make_client: Callable[..., TestClient], keys: dict[str, str], path: str, query: str, name: str) -> None:
    """Ignored, a misspelt filter returned the whole list as if it were the filtered one (200)."""
    client = make_client()
    r = client.get(f"{path}?{query}", headers={"X-API-Key": keys["manager"]})
    assert r.status_code == 422, r.text
    (field,) = r.json()["error"]["fields"]
    assert field["loc"] == ["query", name] and "not a parameter of this endpoint" in field["message"]
    assert "reference" in field["fix"]
    declared = client.get("/v1/deals/at-risk?stage=negotiation&owner=ana&limit=5", headers={
        "X-API-Key": keys["manager"]})
    assert declared.status_code == 200, declared.text


@pytest.mark.parametrize(("path", "query"), [
    ("/v1/deals/at-risk", "declared_stage=negotiation"),
    ("/v1/deals/OPP-1/scores", "limit=%C3"),
    ("/v1/forecast", "by=team&by=owner"),
])
@pytest.mark.parametrize("key", [None, "not-a-key"])
def test_a_caller_without_a_known_key_gets_the_401_before_any_query_check(
        make_client: Callable[..., TestClient], path: str, query: str, key: str | None) -> None:
    """The query's checks answered first, so a caller without a key was told about its parameters rather than
    that it needs a key."""
    r = make_client().get(f"{path}?{query}", headers={"X-API-Key": key} if key else {})
    assert r.status_code == 401, r.text
    assert "not a parameter" not in r.text and "fields" not in r.json()["error"]
