"""Request bodies the API once took at a guess: a key sent twice, timestamps mixing zones, oversized text.

Each is now the data contract's answer: a 422 naming the field path, and nothing
stored, the same rule the CLI applies to a CSV file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient

from dealscore.data.schema import MAX_DISPLAY_CHARS, MAX_ID_CHARS, MAX_NAME_CHARS, MAX_TEXT_CHARS
from dealscore_service.jsonbody import parse_json_body

pytestmark = pytest.mark.slow


def _post(client: TestClient, path: str, text: str, key: str) -> Any:
    return client.post(path, content=text.encode(), headers={"X-API-Key": key, "Content-Type": "application/json"})


def test_a_key_sent_twice_is_422_at_its_path_and_nothing_is_stored(
    scoring_client: TestClient, trained_model, keys: dict[str, str],
) -> None:
    body = trained_model.payload()
    text = json.dumps(body)
    # the amount twice at the top, and a touchpoint's type twice
    text = text.replace('"deal_id":', '"amount": 1, "amount": 1000000, "deal_id":', 1)
    first = json.dumps(body["activities"][0])
    text = text.replace(first, first[:-1] + ', "type": "meeting"}', 1)
    r = _post(scoring_client, "/v1/score", text, keys["crm"])
    assert r.status_code == 422, r.text
    fields = r.json()["error"]["fields"]
    paths = [f["path"] for f in fields]
    assert paths == ["amount", "activities[0].type"]
    assert all(f["type"] == "duplicate_key" and f["fix"] for f in fields)
    assert "appears 3 times" in fields[0]["message"]  # the payload has its own amount too
    assert scoring_client.app.state.services.store.count() == 0
    # the same body without the repeats is scored
    assert scoring_client.post("/v1/score", json=body, headers={"X-API-Key": keys["crm"]}).status_code == 200


def test_a_key_sent_twice_in_a_batch_names_the_deal(scoring_client: TestClient, trained_model, keys) -> None:
    deals = trained_model.payloads(2)
    text = json.dumps({"deals": deals, "as_of": trained_model.as_of})
    text = text.replace(f'"deal_id": "{deals[1]["deal_id"]}"',
                        f'"deal_id": "{deals[1]["deal_id"]}", "deal_id": "other"', 1)
    r = _post(scoring_client, "/v1/score/batch", text, keys["crm"])
    assert r.status_code == 422, r.text
    assert [f["path"] for f in r.json()["error"]["fields"]] == ["deals[1].deal_id"]


def test_the_strict_parser_agrees_with_json_on_clean_bodies() -> None:
    text = '{"a": [1, {"b": null, "c": "é"}], "d": {"e": 1.5e3}}'
    assert parse_json_body(text.encode()) == json.loads(text)
    with pytest.raises(json.JSONDecodeError):
        parse_json_body(b'{"a": 1')


def test_malformed_json_still_says_where(scoring_client: TestClient, keys: dict[str, str]) -> None:
    r = _post(scoring_client, "/v1/score", '{"deal_id": "x", ', keys["crm"])
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["type"] == "json_invalid"


def test_timestamps_mixing_zones_are_refused_as_the_cli_refuses_them(
    scoring_client: TestClient, trained_model, keys: dict[str, str],
) -> None:
    body = trained_model.payload()
    assert not body["created_at"].endswith("Z")  # the rendered payload has no offsets: all taken as UTC
    mixed = json.loads(json.dumps(body))
    mixed["created_at"] += "Z"
    r = scoring_client.post("/v1/score", json=mixed, headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 422, r.text
    fields = r.json()["error"]["fields"]
    naive = len(body["stage_history"]) + len(body["activities"])  # every other timestamp lacks the zone
    paths = [f["path"] for f in fields]
    assert len(fields) >= naive and "stage_history[0].changed_at" in paths and "created_at" not in paths
    assert "has no time zone while 1 other timestamp(s) of the request carry one" in fields[0]["message"]
    assert "offset" in fields[0]["fix"]
    assert scoring_client.app.state.services.store.count() == 0
    # all with an offset (any offsets) is fine, and scores the same instants as all without
    zoned = json.loads(json.dumps(body))
    zoned["created_at"] += "Z"
    zoned["as_of"] += "Z"  # as_of is one of the request's times too
    if zoned["account"].get("created_at"):
        zoned["account"]["created_at"] += "-05:00"
        body["account"]["created_at"] = None  # the same instants: compare without the account's own
        zoned["account"]["created_at"] = None
    for items in (zoned["stage_history"], zoned["activities"]):
        for item in items:
            for name in ("changed_at", "occurred_at", "recorded_at"):
                if item.get(name):
                    item[name] += "+00:00" if name == "changed_at" else "Z"
    ok = scoring_client.post("/v1/score", json=zoned, headers={"X-API-Key": keys["crm"]})
    assert ok.status_code == 200, ok.text
    again = scoring_client.post("/v1/score", json=body, headers={"X-API-Key": keys["crm"]})
    assert again.status_code == 200 and again.headers.get("Idempotent-Replay") == "true"


def test_zones_mixed_across_a_batch_name_each_deal(scoring_client: TestClient, trained_model, keys) -> None:
    deals = trained_model.payloads(2)
    deals[1]["created_at"] += "+02:00"
    r = scoring_client.post("/v1/score/batch", json={"deals": deals, "as_of": trained_model.as_of},
                            headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 422, r.text
    paths = {f["path"] for f in r.json()["error"]["fields"]}
    assert "deals[0].created_at" in paths and "deals[1].created_at" not in paths


def test_the_api_caps_text_as_the_data_contract_does(make_client: Callable[..., TestClient]) -> None:
    schema = make_client().get("/openapi.json").json()["components"]["schemas"]
    props = schema["DealPayload"]["properties"]

    def cap(prop: dict[str, Any]) -> int:
        return next(p["maxLength"] for p in [prop, *prop.get("anyOf", [])] if "maxLength" in p)

    assert cap(props["deal_id"]) == MAX_ID_CHARS and cap(props["product"]) == MAX_TEXT_CHARS
    assert cap(props["deal_name"]) == MAX_DISPLAY_CHARS
    assert cap(schema["ActivityPayload"]["properties"]["type"]) == MAX_NAME_CHARS


@pytest.mark.parametrize(("text", "words"), [
    ("[" * 100_000 + "]" * 100_000, "nests arrays or objects too deeply"),
    ('{"deal_id": ' + "9" * 5_000 + "}", "more than 4300 digits"),
])
def test_json_too_deep_or_with_too_long_a_number_is_422_at_the_body(
    scoring_client: TestClient, keys: dict[str, str], text: str, words: str,
) -> None:
    """Valid JSON Python's parser cannot hold (RecursionError; int() refusing 5,000 digits) was a 500."""
    for path in ("/v1/score", "/v1/score/batch", "/v1/deals/D1/outcome"):
        r = _post(scoring_client, path, text, keys["crm"])
        assert r.status_code == 422, (path, r.text)
        [field] = r.json()["error"]["fields"]
        assert field["loc"] == ["body"] and field["path"] == "body" and field["type"] == "json_unreadable"
        assert words in field["message"] and field["fix"]
    with pytest.raises(RequestValidationError):
        parse_json_body(('{"b": {"a": 1, "a": 2}, "c": ' + "[" * 100_000 + "]" * 100_000 + "}").encode())


