"""A 2-worker LocalCluster gives what one machine gives: load report, features and batch scores."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dealscore.features import FeatureSpec
from dealscore.features.frame import feature_frame
from dealscore.scale import build_features_partitioned, score_partitioned, validate_partitioned
from dealscore.scale.layout import read_result
from dealscore.scoring import Scorer
from dealscore.taxonomy import default_taxonomy


def assert_frames_equal(single: pd.DataFrame, dist: pd.DataFrame, keys: list[str]) -> None:
    """Same rows (matched on ``keys``), floats to 1e-9, categories and everything else exactly."""
    assert list(single.columns) == list(dist.columns)
    assert len(single) == len(dist) > 0
    a = single.sort_values(keys, kind="stable").reset_index(drop=True)
    b = dist.sort_values(keys, kind="stable").reset_index(drop=True)
    for col in a.columns:
        x, y = a[col], b[col]
        if isinstance(x.dtype, pd.CategoricalDtype):
            assert isinstance(y.dtype, pd.CategoricalDtype), col
            assert list(x.cat.categories) == list(y.cat.categories), col
            assert (x.cat.codes.to_numpy() == y.cat.codes.to_numpy()).all(), col
        elif x.dtype.kind == "f":
            np.testing.assert_allclose(y.to_numpy(float), x.to_numpy(float), rtol=0, atol=1e-9, err_msg=col)
        elif x.dtype.kind == "M":
            assert (x.to_numpy("datetime64[ns]") == y.to_numpy("datetime64[ns]")).all(), col
        else:
            assert _objects(x) == _objects(y), col


def _objects(s: pd.Series) -> list[Any]:
    return s.astype(object).where(s.notna(), None).tolist()


def test_partition_reports_merge_into_the_single_machine_report(partitioned: Any, cluster_client: Any) -> None:
    history, first = validate_partitioned(cluster_client, partitioned.source, default_taxonomy())
    assert first.report.to_dict() == partitioned.report.to_dict()
    assert history.cut_at == partitioned.whole.data_cut
    assert len(first.context_parts) == len(partitioned.source.keys) == 3


def test_cluster_features_equal_single_machine_features(partitioned: Any, cluster_client: Any, tmp_path: Any) -> None:
    tax = default_taxonomy()
    counts, spec = build_features_partitioned(cluster_client, str(partitioned.root), str(tmp_path / "f"), tax)
    single = feature_frame(partitioned.whole, FeatureSpec.default(tax), tax)
    dist = read_result(str(tmp_path / "f"))
    assert counts["snapshots"] == len(single)
    assert spec.categories == FeatureSpec.default(tax).fit_vocabulary(single).categories
    assert_frames_equal(single, dist, ["deal_id", "as_of"])
    assert len(list((tmp_path / "f").glob("*.parquet"))) == 3


def test_cluster_scores_equal_single_machine_scores(partitioned: Any, cluster_client: Any, small_bundle: Any,
                                                    tmp_path: Any) -> None:
    out = score_partitioned(cluster_client, str(partitioned.root), str(tmp_path / "s"), small_bundle)
    single = Scorer(small_bundle).score_frame(partitioned.whole)
    dist = read_result(str(tmp_path / "s"))
    assert out["rows"] == len(single) == partitioned.report.open_deals
    assert_frames_equal(single, dist, ["deal_id"])


def test_cluster_backtest_scores_equal_single_machine(partitioned: Any, cluster_client: Any, small_bundle: Any,
                                                      tmp_path: Any) -> None:
    from dealscore.features import make_snapshots

    score_partitioned(cluster_client, str(partitioned.root), str(tmp_path / "b"), small_bundle, every_days=60)
    snaps = make_snapshots(partitioned.whole, every_days=60, at_stage_changes=False)
    single = Scorer(small_bundle).score_snapshots(partitioned.whole, snaps, as_frame=True)
    assert_frames_equal(single, read_result(str(tmp_path / "b")), ["deal_id", "as_of"])


def test_training_on_the_cluster_matches_one_machine(partitioned: Any, cluster_client: Any, fast_config: Any) -> None:
    from dealscore.scale.train import train_partitioned
    from dealscore.training.pipeline import train_models

    single = train_models(partitioned.whole, fast_config)
    dist, described, _ = train_partitioned(cluster_client, str(partitioned.root), fast_config)
    for k in ("roc_auc", "log_loss"):
        assert abs(dist.report["win"]["model"][k] - single.report["win"]["model"][k]) <= 0.005, k
    assert dist.report["data"]["snapshots"] == single.report["data"]["snapshots"]
    assert dist.report["data"]["split"] == single.report["data"]["split"]
    assert dist.bundle.spec.to_dict() == single.bundle.spec.to_dict()
    assert dist.bundle.stage_stats == single.bundle.stage_stats
    assert type(dist.bundle) is type(single.bundle)
    assert dist.report["data"]["cluster"]["partitions"] == 3
    assert len(described.deals) == len(partitioned.whole.deals)
