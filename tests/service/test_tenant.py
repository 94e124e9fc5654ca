"""The tenant boundary and the deal lifecycle: stored owners decide who may score, read, move or close a deal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dealscore_service.store import DealFilter, ScoreToSave


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
    # closed after the history's cut (the deal was open then, so created before it)
    r = client.post(f"/v1/deals/{deal_id}/outcome", json={"outcome": "won", "closed_at": "2025-07-02T10:00:00+01:00"},
                    headers=crm)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["outcome"] == "won" and out["closed_at"].startswith("2025-07-02T09:00:00") and not out["is_open"]
    assert 0 <= out["last_p_win"] <= 1
    # the same again changes nothing; the list no longer shows it; scoring it again is refused
    again = client.post(f"/v1/deals/{deal_id}/outcome",
                        json={"outcome": "won", "closed_at": "2025-07-02T09:00:00Z"}, headers=crm)
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


def test_the_deal_page_shows_a_deal_closed_through_the_outcome_route(west_deal, keys: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """The page read "open" from the latest score row, which the outcome route never changes (it closes the
    deal's stored state, as the API reads it): a closed deal looked open on /ui for good."""
    client, body = west_deal
    client.base_url = "https://testserver"  # the session cookie is Secure
    page_url = f"/ui/deals/{body['deal_id']}"
    badge = '<span class="badge">closed</span>'
    assert client.post("/ui/login", data={"api_key": keys["manager"], "next": "/ui"},
                       follow_redirects=False).status_code == 303
    before = client.get(page_url)
    assert before.status_code == 200 and badge not in before.text and "Deal closed" not in before.text
    r = client.post(f"/v1/deals/{body['deal_id']}/outcome", headers={"X-API-Key": keys["crm"]},
                    json={"outcome": "lost", "closed_at": "2025-07-01T00:00:00Z"})
    assert r.status_code == 200, r.text
    after = client.get(page_url)
    assert after.status_code == 200 and badge in after.text and "Deal closed" in after.text
    assert "lost on 01 jul 2025" in after.text.lower()


@pytest.mark.slow
def test_a_deal_created_by_another_team_while_it_is_scored_is_a_409(  # type: ignore[no-untyped-def]
    make_client: Callable[..., TestClient], trained_model: Any, keys: dict[str, str], store_url: str,
    make_result, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tenant check read the stored deal before scoring, the write came after: two teams' keys sending
    the same new deal id at once both got 200 and the deal ended in whichever team wrote last. The check is
    now made again inside the write, on the state it changes (SQLite and PostgreSQL)."""
    client = make_client(model_path=trained_model.bundle_dir, database_url=store_url)
    store = client.app.state.services.store
    version = client.app.state.services.models.require().version
    lookup = store.lookup

    def overtaken_by(team: str, owner: str):  # type: ignore[no-untyped-def]
        def read_then_lose_the_race(keys_, model_version, as_of):  # type: ignore[no-untyped-def]
            out = lookup(keys_, model_version, as_of)
            monkeypatch.setattr(store, "lookup", lookup)
            # another request writes the same deal between this one's read and its write
            other = make_result(keys_[0][0], team=team, owner=owner, version=version, as_of="2025-06-01")
            store.add([ScoreToSave(result=other, payload_hash="other-request", is_open=True)])
            return out
        monkeypatch.setattr(store, "lookup", read_then_lose_the_race)

    overtaken_by("west", "w1")
    east = {**trained_model.payload(), "deal_id": "RACE-1", "team": "east", "owner_id": "e1"}
    r = client.post("/v1/score", json=east, headers={"X-API-Key": keys["east_crm"]})
    assert r.status_code == 409, r.text
    assert r.json()["error"]["type"] == "DealChangedError" and "nothing was written" in r.json()["error"]["message"]
    state = store.deal_states(["RACE-1"])["RACE-1"]
    assert (state.team, state.owner_id) == ("west", "w1") and store.count() == 1
    assert store.deal_events("RACE-1") == []
    # a key allowed for both teams still scores it: as the move it now is, recorded against the stored team
    overtaken_by("west", "w1")
    r = client.post("/v1/score", json={**east, "deal_id": "RACE-2"}, headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 200, r.text
    [move] = store.deal_events("RACE-2")
    assert move["kind"] == "moved" and move["from"] == {"owner_id": "w1", "team": "west"}
    assert move["to"] == {"owner_id": "e1", "team": "east"}
    assert store.deal_states(["RACE-2"])["RACE-2"].team == "east"