def test_an_id_with_a_lone_surrogate_is_422_at_its_path(
    scoring_client: TestClient, trained_model, keys: dict[str, str],
) -> None:
    """``"X\\ud800"`` is valid JSON but no UTF-8 text: in an id (trimmed before it is checked) it reached the
    history's Arrow columns and answered a 500; display names were already refused."""
    for loc in (("deal_id",), ("team",), ("owner_id",), ("account_id",), ("account", "account_id"),
                ("activities", 0, "contact_id")):
        body = trained_model.payload()
        body["account"]["account_id"] = body["account_id"]
        *parent, last = loc
        target = body
        for part in parent:
            target = target[part]
        target[last] = "X\ud800"
        r = _post(scoring_client, "/v1/score", json.dumps(body), keys["crm"])  # ensure_ascii: sent as \ud800
        assert r.status_code == 422, (loc, r.text)
        fields = {f["path"]: f["message"] for f in r.json()["error"]["fields"]}
        path = ".".join(str(p) for p in loc).replace(".0.", "[0].")
        assert "must be valid Unicode text" in fields[path], (loc, fields)
    assert scoring_client.app.state.services.store.count() == 0


def test_as_of_is_held_to_the_zone_rule_with_the_deals_times(
    scoring_client: TestClient, trained_model, keys: dict[str, str],
) -> None:
    """as_of is one of the request's times: with an offset among deal times without one (or the reverse) it
    was scored, while every other mix within a request is a 422."""
    h = {"X-API-Key": keys["crm"]}
    body = trained_model.payload()
    assert not body["as_of"].endswith("Z") and not body["created_at"].endswith("Z")
    zoned_as_of = {**body, "as_of": body["as_of"] + "+05:00"}
    r = scoring_client.post("/v1/score", json=zoned_as_of, headers=h)
    assert r.status_code == 422, r.text
    paths = [f["path"] for f in r.json()["error"]["fields"]]
    assert "created_at" in paths and "as_of" not in paths
    # the reverse: every deal time with an offset, as_of without one
    zoned = json.loads(re.sub(r'"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?)"', r'"\1Z"', json.dumps(body)))
    zoned["as_of"] = body["as_of"]
    r = scoring_client.post("/v1/score", json=zoned, headers=h)
    assert r.status_code == 422, r.text
    assert [f["path"] for f in r.json()["error"]["fields"]] == ["as_of"]
    # a batch's own as_of, either way
    deals = trained_model.payloads(2)
    r = scoring_client.post("/v1/score/batch", json={"deals": deals, "as_of": trained_model.as_of + "Z"}, headers=h)
    assert r.status_code == 422, r.text
    assert "deals[1].created_at" in {f["path"] for f in r.json()["error"]["fields"]}
    zoned_deals = [{k: v for k, v in zoned.items() if k != "as_of"}]
    r = scoring_client.post("/v1/score/batch", json={"deals": zoned_deals, "as_of": trained_model.as_of}, headers=h)
    assert r.status_code == 422, r.text
    assert [f["path"] for f in r.json()["error"]["fields"]] == ["as_of"]
    assert scoring_client.app.state.services.store.count() == 0
    # all with an offset (as_of too) is scored
    zoned["as_of"] = body["as_of"] + "+00:00"
    assert scoring_client.post("/v1/score", json=zoned, headers=h).status_code == 200


