"""Model loading against a real MLflow registry: champion, local copy when the registry is down, reloads.

The registry is an MLflow SQLite store in a temporary folder, filled by the
library's own tracking functions. "Unreachable" is a tracking URI pointing at a
port nothing listens on, which is what a stopped tracking server looks like.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dealscore.errors import ModelNotReadyError
from dealscore.tracking import local_copy_dir
from dealscore_service.auth import Principal, Scope
from dealscore_service.model_info import model_info
from dealscore_service.model_loader import ModelLoader
from dealscore_service.settings import Settings
from tests.registry_down import registry_down

pytestmark = pytest.mark.slow

UNREACHABLE = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def registry(trained_model, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A registry holding two versions of the small bundle, version 1 as champion."""
    from dealscore import tracking

    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        run = tracking.log_training_run(trained_model.training)
        v1 = tracking.register_bundle(None, run)
        tracking.register_bundle(None, run)
        tracking.promote(v1)
        yield uri
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture
def tracking_uri(registry: str, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Point the registry client somewhere for the rest of the test."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry)
    return lambda uri: monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)


def test_champion_from_registry_then_local_copy_when_it_is_down(
    make_client: Callable[..., TestClient], tracking_uri: Callable[[str], None], registry: str,
    trained_model, keys: dict[str, str], tmp_path: Path,
) -> None:
    cache = tmp_path / "cache"
    up = make_client(use_registry=True, model_cache_dir=cache)
    info = up.get("/v1/model", headers={"X-API-Key": keys["manager"]}).json()
    assert info["loaded"] and info["source"] == "registry" and info["version"] == "dealscore/1"
    assert info["metrics"]["win"]["roc_auc"] > 0.5 and info["training_window"]
    habits = info["recording_habits"]  # learned with the real-stage labels, for coaching
    assert habits["reps"] and {"rep_id", "lag_days", "ahead_share", "skipped_share"} <= set(habits["reps"][0])
    assert "records stage changes" in habits["summary"][1] and habits["company"]["lag_days"] >= 0
    # coaching data about people: a key sees the reps whose deals it may see, a CRM's scoring key none
    rep = habits["reps"][0]["rep_id"]
    services = up.app.state.services
    own = model_info(services, Principal("rep", frozenset({Scope.read}), owners=frozenset({rep})))
    assert [r.rep_id for r in own.recording_habits.reps] == [rep] and rep in own.recording_habits.summary[1]
    crm = up.get("/v1/model", headers={"X-API-Key": keys["crm"]}).json()["recording_habits"]
    assert crm["reps"] == [] and len(crm["summary"]) == 1 and crm["company"] == habits["company"]
    team = up.get("/v1/model", headers={"X-API-Key": keys["east_manager"]}).json()["recording_habits"]
    assert team["reps"] == []  # no deal of team east is stored, so none of its reps is known to be in it
    values = info["state_values"]  # what the next-best actions are priced with
    assert [r["stage"] for r in values["stages"]] == list(trained_model.bundle.taxonomy.names)
    # snapshots count for each episode by its probability: the totals are whole up to rounding per stage and chase
    total = sum(r["snapshots"] for r in values["stages"])
    assert total > 0 and abs(total - sum(c["snapshots"] for c in values["chase"])) <= len(values["stages"])
    assert all(0 < p < 1 for r in values["stages"] for p in r["win_rates"].values())
    assert all(list(r["win_rates_by_episode"]) == ["active", "slow", "stalled", "quiet", "unreplied"]
               and all(0 < p < 1 for p in r["win_rates_by_episode"].values()) for r in values["stages"])
    assert values["reading"] and values["reading"][0].startswith("Silence matters most in ")
    episodes = info["episodes"]  # the paces the stalled / gone-quiet / ghosting warnings are judged by
    assert [r["state"] for r in episodes["states"]] == ["active", "slow", "stalled", "quiet"]
    pace = {r["state"]: r for r in episodes["states"]}
    assert pace["quiet"]["customer_touches_per_week"] < pace["stalled"]["customer_touches_per_week"]
    assert pace["stalled"]["rep_touches_per_week"] < pace["active"]["rep_touches_per_week"]
    assert episodes["deals"] >= 50 and episodes["fires_at"] == 0.7 and len(episodes["reading"]) == 4
    assert (local_copy_dir(local_cache_dir=cache, uri=registry) / "bundle" / "bundle.json").is_file(), "a copy is kept"

    with registry_down(registry):
        down = make_client(use_registry=True, model_cache_dir=cache, data_dir=tmp_path / "other")
        info = down.get("/v1/model", headers={"X-API-Key": keys["manager"]}).json()
        assert info["loaded"] and info["source"] == "local_copy" and info["version"] == "dealscore/1"
        assert "local copy" in info["message"] and "unavailable" in info["message"]
        assert down.get("/readyz").status_code == 200
        r = down.post("/v1/score", json=trained_model.payload(), headers={"X-API-Key": keys["crm"]})
        assert r.status_code == 200 and r.json()["model_version"] == "dealscore/1"

    tracking_uri(UNREACHABLE)  # another registry: the copy of this one never stands in for it
    other = make_client(use_registry=True, model_cache_dir=cache, data_dir=tmp_path / "other")
    assert other.get("/readyz").status_code == 503


