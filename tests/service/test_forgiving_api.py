"""A forgiving, predictable API for CRM integrators (issue 18, point 4), and names and the model/data
mismatch in its responses (points 3 and 5)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient


def _post(client: TestClient, keys: dict[str, str], body: dict[str, Any], path: str = "/v1/score") -> Any:
    return client.post(path, json=body, headers={"X-API-Key": keys["crm"]})


def test_unknown_fields_are_accepted_and_listed(scoring_client: TestClient, trained_model,
                                                keys: dict[str, str]) -> None:
    body = trained_model.payload(crm_url="https://crm/x", deal_name="Acme rollout", currency="eur")
    body["account"]["crm_id"] = "A-9"
    body["activities"][0]["mood"] = "happy"
    r = _post(scoring_client, keys, body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["ignored_fields"] == ["crm_url", "account.crm_id", "activities[0].mood"]
    assert out["deal_name"] == "Acme rollout" and out["currency"] == "EUR"  # known now: carried, not ignored
    entry = {k: v for k, v in body.items() if k != "as_of"}
    batch = _post(scoring_client, keys, {"deals": [entry], "as_of": trained_model.as_of, "source": "x"},
                  "/v1/score/batch")
    assert batch.status_code == 200, batch.text
    assert batch.json()["ignored_fields"] == ["source", "deals[0].crm_url", "deals[0].account.crm_id",
                                              "deals[0].activities[0].mood"]


def test_date_errors_say_iso_8601_with_an_example(scoring_client: TestClient, trained_model,
                                                  keys: dict[str, str]) -> None:
    body = trained_model.payload(created_at="12/03/2026")
    r = _post(scoring_client, keys, body)
    assert r.status_code == 422
    field = next(f for f in r.json()["error"]["fields"] if f["path"] == "created_at")
    assert "ISO 8601" in field["message"] and "2025-03-12T14:30:00Z" in field["message"]
    assert "'12/03/2026'" in field["message"] and "ISO 8601" in field["fix"]


def _early_touch(trained_model) -> dict[str, Any]:
    body = trained_model.payload()
    created = body["created_at"]
    early = copy.deepcopy(body["activities"][0]) if body["activities"] else {"type": "email"}
    early.pop("activity_id", None)
    early["occurred_at"] = "2000-01-02T00:00:00"
    body["activities"] = [*body["activities"], early]
    assert created > "2000"
    return body


def test_out_of_life_touchpoints_fail_by_default_naming_the_path(scoring_client: TestClient, trained_model,
                                                                 keys: dict[str, str]) -> None:
    body = _early_touch(trained_model)
    n = len(body["activities"]) - 1
    r = _post(scoring_client, keys, body)
    assert r.status_code == 422
    err = r.json()["error"]
    paths = [f["path"] for f in err["fields"]]
    assert f"activities[{n}].occurred_at" in paths
    # one numbering: the message never counts rows ("row 5") where the path says activities[n]
    assert "row " not in err["message"] and all("row " not in f["message"] for f in err["fields"])
    fix = next(f["fix"] for f in err["fields"] if f["path"] == f"activities[{n}].occurred_at")
    assert 'out_of_life: "drop"' in fix and "dealscore" not in fix


def test_out_of_life_drop_per_request_scores_and_warns(scoring_client: TestClient, trained_model,
                                                       keys: dict[str, str]) -> None:
    body = _early_touch(trained_model)
    n = len(body["activities"]) - 1
    r = _post(scoring_client, keys, {**body, "out_of_life": "drop"})
    assert r.status_code == 200, r.text
    notices = r.json()["notices"]
    assert any(f"dropped activities[{n}]" in x and "before the deal was created" in x for x in notices)


def test_out_of_life_drop_as_a_setting(make_client: Callable[..., TestClient], trained_model,
                                       keys: dict[str, str]) -> None:
    client = make_client(model_path=trained_model.bundle_dir, out_of_life="drop")
    r = _post(client, keys, _early_touch(trained_model))
    assert r.status_code == 200, r.text
    assert any("dropped activities[" in x for x in r.json()["notices"])
    strict = _post(client, keys, {**_early_touch(trained_model), "out_of_life": "fail", "deal_id": "other"})
    assert strict.status_code == 422


def test_independent_mistakes_come_in_one_422_with_api_fixes(scoring_client: TestClient, trained_model,
                                                            keys: dict[str, str]) -> None:
    body = trained_model.payload()
    body["stage_history"][0]["stage"] = "Verbal Commit"  # not in the taxonomy
    body["activities"][0]["type"] = "telepathy"  # not an activity type
    body["activities"][-1]["occurred_at"] = "2150-01-01T00:00:00"  # after as_of
    r = _post(scoring_client, keys, body)
    assert r.status_code == 422
    fields = r.json()["error"]["fields"]
    paths = {f["path"] for f in fields}
    n = len(body["activities"]) - 1
    assert {"stage_history[0].stage", "activities[0].type", f"activities[{n}].occurred_at"} <= paths
    stage_fix = next(f["fix"] for f in fields if f["path"] == "stage_history[0].stage")
    assert "--taxonomy" not in stage_fix and "dealscore validate" not in stage_fix
    assert "server's taxonomy" in stage_fix and "proposal" in stage_fix


def test_every_request_body_has_an_openapi_example(scoring_client: TestClient) -> None:
    spec = scoring_client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        for method, op in item.items():
            body = (op.get("requestBody") or {}).get("content", {}).get("application/json")
            if body is None:
                continue
            ref = body["schema"].get("$ref", "")
            schema = schemas.get(ref.rsplit("/", 1)[-1], body["schema"])
            assert schema.get("examples") or body.get("examples") or body.get("example"), (method, path)


def test_the_response_names_the_model_data_mismatch(scoring_client: TestClient, trained_model,
                                                    keys: dict[str, str]) -> None:
    body = trained_model.payload()
    body["account"]["industry"] = "Computer Software"
    body["team"] = "Enterprise East"
    r = _post(scoring_client, keys, body)
    assert r.status_code == 200, r.text
    notices = r.json()["notices"]
    assert len(notices) == 1 and "trained on a different history" in notices[0]
    assert "'Computer Software'" in notices[0] and "'Enterprise East'" in notices[0]
    same = _post(scoring_client, keys, trained_model.payload(trained_model.open_ids[1]))
    assert same.json()["notices"] == []


def test_direction_and_role_aliases_are_accepted(scoring_client: TestClient, trained_model,
                                                 keys: dict[str, str]) -> None:
    body = trained_model.payload()
    body["activities"][0]["direction"] = "out"
    body["activities"][0]["contact_role"] = "Economic Buyer"
    body["activities"][-1]["direction"] = "Incoming"
    r = _post(scoring_client, keys, body)
    assert r.status_code == 200, r.text
    body["activities"][0]["contact_role"] = "Chief Vibes Officer"
    bad = _post(scoring_client, keys, {**body, "deal_id": "other"})
    assert bad.status_code == 422
    field = next(f for f in bad.json()["error"]["fields"] if f["path"] == "activities[0].contact_role")
    assert "Economic Buyer" in field["fix"]