def test_a_name_or_id_no_one_can_read_is_422_at_its_path(
    scoring_client: TestClient, trained_model, keys: dict[str, str],
) -> None:
    """A team of one zero-width space was stored and showed as an empty choice in the pages' filters; a name
    with a right-to-left override reordered the list row shown after it."""
    cases = {("team",): "\u200b", ("owner_name",): "Ana\u202eSilva", ("deal_name",): "\u3164",
             ("account", "account_name"): "\u2060", ("activities", 0, "contact_role"): "\u200c",
             ("stage_history", 0, "stage"): "\ufeff"}
    for loc, value in cases.items():
        body = trained_model.payload()
        *parent, last = loc
        target = body
        for part in parent:
            target = target[part]
        target[last] = value
        r = _post(scoring_client, "/v1/score", json.dumps(body), keys["crm"])
        assert r.status_code == 422, (loc, r.text)
        fields = {f["path"]: f for f in r.json()["error"]["fields"]}
        path = ".".join(str(p) for p in loc).replace(".0.", "[0].")
        assert fields[path]["type"] == "text_unreadable", (loc, fields)
        assert "visible" in fields[path]["message"] or "override" in fields[path]["message"]
        assert "invisible or bidirectional" in fields[path]["fix"]
    assert scoring_client.app.state.services.store.count() == 0
    body = trained_model.payload()
    body["owner_name"] = "محمد\u200f"
    assert _post(scoring_client, "/v1/score", json.dumps(body), keys["crm"]).status_code == 200
