"""A back-fill (a score older than the deal's latest) keeps the owner and team the deal had at its as-of time.

The issue: an admin back-fills a deal moved since to another team, with the
CRM's current team in the payload; the score was stored under the new team,
so the deal's history showed it in that team before it came there.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from dealscore.scoring.result import ScoreResult
from dealscore_service.auth import Principal, Scope
from dealscore_service.client import deal_payload
from dealscore_service.errors import DealChangedError
from dealscore_service.routers.score import _authorize_again
from dealscore_service.store import DealState, ScoreStore, ScoreToSave

MakeResult = Callable[..., ScoreResult]


@pytest.fixture
def moved_deal(make_client: Callable[..., TestClient], trained_model: Any,
               keys: dict[str, str]) -> tuple[TestClient, Callable[..., dict[str, Any]]]:
    """A deal scored 20 days before the cut in team west, then moved by an admin to team east at the cut.

    Returns the client and ``body(days_before_cut, **changes)``: the deal's payload as the CRM knows it at
    that time, under its current owner and team (east), as a CRM export sends it.
    """
    client = make_client(model_path=trained_model.bundle_dir)
    history = trained_model.history
    cut = history.data_cut
    deals = history.deals
    old = deals[deals["outcome"].isna() & (deals["created_at"] < cut - pd.Timedelta(days=60))]
    deal_id = str(sorted(old["deal_id"])[0])

    def body(days: int, **changes: Any) -> dict[str, Any]:
        out = deal_payload(history, deal_id, cut - pd.Timedelta(days=days))
        return {**out, "team": "east", "owner_id": "e-rep", "owner_name": "Erin East", **changes}

    west = {"team": "west", "owner_id": "w-rep", "owner_name": "Walt West"}
    r = client.post("/v1/score", json=body(20, **west), headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 200, r.text
    r = client.post("/v1/score", json=body(0), headers={"X-API-Key": keys["admin"]})
    assert r.status_code == 200, r.text
    return client, body


def _scored(client: TestClient, payload: dict[str, Any], key: str) -> dict[str, Any]:
    """``POST /v1/score`` that must succeed: the stored result."""
    r = client.post("/v1/score", json=payload, headers={"X-API-Key": key})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _history(client: TestClient, deal_id: str) -> list[tuple[str, str | None, str | None]]:
    store: ScoreStore = client.app.state.services.store  # type: ignore[attr-defined]
    return [(f"{s.as_of:%Y-%m-%d}", s.owner_id, s.team) for s in store.deal_scores(deal_id)]


def test_a_backfill_keeps_the_team_the_deal_had_then(moved_deal, keys: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    client, body = moved_deal
    deal_id = body(0)["deal_id"]
    r = client.post("/v1/score", json=body(10), headers={"X-API-Key": keys["admin"]})
    assert r.status_code == 200, r.text
    out = r.json()
    # stored and answered under west, the team of the score in force 10 days before the cut, and said so
    assert (out["owner_id"], out["team"], out["owner_name"]) == ("w-rep", "west", "Walt West")
    [notice] = [n for n in out["notices"] if n.startswith("Back-fill")]
    assert "team 'west'" in notice and "not the payload's owner 'e-rep' and team 'east'" in notice
    assert "its score in force then" in notice
    teams = [team for _, _, team in _history(client, deal_id)]
    assert teams == ["west", "west", "east"]  # one move, where it happened; no east score before it
    stored = client.app.state.services.store.deal_scores(deal_id)[1].score_result()
    assert (stored.owner_id, stored.team) == ("w-rep", "west") and stored.notices == out["notices"]
    # the deal itself stays in east, moved once
    store = client.app.state.services.store
    assert store.deal_states([deal_id])[deal_id].team == "east"
    assert [e["kind"] for e in store.deal_events(deal_id)] == ["moved"]
    # sent again: the stored back-fill, not a second one
    again = client.post("/v1/score", json=body(10), headers={"X-API-Key": keys["admin"]})
    assert again.headers.get("Idempotent-Replay") == "true" and again.json()["team"] == "west"
    assert len(_history(client, deal_id)) == 3


def test_a_backfill_older_than_every_stored_score_takes_the_earliest(moved_deal, keys: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """The store knows nothing older than the deal's first score: the nearest it knows, flagged as such."""
    client, body = moved_deal
    out = _scored(client, body(30), keys["admin"])
    assert (out["owner_id"], out["team"]) == ("w-rep", "west")
    assert any("its earliest stored score" in n and "knows no older one" in n for n in out["notices"])
    assert [team for _, _, team in _history(client, body(0)["deal_id"])] == ["west", "west", "east"]


