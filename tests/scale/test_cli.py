"""`dealscore generate --partitions`, `features --scheduler` and `score --scheduler` end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from dealscore.cli import app
from dealscore.data.history import META_FILE, write_history
from dealscore.errors import DataValidationError
from dealscore.scale.layout import open_partitioned, read_result

runner = CliRunner()


def test_generate_partitioned_is_seeded_and_partitioned_by_deal(tmp_path: Path) -> None:
    for name in ("a", "b"):
        res = runner.invoke(app, ["generate", "--out", str(tmp_path / name), "--deals", "1000", "--partitions", "2",
                                  "--seed", "3"])
        assert res.exit_code == 0, res.output
    source = open_partitioned(str(tmp_path / "a"))
    assert source.keys == ("part-00000", "part-00001")
    for table in ("accounts", "deals", "stage_history", "activities"):
        for key in source.keys:
            a = pd.read_parquet(tmp_path / "a" / table / f"{key}.parquet")
            assert a.equals(pd.read_parquet(tmp_path / "b" / table / f"{key}.parquet")), table
    frames = [source.read_frames(k) for k in source.keys]
    deal_ids = [set(f["deals"]["deal_id"]) for f in frames]
    assert not deal_ids[0] & deal_ids[1]
    assert sum(map(len, deal_ids)) == 1000
    for f, ids in zip(frames, deal_ids, strict=True):  # every event row sits in its deal's partition
        assert set(f["activities"]["deal_id"]) <= ids
        assert set(f["stage_history"]["deal_id"]) <= ids
    assert source.cut_at is not None


def test_features_and_score_commands_run_on_a_scheduler(partitioned: Any, cluster_client: Any, small_bundle: Any,
                                                        tmp_path: Path) -> None:
    address = cluster_client.scheduler.address
    res = runner.invoke(app, ["features", str(partitioned.root), "--out", str(tmp_path / "f"), "--no-labels"],
                        env={"DEALSCORE_SCHEDULER": address})
    assert res.exit_code == 0, res.output
    frame = read_result(str(tmp_path / "f"))
    assert frame["deal_id"].nunique() == len(partitioned.whole.deals)
    assert "won" not in frame
    small_bundle.save(tmp_path / "model")
    res = runner.invoke(app, ["score", str(partitioned.root), "--out", str(tmp_path / "s"), "--model",
                              str(tmp_path / "model"), "--scheduler", address])
    assert res.exit_code == 0, res.output
    assert len(read_result(str(tmp_path / "s"))) == partitioned.report.open_deals


@pytest.mark.parametrize("cut_from", ["history.yaml", "the partitions"])
def test_score_on_a_scheduler_refuses_a_time_after_the_data_cut_like_one_machine(
        partitioned: Any, cluster_client: Any, small_bundle: Any, tmp_path: Path, cut_from: str) -> None:
    """One minute past the cut: the cluster's cut must be the whole history's, known before any partition is
    scored, whether ``history.yaml`` states it or the latest time of all partitions gives it."""
    root, whole = partitioned.root, partitioned.whole
    if cut_from == "the partitions":  # the same rows without a stated cut, on both paths
        root = Path(shutil.copytree(partitioned.root, tmp_path / "crm"))
        (root / META_FILE).unlink()
        whole = whole.replace(cut_at=None)
    plain = write_history(whole, tmp_path / "plain")
    after = f"{whole.data_cut + pd.Timedelta(minutes=1):%Y-%m-%dT%H:%M}"
    small_bundle.save(tmp_path / "model")

    def refusal(folder: Path, out: Path, *args: str) -> DataValidationError:
        res = runner.invoke(app, ["score", str(folder), "--out", str(out), "--model", str(tmp_path / "model"),
                                  "--as-of", after, *args])
        assert isinstance(res.exception, DataValidationError), res.output + repr(res.exception)
        return res.exception

    one_machine = refusal(plain, tmp_path / "s.csv")
    cluster = refusal(root, tmp_path / "s", "--scheduler", cluster_client.scheduler.address)
    assert (cluster.message, cluster.fix) == (one_machine.message, one_machine.fix)
    assert f"cannot score as of {after.replace('T', ' ')}" in cluster.message
    assert not (tmp_path / "s").exists()  # no partition was scored


def test_a_plain_folder_is_refused_with_the_fix(cluster_client: Any, tmp_path: Path) -> None:
    res = runner.invoke(app, ["features", str(tmp_path), "--out", str(tmp_path / "f"), "--scheduler",
                              cluster_client.scheduler.address])
    assert res.exit_code != 0
    assert "not a partitioned history" in str(res.exception)


def test_train_command_on_a_scheduler_logs_and_registers_like_one_machine(
        partitioned: Any, cluster_client: Any, fast_dict: dict[str, Any], tmp_path: Path, monkeypatch: Any) -> None:
    import yaml

    from dealscore import tracking

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "fast.yaml"
    cfg.write_text(yaml.safe_dump(fast_dict))
    res = runner.invoke(app, ["train", str(partitioned.root), "--config", str(cfg), "--max-deals", "600",
                              "--report-json", str(tmp_path / "r.json"),
                              "--scheduler", cluster_client.scheduler.address])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "registered dealscore v1 as champion" in res.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["data"]["cluster"]["deals_trained_on"] <= 600 < report["data"]["cluster"]["deals_in_split"]
    bundle = tracking.load_champion()
    assert bundle.context.n_deals_ == len(partitioned.whole.deals)  # cross-deal figures from every deal