def test_neither_registry_nor_copy_stays_up_and_recovers_by_itself(
    make_client: Callable[..., TestClient], tracking_uri: Callable[[str], None], registry: str,
    trained_model, keys: dict[str, str], tmp_path: Path,
) -> None:
    tracking_uri(UNREACHABLE)
    client = make_client(use_registry=True, model_cache_dir=tmp_path / "empty", model_retry_seconds=0.3)
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "no local copy" in ready.json()["problems"][0]
    r = client.post("/v1/score", json=trained_model.payload(), headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 503 and r.json()["error"]["type"] == "ModelNotReadyError"
    info = client.get("/v1/model", headers={"X-API-Key": keys["manager"]}).json()
    assert info["loaded"] is False and "registry" in info["message"]

    tracking_uri(registry)  # the registry comes back: the retry loop picks the champion up
    deadline = time.monotonic() + 60
    while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert client.get("/readyz").status_code == 200
    assert client.post("/v1/score", json=trained_model.payload(), headers={"X-API-Key": keys["crm"]}).status_code == 200


def test_reload_swaps_to_the_new_champion(
    make_client: Callable[..., TestClient], tracking_uri: Callable[[str], None], keys: dict[str, str],
    trained_model, tmp_path: Path,
) -> None:
    from dealscore import tracking

    client = make_client(use_registry=True, model_cache_dir=tmp_path / "cache")
    admin = {"X-API-Key": keys["admin"]}
    try:
        tracking.promote("2")
        r = client.post("/v1/model/reload", headers=admin)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body == {**body, "previous_version": "dealscore/1", "changed": True}
        assert body["model"]["version"] == "dealscore/2"
        score = client.post("/v1/score", json=trained_model.payload(), headers={"X-API-Key": keys["crm"]})
        assert score.json()["model_version"] == "dealscore/2"
        assert 'dealscore_model_info{source="registry",version="dealscore/2"} 1.0' in client.get("/metrics").text
    finally:
        tracking.promote("1")


def test_a_failed_reload_keeps_serving_the_current_model(
    make_client: Callable[..., TestClient], keys: dict[str, str], trained_model, tmp_path: Path,
) -> None:
    folder = tmp_path / "bundle"
    shutil.copytree(trained_model.bundle_dir, folder)
    client = make_client(model_path=folder)
    shutil.rmtree(folder)  # the bundle disappears under the running service
    r = client.post("/v1/model/reload", headers={"X-API-Key": keys["admin"]})
    assert r.status_code == 503
    assert "still serving model version dealscore/7" in r.json()["error"]["message"]
    score = client.post("/v1/score", json=trained_model.payload(), headers={"X-API-Key": keys["crm"]})
    assert score.status_code == 200 and score.json()["model_version"] == "dealscore/7"


def test_loader_reports_a_missing_model_path(tmp_path: Path) -> None:
    loader = ModelLoader(Settings(data_dir=tmp_path, model_path=tmp_path / "nothing-here"))
    assert loader.load() is None
    with pytest.raises(ModelNotReadyError, match="DEALSCORE_MODEL_PATH"):
        loader.require()


def test_an_unreadable_bundle_leaves_the_service_up_and_not_ready(
    make_client: Callable[..., TestClient], trained_model, tmp_path: Path,
) -> None:
    folder = tmp_path / "bundle"
    shutil.copytree(trained_model.bundle_dir, folder)
    (folder / "win_model.joblib").write_bytes(b"not a pickle")
    client = make_client(model_path=folder)
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert "cannot be loaded" in ready.json()["problems"][0] and "retrain" not in ready.json()["problems"][0]
