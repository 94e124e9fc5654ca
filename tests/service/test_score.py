"""POST /v1/score and /v1/score/batch end to end: a real bundle, a real store, real keys."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from dealscore.scoring import Scorer
from dealscore.scoring.result import ScoreResult
from dealscore_service.client import deal_payload
from dealscore_service.schemas import api_result

pytestmark = pytest.mark.slow


def test_score_one_deal_returns_the_full_result_and_stores_it(
    scoring_client: TestClient, trained_model, keys: dict[str, str],
) -> None:
    body = trained_model.payload()
    r = scoring_client.post("/v1/score", json=body, headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 200, r.text
    result = ScoreResult.model_validate(r.json())
    assert result.deal_id == body["deal_id"] and result.model_version == "dealscore/7"
    assert result.owner_id == body["owner_id"] and result.team == body.get("team")
    assert 0 <= result.p_win <= 1 and result.inferred_stage in trained_model.bundle.taxonomy.names
    assert result.reasons_up or result.reasons_down
    assert result.actions, "the full result carries next-best actions"
    assert r.headers.get("x-request-id")
    store = scoring_client.app.state.services.store
    assert store.count() == 1
    [stored] = store.deal_scores(body["deal_id"])
    assert api_result(stored.score_result()) == result


def test_the_scored_touchpoints_and_stage_changes_are_stored_with_the_score(
    scoring_client: TestClient, trained_model, keys: dict[str, str],
) -> None:
    """What the deal page's timeline reads: the request's touchpoints and stage changes, as scored, in one row."""
    h = {"X-API-Key": keys["crm"]}
    body = trained_model.payload(trained_model.open_ids[3])
    assert body["activities"] and body["stage_history"]
    body["activities"][0]["type"] = body["activities"][0]["type"].upper()  # a CRM spelling
    assert scoring_client.post("/v1/score", json=body, headers=h).status_code == 200
    batch = trained_model.payloads(3)
    assert scoring_client.post("/v1/score/batch", json={"deals": batch, "as_of": trained_model.as_of},
                               headers=h).status_code == 200
    store = scoring_client.app.state.services.store
    for sent in (body, *batch[1:]):
        [stored] = store.deal_scores(sent["deal_id"], with_timeline=True)
        assert stored.touchpoints is not None and stored.stage_changes is not None
        assert len(stored.touchpoints) == len(sent["activities"])
        assert [c["stage"] for c in stored.stage_changes] == [
            c["stage"] for c in sorted(sent["stage_history"], key=lambda c: c["changed_at"])]
        times = [t["occurred_at"] for t in stored.touchpoints]
        assert times == sorted(times)
        assert {t["type"] for t in stored.touchpoints} <= set(trained_model.bundle.taxonomy.activity_types)
        first = min(sent["activities"], key=lambda a: a["occurred_at"])
        assert pd.Timestamp(stored.touchpoints[0]["occurred_at"]) == pd.Timestamp(first["occurred_at"]).tz_localize(
            None).floor("s")


def test_api_score_equals_the_library_score(scoring_client: TestClient, trained_model, keys: dict[str, str]) -> None:
    """One code path: the HTTP payload gives exactly what Scorer gives on the validated history."""
    deal_id = trained_model.open_ids[1]
    r = scoring_client.post("/v1/score", json=trained_model.payload(deal_id), headers={"X-API-Key": keys["crm"]})
    direct = Scorer(trained_model.bundle).score(trained_model.history.for_deals([deal_id]), deal_id,
                                                as_of=trained_model.history.data_cut)
    api = ScoreResult.model_validate(r.json())
    assert api.p_win == pytest.approx(direct.p_win, abs=1e-12)
    assert r.json()["p_win_display"] == direct.p_win_display not in ("0%", "100%")
    assert api.inferred_stage == direct.inferred_stage and api.grade == direct.grade
    assert [w.code for w in api.warnings] == [w.code for w in direct.warnings]
    assert [a.code for a in api.actions] == [a.code for a in direct.actions]


def test_resending_a_payload_replays_the_stored_score(
    scoring_client: TestClient, trained_model, keys: dict[str, str],
) -> None:
    body = trained_model.payload()
    h = {"X-API-Key": keys["crm"]}
    first = scoring_client.post("/v1/score", json=body, headers=h)
    again = scoring_client.post("/v1/score", json=body, headers=h)
    assert again.status_code == 200 and again.headers.get("idempotent-replay") == "true"
    assert "idempotent-replay" not in first.headers
    assert again.json() == first.json()
    # the same deal inside a batch is the same content: replayed too
    batch = scoring_client.post("/v1/score/batch", json={"deals": [trained_model.payloads(1)[0]],
                                                         "as_of": trained_model.as_of}, headers=h)
    assert batch.json()["replayed"] == 1 and batch.json()["scored"] == 0
    assert scoring_client.app.state.services.store.count() == 1
    # a changed payload is a new score
    changed = {**body, "amount": (body.get("amount") or 0) + 1000}
    scoring_client.post("/v1/score", json=changed, headers=h)
    assert scoring_client.app.state.services.store.count() == 2
    # the first payload sent again after the change is the CRM changing the deal back: a new score, in force
    back = scoring_client.post("/v1/score", json=body, headers=h)
    assert back.status_code == 200 and "idempotent-replay" not in back.headers
    assert scoring_client.app.state.services.store.count() == 3
    latest = scoring_client.get(f"/v1/deals/{body['deal_id']}/scores", headers={"X-API-Key": keys["manager"]})
    assert latest.json()["latest"]["amount"] == back.json()["amount"] == first.json()["amount"]
    # and sent once more, it is a replay of that score
    once_more = scoring_client.post("/v1/score", json=body, headers=h)
    assert once_more.headers.get("idempotent-replay") == "true" and scoring_client.app.state.services.store.count() == 3


def test_batch_scores_in_request_order_and_matches_single_scoring(
    make_client: Callable[..., TestClient], trained_model, keys: dict[str, str],
) -> None:
    h = {"X-API-Key": keys["crm"]}
    bodies = trained_model.payloads(6)
    batch_client = make_client(model_path=trained_model.bundle_dir, data_dir=trained_model.bundle_dir.parent / "b1")
    r = batch_client.post("/v1/score/batch", json={"deals": bodies[::-1], "as_of": trained_model.as_of}, headers=h)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["scored"] == 6 and out["replayed"] == 0 and out["model_version"] == "dealscore/7"
    assert [x["deal_id"] for x in out["results"]] == [b["deal_id"] for b in bodies[::-1]]
    assert batch_client.app.state.services.store.count() == 6
    single_client = make_client(model_path=trained_model.bundle_dir,
                                data_dir=trained_model.bundle_dir.parent / "s1")
    for body, batched in zip(bodies[::-1][:3], out["results"][:3], strict=True):
        one = single_client.post("/v1/score", json={**body, "as_of": trained_model.as_of}, headers=h).json()
        assert one["p_win"] == pytest.approx(batched["p_win"], abs=1e-12)
        assert [a["code"] for a in one["actions"]] == [a["code"] for a in batched["actions"]]


def test_previous_score_is_attached(
    scoring_client: TestClient, trained_model, keys: dict[str, str],
) -> None:
    h = {"X-API-Key": keys["crm"]}
    body = trained_model.payload()
    cut = trained_model.history.data_cut
    created = pd.Timestamp(body["created_at"])
    early = max(created + pd.Timedelta(days=1), cut - pd.Timedelta(days=14))
    early_body = deal_payload(trained_model.history, body["deal_id"], as_of=early)
    first = scoring_client.post("/v1/score", json=early_body, headers=h)
    assert first.status_code == 200, first.text
    second = scoring_client.post("/v1/score", json=body, headers=h).json()
    assert second["previous_p_win"] == pytest.approx(first.json()["p_win"])
    scores = scoring_client.get(f"/v1/deals/{body['deal_id']}/scores", headers={"X-API-Key": keys["manager"]}).json()
    assert [s["p_win"] for s in scores["scores"]] == pytest.approx([first.json()["p_win"], second["p_win"]])


def test_team_limited_key_scores_only_its_teams_deals(
    scoring_client: TestClient, trained_model, keys: dict[str, str],
) -> None:
    h = {"X-API-Key": keys["east_crm"]}
    body = trained_model.payload()
    r = scoring_client.post("/v1/score", json={**body, "team": "west"}, headers=h)
    assert r.status_code == 403 and "limited" in r.json()["error"]["message"]
    assert scoring_client.post("/v1/score", json={**body, "team": "east"}, headers=h).status_code == 200
    batch = {"deals": [{**b, "team": "east"} for b in trained_model.payloads(2)], "as_of": trained_model.as_of}
    batch["deals"][1]["team"] = "west"
    r = scoring_client.post("/v1/score/batch", json=batch, headers=h)
    assert r.status_code == 403 and "deals[1]" in r.json()["error"]["message"]
    assert scoring_client.app.state.services.store.count() == 1  # the refused batch wrote nothing


def test_contract_errors_come_back_as_422_with_paths(
    scoring_client: TestClient, trained_model, keys: dict[str, str],
) -> None:
    body = trained_model.payload()
    body["stage_history"][0]["stage"] = "closed-ish"
    r = scoring_client.post("/v1/score", json=body, headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["type"] == "InvalidPayloadError"
    assert [f["path"] for f in err["fields"]] == ["stage_history[0].stage"]
    assert "taxonomy" in err["fields"][0]["fix"]


def test_without_a_model_scoring_is_503_with_a_clear_message(
    make_client: Callable[..., TestClient], trained_model, keys: dict[str, str],
) -> None:
    client = make_client()  # no model path, no registry, no local copy
    r = client.post("/v1/score", json=trained_model.payload(), headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 503
    assert r.headers["retry-after"]
    err = r.json()["error"]
    assert err["type"] == "ModelNotReadyError" and "no model loaded" in err["message"]
    assert "dealscore train" in err["fix"] and "DEALSCORE_MODEL_PATH" in err["fix"]
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200
    # bad input is still reported as such, not hidden behind the 503
    bad = trained_model.payload()
    bad["activities"][0]["type"] = "telepathy"
    assert client.post("/v1/score", json=bad, headers={"X-API-Key": keys["crm"]}).status_code == 422