def test_a_backfill_under_the_team_of_its_time_says_nothing(moved_deal, keys: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    client, body = moved_deal
    out = _scored(client, body(10, team="west", owner_id="w-rep", owner_name="Walt West"), keys["admin"])
    assert out["team"] == "west" and not any(n.startswith("Back-fill") for n in out["notices"])


def test_the_latest_score_still_moves_the_deal(moved_deal, keys: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """Not a back-fill: as of the deal's latest time or later, the payload says who owns the deal."""
    client, body = moved_deal
    out = _scored(client, body(0, team="north", owner_id="n-rep", owner_name="Nia North"), keys["admin"])
    assert out["team"] == "north" and not any(n.startswith("Back-fill") for n in out["notices"])
    deal_id = body(0)["deal_id"]
    assert client.app.state.services.store.deal_states([deal_id])[deal_id].team == "north"


def test_a_key_of_the_new_team_may_not_backfill_the_old_teams_time(moved_deal, keys: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    client, body = moved_deal
    deal_id = body(0)["deal_id"]
    before = _history(client, deal_id)
    r = client.post("/v1/score", json=body(10), headers={"X-API-Key": keys["east_crm"]})
    assert r.status_code == 403, r.text
    message = r.json()["error"]["message"]
    assert "back-fill" in message and "west" not in message and "w-rep" not in message
    batch = {"deals": [{k: v for k, v in body(10).items() if k != "as_of"}], "as_of": body(10)["as_of"]}
    assert client.post("/v1/score/batch", json=batch, headers={"X-API-Key": keys["east_crm"]}).status_code == 403
    assert _history(client, deal_id) == before


def test_scores_in_force(store: ScoreStore, make_result: MakeResult) -> None:
    """The latest score at or before a time (by as-of time, then when scored), else the deal's earliest."""
    store.add([ScoreToSave(make_result("d1", team="west", as_of="2024-05-01"), "h1", True)])
    store.add([ScoreToSave(make_result("d1", team="east", as_of="2024-05-10"), "h2", True)])
    store.add([ScoreToSave(make_result("d1", team="north", as_of="2024-05-10"), "h3", True)])  # later, same day
    store.add([ScoreToSave(make_result("d2", team="south", as_of="2024-05-20"), "h4", True)])

    def teams(when: datetime) -> dict[str, str | None]:
        return {d: s.team for d, s in store.scores_in_force(["d1", "d2", "d3"], when).items()}

    assert teams(datetime(2024, 5, 5)) == {"d1": "west", "d2": "south"}  # d2: none so old, its earliest
    assert teams(datetime(2024, 5, 1)) == {"d1": "west", "d2": "south"}  # at the time counts
    assert teams(datetime(2024, 5, 10, 12)) == {"d1": "north", "d2": "south"}
    assert teams(datetime(2024, 4, 1)) == {"d1": "west", "d2": "south"}
    assert store.scores_in_force([], datetime(2024, 5, 5)) == {}


def test_a_deal_scored_later_meanwhile_is_a_409_not_a_backfill_under_the_payloads_team() -> None:
    """Judged again in the write: the score was the deal's latest when read, another request has since stored
    a later one, so stored under the payload's team it would be a back-fill under the wrong one."""
    principal = Principal("admin", frozenset({Scope.admin}))
    read = {"d1": DealState("d1", "w-rep", "west", True, as_of=datetime(2024, 5, 1))}
    written = {"d1": DealState("d1", "w-rep", "west", True, as_of=datetime(2024, 5, 20))}

    class Payload:
        deal_id, owner_id, team = "d1", "w-rep", "west"

    deals: Any = [Payload()]
    when = datetime(2024, 5, 10)
    assert _authorize_again(principal, deals, read, False, {}, as_of=when, backfills=[]) == []
    with pytest.raises(DealChangedError) as err:
        _authorize_again(principal, deals, read, False, written, as_of=when, backfills=[])
    assert "later as-of time" in err.value.message and "nothing was written" in err.value.message
    # read as a back-fill, written as one: nothing changed
    assert _authorize_again(principal, deals, written, False, written, as_of=when, backfills=["d1"]) == []


def test_a_key_of_the_new_team_cannot_read_the_old_teams_backfill_by_sending_it_again(
        moved_deal, keys: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """The same payload again is a replay answered with the stored score: one back-filled under west must be the
    same 403 for an east key as scoring it afresh, not west's owner and team in a 200."""
    client, body = moved_deal
    _scored(client, body(10), keys["admin"])  # stored under w-rep / west
    r = client.post("/v1/score", json=body(10), headers={"X-API-Key": keys["east_crm"]})
    assert r.status_code == 403, r.text
    assert "west" not in r.text and "w-rep" not in r.text and "Walt" not in r.text
    batch = {"deals": [{k: v for k, v in body(10).items() if k != "as_of"}], "as_of": body(10)["as_of"]}
    r = client.post("/v1/score/batch", json=batch, headers={"X-API-Key": keys["east_crm"]})
    assert r.status_code == 403 and "west" not in r.text, r.text
    # the admin's replay still answers
    replay = client.post("/v1/score", json=body(10), headers={"X-API-Key": keys["admin"]})
    assert replay.status_code == 200 and replay.headers.get("Idempotent-Replay") == "true"
