"""The tenant boundary and the deal lifecycle: stored owners decide who may score, read, move or close a deal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dealscore_service.store import DealFilter


@pytest.fixture
def west_deal(make_client: Callable[..., TestClient], trained_model: Any, keys: dict[str, str]):  # type: ignore[no-untyped-def]
    """An app holding one deal of team "west", scored by the unlimited CRM key; its payload."""
    client = make_client(model_path=trained_model.bundle_dir)
    body = trained_model.payload(team="west", owner_id="w-rep")
    r = client.post("/v1/score", json=body, headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 200, r.text
    return client, body


def _state(client: TestClient) -> tuple[Any, ...]:
    store = client.app.state.services.store  # type: ignore[attr-defined]
    latest = store.latest_open_scores(DealFilter())
    return store.count(), [(s.deal_id, s.owner_id, s.team, s.p_win) for s in latest], store.deal_states(
        [s.deal_id for s in latest])


def test_team_limited_key_cannot_take_over_another_teams_deal(west_deal, keys: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """The issue's reproduction: the deal's own content, relabelled with the limited key's team."""
    client, body = west_deal
    before = _state(client)
    takeover = {**body, "team": "east"}
    r = client.post("/v1/score", json=takeover, headers={"X-API-Key": keys["east_crm"]})
    assert r.status_code == 403, r.text
    assert "previous_p_win" not in r.text and "west" not in r.json()["error"]["message"]
    # the same through a batch, and with a changed as_of (so it is not a replay)
    batch = {"deals": [{k: v for k, v in takeover.items() if k != "as_of"}], "as_of": body["as_of"]}
    assert client.post("/v1/score/batch", json=batch, headers={"X-API-Key": keys["east_crm"]}).status_code == 403
    assert _state(client) == before  # nothing changed
    # the east read key still cannot read it; the deal stays on its real team's list
    east = {"X-API-Key": keys["east_manager"]}
    assert client.get(f"/v1/deals/{body['deal_id']}/scores", headers=east).status_code == 404
    west_list = client.get("/v1/deals/at-risk", params={"team": "west", "limit": 500},
                           headers={"X-API-Key": keys["manager"]}).json()
    east_list = client.get("/v1/deals/at-risk", params={"limit": 500}, headers=east).json()
    assert body["deal_id"] not in [i["deal_id"] for i in east_list["items"]]
    assert west_list["open_deals"] == 1


