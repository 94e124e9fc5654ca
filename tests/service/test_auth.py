"""API keys: hashing, configuration by file and env, scopes and object-level limits on every endpoint."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from dealscore.errors import ConfigError
from dealscore.scoring.result import ScoreResult
from dealscore_service.auth import KeyRing, Principal, Scope, add_key_to_file, generate_key, hash_key
from dealscore_service.main import load_keyring
from dealscore_service.settings import Settings

ENDPOINTS = [
    ("POST", "/v1/score", "score"),
    ("POST", "/v1/score/batch", "score"),
    ("GET", "/v1/deals/at-risk", "read"),
    ("GET", "/v1/deals/d1/scores", "read"),
    ("GET", "/v1/model", "read|score"),
    ("POST", "/v1/model/reload", "admin"),
]


def test_keys_are_stored_hashed(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    key = add_key_to_file(path, name="crm", scopes=["score"], teams=["east"])
    text = path.read_text()
    assert key not in text and hash_key(key) in text
    entry = yaml.safe_load(text)["keys"][0]
    assert entry == {"name": "crm", "hash": hash_key(key), "scopes": ["score"], "teams": ["east"]}
    ring = KeyRing.from_file(path)
    p = ring.authenticate(key)
    assert p.name == "crm" and p.scopes == {Scope.score} and p.teams == {"east"}
    with pytest.raises(ConfigError, match="already has a key named"):
        add_key_to_file(path, name="crm", scopes=["read"])


def test_generated_keys_are_long_and_distinct() -> None:
    keys = {generate_key() for _ in range(50)}
    assert len(keys) == 50 and all(k.startswith("dsk_") and len(k) > 40 for k in keys)


def test_env_keys_and_file_keys_merge(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    file_key = add_key_to_file(path, name="file", scopes=["read"])
    env_key = generate_key()
    env = json.dumps({"keys": [{"name": "env", "hash": hash_key(env_key), "scopes": ["admin"]}]})
    ring = load_keyring(Settings(api_keys_file=path, api_keys=env))
    assert ring.authenticate(file_key).name == "file"
    assert ring.authenticate(env_key).has(Scope.score)  # admin holds every scope
    assert len(ring) == 2


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"keys": [{"name": "x", "hash": "abc", "scopes": ["read"]}]}', "64 hex digits"),
        ('{"keys": [{"name": "x", "hash": "sha256:' + "a" * 64 + '", "scopes": ["write"]}]}', "scopes"),
        ('{"keys": [{"name": "x", "hash": "sha256:' + "a" * 64 + '", "scopes": []}]}', "scopes"),
        ('[{"name": "x", "key": "plain", "scopes": ["read"]}]', "raw key.*" + hash_key("plain")),
        ("not json", "not valid JSON"),
        ('{"keys": {"name": "x"}}', "expected a list"),
    ],
)
def test_bad_key_config_is_a_clear_config_error(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        KeyRing.from_json(raw)


def test_duplicate_keys_are_refused() -> None:
    h = hash_key("dsk_same")
    with pytest.raises(ConfigError, match="same hash"):
        KeyRing.from_json(json.dumps([{"name": "a", "hash": h, "scopes": ["read"]},
                                      {"name": "b", "hash": h, "scopes": ["read"]}]))


def test_principal_visibility() -> None:
    everyone = Principal("all", frozenset({Scope.read}))
    east = Principal("east", frozenset({Scope.read}), teams=frozenset({"east"}))
    rep = Principal("rep", frozenset({Scope.read}), owners=frozenset({"r1"}))
    assert everyone.can_see("anyone", None)
    assert east.can_see("r9", "east") and not east.can_see("r9", "west") and not east.can_see("r9", None)
    assert rep.can_see("r1", "west") and not rep.can_see("r2", "east")


@pytest.mark.parametrize(("method", "path", "_scope"), ENDPOINTS)
def test_no_key_or_unknown_key_is_401(make_client: Callable[..., TestClient], method: str, path: str,
                                      _scope: str) -> None:
    client = make_client()
    for headers in ({}, {"X-API-Key": "dsk_not-a-real-key"}, {"Authorization": "Bearer dsk_nope"}):
        r = client.request(method, path, headers=headers, json={})
        assert r.status_code == 401, (headers, r.text)
        body = r.json()["error"]
        assert body["type"] == "AuthenticationError" and body["fix"]


@pytest.mark.parametrize(("method", "path", "scope"), ENDPOINTS)
def test_wrong_scope_is_403_and_right_scope_passes_auth(
    make_client: Callable[..., TestClient], keys: dict[str, str], method: str, path: str, scope: str,
) -> None:
    client = make_client()
    by_scope = {"score": "crm", "read": "manager", "admin": "admin"}
    allowed = set(scope.split("|")) | {"admin"}
    for s, name in by_scope.items():
        r = client.request(method, path, headers={"X-API-Key": keys[name]}, json={})
        if s in allowed:
            # past authorization: whatever comes next (422 empty body, 404, 503 no model) is not 401/403
            assert r.status_code not in (401, 403), (name, r.text)
        else:
            assert r.status_code == 403, (name, r.text)
            assert r.json()["error"]["type"] == "PermissionDeniedError"
            assert scope.split("|")[0] in r.json()["error"]["message"]


def test_bearer_token_works_like_the_header(make_client: Callable[..., TestClient], keys: dict[str, str]) -> None:
    client = make_client()
    r = client.get("/v1/model", headers={"Authorization": f"Bearer {keys['manager']}"})
    assert r.status_code == 200
    same = client.get("/v1/model", headers={"Authorization": f"Bearer {keys['manager']}", "X-API-Key": keys["manager"]})
    assert same.status_code == 200


def test_two_different_keys_in_one_request_are_refused(make_client: Callable[..., TestClient],
                                                         keys: dict[str, str]) -> None:
    """Both were accepted, X-API-Key winning silently: a caller could not tell whose rights it acted with."""
    client = make_client()
    r = client.get("/v1/model", headers={"Authorization": f"Bearer {keys['admin']}", "X-API-Key": keys["manager"]})
    assert r.status_code == 401 and "two different API keys" in r.json()["error"]["message"]


def test_team_limited_key_cannot_read_another_teams_deal(
    make_client: Callable[..., TestClient], keys: dict[str, str], make_result: Callable[..., ScoreResult],
) -> None:
    from dealscore_service.store import ScoreToSave

    client = make_client()
    store = client.app.state.services.store
    store.save([
        ScoreToSave(make_result("east-deal", team="east", owner="r5"), "h1", True),
        ScoreToSave(make_result("west-deal", team="west", owner="r1"), "h2", True),
    ])
    east = {"X-API-Key": keys["east_manager"]}
    assert client.get("/v1/deals/east-deal/scores", headers=east).status_code == 200
    r = client.get("/v1/deals/west-deal/scores", headers=east)
    assert r.status_code == 404 and "visible to this API key" in r.json()["error"]["message"]
    listed = client.get("/v1/deals/at-risk", headers=east).json()
    assert [i["deal_id"] for i in listed["items"]] == ["east-deal"]
    # even filtering explicitly for the other team shows nothing
    assert client.get("/v1/deals/at-risk", params={"team": "west"}, headers=east).json()["items"] == []
    # an owner-limited key sees its owner's deals in any team
    rep = {"X-API-Key": keys["rep_r1"]}
    assert [i["deal_id"] for i in client.get("/v1/deals/at-risk", headers=rep).json()["items"]] == ["west-deal"]
    assert client.get("/v1/deals/east-deal/scores", headers=rep).status_code == 404
    # an unlimited manager sees both
    all_ = client.get("/v1/deals/at-risk", headers={"X-API-Key": keys["manager"]}).json()
    assert sorted(i["deal_id"] for i in all_["items"]) == ["east-deal", "west-deal"]
