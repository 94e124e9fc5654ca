"""train_models end to end on a small simulated history: honest split, report shape, bundle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dealscore.errors import InsufficientDataError
from dealscore.models.bundle import ModelBundle
from dealscore.training.pipeline import train_models
from dealscore.training.split import SLICES

REPORT_KEYS = {"win": {"model", "baselines", "oracle", "comparison", "learning_curve"},
               "stage": {"model", "declared", "label_free", "labels", "recording_habits"}}


def test_report_has_the_agreed_shape(trained):
    r = trained.report
    assert set(r) == {"win", "stage", "data", "time_to_close", "episodes"}
    assert set(r["win"]) == REPORT_KEYS["win"] and set(r["stage"]) == REPORT_KEYS["stage"]
    # the paces the episode warnings are judged by, learned from the training deals
    assert r["episodes"]["deals"] >= 50 and [p["state"] for p in r["episodes"]["paces"]] == [
        "active", "slow", "stalled", "quiet"]
    record = trained.bundle.stage_stats["_episodes"]["track_record"]  # counted on the later periods' deals
    assert set(record) == {"stalled_in_stage", "gone_quiet", "ghosting"} and record["gone_quiet"]["support"] > 0
    assert set(r["win"]["baselines"]) == {"stage_table", "naive_bayes", "logistic"}
    for sec in (r["win"]["model"], *r["win"]["baselines"].values(), r["win"]["oracle"]):
        for key in ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "top_decile_lift", "by_declared_stage",
                    "by_age_band"):
            assert key in sec
    assert r["win"]["oracle"]["available"] is True
    assert {"accuracy", "macro_f1", "confusion_matrix"} <= set(r["stage"]["model"]) & set(r["stage"]["declared"])


def test_the_served_win_model_is_the_cross_validated_champion(trained):
    model = trained.report["win"]["model"]
    sel = model["selection"]
    cv = {k: c["cv_log_loss"] for k, c in sel["candidates"].items()}
    assert cv[sel["champion"]] == min(cv.values())
    assert {c["family"] for c in sel["candidates"].values()} == {"lightgbm", "logistic", "blend"}
    assert trained.bundle.win_model.family == sel["family"] == model["family"]
    assert len(sel["folds"]) == 3 and all(f["held_out_deals"] > 0 for f in sel["folds"])
    bounds = model["probability_bounds"]
    assert 0 < bounds["floor"] <= 0.005 and 0.995 <= bounds["ceiling"] < 1
    p = trained.holdout["p_model"].to_numpy()
    assert p.min() >= bounds["floor"] and p.max() <= bounds["ceiling"]


def test_report_compares_with_the_best_baseline_over_deals_and_has_a_learning_curve(trained):
    win = trained.report["win"]
    comp = win["comparison"]
    assert comp["_about"]["resampled"] == "deals"
    assert comp["_about"]["deals"] == trained.holdout["deal_id"].nunique() < comp["_about"]["snapshots"]
    for metric in ("roc_auc", "log_loss", "brier", "ece", "top_decile_lift"):
        row = comp[metric]
        assert row["best_baseline"] in win["baselines"] and row["verdict"] in {"better", "tied", "worse"}
        lo, hi = row["interval"]
        assert lo <= hi
        assert row["difference"] == pytest.approx(win["model"][metric] - win["baselines"][row["best_baseline"]][metric])
    curve = win["learning_curve"]
    assert [p["fraction"] for p in curve["points"]] == [0.25, 0.5, 1.0]
    deals = [p["train_deals"] for p in curve["points"]]
    assert deals == sorted(deals) and deals[0] < deals[-1]
    assert all(0.5 < p["roc_auc"] <= 1 and p["log_loss"] > 0 for p in curve["points"])
    assert "training deals" in curve["note"]


def test_model_learns_signal_and_the_oracle_is_the_ceiling(trained):
    win = trained.report["win"]
    assert win["model"]["roc_auc"] > 0.65
    assert win["model"]["roc_auc"] > win["baselines"]["stage_table"]["roc_auc"]
    assert win["oracle"]["roc_auc"] >= win["model"]["roc_auc"] - 0.02
    assert 0 < win["oracle"]["model_auc_share_of_oracle"] <= 1.05
    assert trained.report["stage"]["model"]["accuracy"] > trained.report["stage"]["declared"]["accuracy"]


def test_test_slice_is_later_and_disjoint(trained):
    a = trained.split.assignment
    test_ids = set(trained.holdout["deal_id"])
    assert test_ids == set(a[a == "test"].index) & test_ids
    assert not test_ids & set(a[a.isin(["train", "validation", "calibration"])].index)
    w = trained.bundle.training_window
    assert pd.Timestamp(w["train_to"]) <= pd.Timestamp(w["test_from"])
    counts = trained.report["data"]["split"]["deals"]
    assert counts.get("excluded_recent", 0) > 0  # the open-deal bias guard is active
    assert trained.report["data"]["warnings"] == []  # deals closed up to the cut
    assert all(trained.report["data"]["snapshots"][s] > 0 for s in SLICES)


def test_holdout_and_features_line_up(trained):
    h = trained.holdout
    assert len(h) == len(trained.test_features) == trained.report["win"]["model"]["n"]
    assert (h["deal_id"].to_numpy() == trained.test_features["deal_id"].to_numpy()).all()
    np.testing.assert_allclose(trained.bundle.win_model.predict_proba(trained.test_features), h["p_model"])
    assert set(np.unique(h["won"])) == {0.0, 1.0}


def test_bundle_round_trips(trained, tmp_path):
    trained.bundle.save(tmp_path / "b")
    loaded = ModelBundle.load(tmp_path / "b")
    X = trained.test_features.head(40)
    pd.testing.assert_frame_equal(loaded.predict_frame(X), trained.bundle.predict_frame(X))
    assert loaded.spec.to_dict() == trained.bundle.spec.to_dict()
    stats = loaded.stage_stats
    assert set(stats) >= {"stages", "overall"} and stats["overall"]["p90_gap_days"] > 0
    assert any(v["win_rate"] is not None for v in stats["stages"].values())


def test_too_thin_history_stops_with_counts(small_history, fast_config):
    history = small_history
    closed = history.deals[history.deals["outcome"].notna()]
    keep = pd.concat([closed[closed["outcome"] == "won"].head(12), closed[closed["outcome"] == "lost"].head(30)])
    with pytest.raises(InsufficientDataError, match=r"at least 40 won and 40 lost"):
        train_models(history.for_deals(keep["deal_id"]), fast_config)


def test_one_class_history_is_a_clear_error(small_history, fast_config):
    history = small_history
    lost = history.deals[history.deals["outcome"] == "lost"]["deal_id"]
    with pytest.raises(InsufficientDataError, match="every closed deal in the history is lost"):
        train_models(history.for_deals(lost), fast_config)


def test_cli_reports_thin_history_without_traceback(small_history, tmp_path):
    from typer.testing import CliRunner

    from dealscore.cli import app
    from dealscore.data.history import write_history

    history = small_history
    closed = history.deals[history.deals["outcome"].notna()]
    folder = write_history(history.for_deals(closed["deal_id"].head(50)), tmp_path / "thin")
    result = CliRunner().invoke(app, ["train", str(folder)])
    assert isinstance(result.exception, InsufficientDataError)
    assert "Training needs at least 40 won and 40 lost" in str(result.exception)


def test_a_partial_audit_teaches_the_labels_and_leaves_the_win_model_alone(small_history, fast_config, trained):
    """30 % of deals audited: the report says what the audit taught the other deals' labels; the win model,
    which never reads real-stage labels, is the one trained with every deal audited."""
    truth = small_history.stage_truth
    ids = small_history.deals["deal_id"].to_numpy(dtype=object)
    audited = set(ids[np.random.default_rng(0).random(len(ids)) < 0.3])
    partial = small_history.replace(stage_truth=truth[truth["deal_id"].isin(audited)].reset_index(drop=True))
    report = train_models(partial, fast_config).report
    taught = report["stage"]["labels"]["audited_labels"]
    assert taught["audited_deals"] > 100
    assert set(taught["holdout_accuracy"]) == {"labeler", "audited_model", "deals"}
    assert ("AuditedLabelModel" in report["stage"]["labels"]["trained_on"]) == taught["used"]
    for metric in ("roc_auc", "log_loss"):
        assert report["win"]["model"][metric] == trained.report["win"]["model"][metric]
