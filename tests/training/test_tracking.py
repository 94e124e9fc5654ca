"""tracking.py on its own: the data folder, the champion's local copy keyed by registry, the one fallback."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import mlflow
import pytest

from dealscore import tracking
from dealscore.errors import ModelNotReadyError, NoChampionError
from dealscore.paths import DATA_DIR_ENV
from tests.registry_down import registry_down

pytestmark = pytest.mark.slow


def _marked(trained, registry: str):
    """The training result with a bundle that says which registry it was logged to."""
    bundle = copy.copy(trained.bundle)
    bundle.history_stats = {**trained.bundle.history_stats, "registry": registry}
    return dataclasses.replace(trained, bundle=bundle)


def _train_into(trained, registry: str) -> None:
    run = tracking.log_training_run(_marked(trained, registry))
    tracking.promote(tracking.register_bundle(None, run))


def test_two_registries_from_one_working_directory_never_share_a_local_copy(
    trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Train in store A, then in store B from the same folder, then score: B's model (issue 17 item 8)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    store_a, store_b = f"sqlite:///{tmp_path / 'a' / 'mlflow.db'}", f"sqlite:///{tmp_path / 'b' / 'mlflow.db'}"
    for uri in (store_a, store_b):
        Path(uri[len("sqlite:///"):]).parent.mkdir()

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_a)
    _train_into(trained, "A")
    got = tracking.champion()
    assert (got.source, got.bundle.version, got.bundle.history_stats["registry"]) == ("registry", "dealscore/1", "A")

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_b)
    _train_into(trained, "B")  # also "dealscore/1", in another registry
    got = tracking.champion()
    assert (got.source, got.bundle.version, got.bundle.history_stats["registry"]) == ("registry", "dealscore/1", "B")
    assert tracking.load_champion().history_stats["registry"] == "B"  # what `dealscore score` loads

    # both copies live in the one data folder, one per registry
    assert tracking.local_copy_dir(uri=store_a) != tracking.local_copy_dir(uri=store_b)
    assert tracking.local_copy_dir().resolve().is_relative_to(tmp_path.resolve() / ".dealscore" / "model_cache")

    with registry_down(store_b):  # B is down: B's copy serves, and says so
        got = tracking.champion()
        assert (got.source, got.bundle.history_stats["registry"]) == ("local_copy", "B")
        assert got.note and "unavailable" in got.note and "dealscore/1" in got.note
        with pytest.warns(UserWarning, match="serving the local copy of dealscore/1"):
            tracking.load_champion()

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_a)
    assert tracking.champion().bundle.history_stats["registry"] == "A"

    # a third registry, unreachable and never used from here: no other registry's copy stands in
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    with pytest.raises(ModelNotReadyError, match="no local copy"):
        tracking.champion()


def _own_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, mlflow.MlflowClient]:
    """A registry of the test's own, used from its own working directory: its URI and a client of it."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri, mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_a_version_recreated_under_the_same_number_is_not_served_from_the_copy(
    trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _uri, client = _own_registry(tmp_path, monkeypatch)
    _train_into(trained, "old")
    assert tracking.champion().bundle.history_stats["registry"] == "old"
    # the registered model is deleted and trained again: its new version 1 is another model (another run)
    client.delete_registered_model(tracking.DEFAULT_NAME)
    _train_into(trained, "new")
    assert tracking.get_champion_version() == "1"
    assert tracking.champion().bundle.history_stats["registry"] == "new"


def test_a_champion_withdrawn_in_the_registry_is_not_served_from_the_copy(
    trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The registry answering "no champion" is an answer, not an outage the local copy stands in for."""
    uri, client = _own_registry(tmp_path, monkeypatch)
    _train_into(trained, "withdrawn")
    assert tracking.champion().source == "registry"  # its local copy is kept
    client.delete_registered_model_alias(tracking.DEFAULT_NAME, "champion")
    with pytest.raises(NoChampionError, match="no champion version") as info:
        tracking.champion()
    assert "dealscore promote" in info.value.detail["fix"]
    with registry_down(uri):  # while the registry cannot answer, the copy still serves
        assert tracking.champion().source == "local_copy"


def test_registry_disabled_serves_this_registrys_copy_only(
    trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(ModelNotReadyError, match=r"disabled.*no local copy"):
        tracking.champion(use_registry=False)
    _train_into(trained, "X")
    tracking.champion()
    got = tracking.champion(use_registry=False)
    assert got.source == "local_copy" and got.bundle.history_stats["registry"] == "X"


def test_the_embedded_store_lives_in_the_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    assert tracking.tracking_uri() == f"sqlite:///{(tmp_path / 'data' / 'mlflow.db').resolve()}"
    assert tracking.default_cache_dir() == tmp_path / "data" / "model_cache"
    assert tracking.artifact_location(tracking.tracking_uri()) == (tmp_path / "data" / "mlartifacts").resolve().as_uri()