@pytest.mark.parametrize("pad", [" ", "\u00a0", "\t", "\u2003"])
def test_an_id_padded_with_whitespace_is_the_stored_deal(west_deal, keys: dict[str, str], pad: str) -> None:  # type: ignore[no-untyped-def]
    """The history trims ids, so the access check must judge the trimmed one: a padded id is no new deal."""
    client, body = west_deal
    before = _state(client)
    padded = {**body, "deal_id": body["deal_id"] + pad, "team": "east", "amount": 12_345.0}
    r = client.post("/v1/score", json=padded, headers={"X-API-Key": keys["east_crm"]})
    assert r.status_code == 403, r.text
    assert _state(client) == before
    # an allowed key re-scores the stored deal under its trimmed id (no second deal)
    r = client.post("/v1/score", json={**padded, "team": "west"}, headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 200, r.text
    assert r.json()["deal_id"] == body["deal_id"]
    assert [s[0] for s in _state(client)[1]] == [body["deal_id"]]


def test_moving_a_deal_needs_a_key_for_both_teams_and_is_recorded(west_deal, keys: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    client, body = west_deal
    store = client.app.state.services.store
    moved = {**body, "team": "east", "owner_id": "e-rep"}
    r = client.post("/v1/score", json=moved, headers={"X-API-Key": keys["admin"]})
    assert r.status_code == 200, r.text
    assert store.deal_states([body["deal_id"]])[body["deal_id"]].team == "east"
    [event] = store.deal_events(body["deal_id"])
    assert event["kind"] == "moved" and event["key_name"] == "admin"
    assert event["from"] == {"owner_id": "w-rep", "team": "west"} and event["to"] == {"owner_id": "e-rep",
                                                                                       "team": "east"}
    # now the east keys own it, and may score and read it
    east = {"X-API-Key": keys["east_manager"]}
    assert client.get(f"/v1/deals/{body['deal_id']}/scores", headers=east).status_code == 200
    assert client.post("/v1/score", json=moved, headers={"X-API-Key": keys["east_crm"]}).status_code == 200
    # and the east key may not hand it back to west
    back = client.post("/v1/score", json=body, headers={"X-API-Key": keys["east_crm"]})
    assert back.status_code == 403 and len(store.deal_events(body["deal_id"])) == 1


def test_a_closed_deal_leaves_the_list_and_is_not_scored_again(west_deal, keys: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    client, body = west_deal
    deal_id = body["deal_id"]
    crm, manager = {"X-API-Key": keys["crm"]}, {"X-API-Key": keys["manager"]}
    listed = client.get("/v1/deals/at-risk", params={"limit": 500}, headers=manager).json()
    assert listed["open_deals"] == 1
    # another team's key may not close it, nor learn that it exists
    r = client.post(f"/v1/deals/{deal_id}/outcome", json={"outcome": "won", "closed_at": "2025-01-02T10:00:00Z"},
                    headers={"X-API-Key": keys["east_crm"]})
    assert r.status_code == 404
    assert client.post("/v1/deals/nope/outcome", json={"outcome": "won", "closed_at": "2025-01-02"},
                       headers=crm).status_code == 404
    assert client.post(f"/v1/deals/{deal_id}/outcome", json={"outcome": "maybe", "closed_at": "2025-01-02"},
                       headers=crm).status_code == 422
    assert client.post(f"/v1/deals/{deal_id}/outcome", json={"outcome": "won", "closed_at": "2025-01-02"},
                       headers=manager).status_code == 403  # a read key does not write
    r = client.post(f"/v1/deals/{deal_id}/outcome", json={"outcome": "won", "closed_at": "2025-01-02T10:00:00+01:00"},
                    headers=crm)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["outcome"] == "won" and out["closed_at"].startswith("2025-01-02T09:00:00") and not out["is_open"]
    assert 0 <= out["last_p_win"] <= 1
    # the same again changes nothing; the list no longer shows it; scoring it again is refused
    again = client.post(f"/v1/deals/{deal_id}/outcome",
                        json={"outcome": "won", "closed_at": "2025-01-02T09:00:00Z"}, headers=crm)
    assert again.json()["recorded_at"] == out["recorded_at"]
    listed = client.get("/v1/deals/at-risk", params={"limit": 500}, headers=manager).json()
    assert listed["open_deals"] == 0 and listed["items"] == []
    r = client.post("/v1/score", json={**body, "as_of": None}, headers=crm)
    assert r.status_code == 409 and "closed" in r.json()["error"]["message"]
    # the outcome is kept (monitoring, retraining), with who said so
    events = client.app.state.services.store.deal_events(deal_id)
    assert [e["kind"] for e in events] == ["outcome"] and events[0]["key_name"] == "crm"
    assert events[0]["outcome"] == "won" and events[0]["last_p_win"] == out["last_p_win"]
    # the history stays readable
    assert client.get(f"/v1/deals/{deal_id}/scores", headers=manager).status_code == 200


# --------------------------------------------------------------------------- issue 17, defects 2 and 7


@pytest.mark.parametrize("created_at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"])
def test_timestamps_leaving_the_calendar_after_their_offset_are_a_422(
    scoring_client: TestClient, trained_model: Any, keys: dict[str, str], created_at: str,
) -> None:
    r = scoring_client.post("/v1/score", json=trained_model.payload(created_at=created_at),
                            headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["fields"][0]["path"] == "created_at"


def test_request_shape_errors_say_what_is_wrong(scoring_client: TestClient, trained_model: Any,
                                                keys: dict[str, str]) -> None:
    h = {"X-API-Key": keys["manager"]}
    r = scoring_client.get("/v1/deals/at-risk", params=[("team", "a"), ("team", "b")], headers=h)
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["path"] == "query.team"
    crm = {"X-API-Key": keys["crm"]}
    r = scoring_client.post("/v1/score", content=b'{"deal_id": "x", "amount": 1', headers={
        **crm, "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["path"] == "body"
    r = scoring_client.post("/v1/score", content=b'{"deal_id": "x"}', headers={**crm, "Content-Type": "text/plain"})
    assert r.status_code == 422 and "Content-Type" in r.json()["error"]["message"]
    body = trained_model.payload()
    body["account"] = {**body["account"], "industry": ""}
    assert scoring_client.post("/v1/score", json=body, headers=crm).status_code == 422
    schema = scoring_client.get("/openapi.json").json()["components"]["schemas"]["AccountPayload"]
    assert schema["properties"]["industry"]["minLength"] == 1
