"""The training pipeline: history → snapshots → split → features → models → evaluation → bundle.

:func:`train_models` is pure (no MLflow): it returns the bundle, the report and
the scored holdout. :func:`run_training` wraps it for the CLI and the training
script: load and validate the folder, train, log the run to MLflow, register the
bundle and pass it through the promotion gate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dealscore.data.history import DealHistory
from dealscore.features import FeatureContext, FeatureSpec, build_features, make_labels, make_snapshots
from dealscore.forecast.creation import fit_creation_models
from dealscore.models.baselines import LogisticBaseline, NaiveBayesBaseline, StageTableBaseline
from dealscore.models.bundle import ModelBundle, to_jsonable
from dealscore.models.stage import StageModel
from dealscore.models.win import WinModel
from dealscore.playbook import load_playbook
from dealscore.taxonomy import StageTaxonomy, default_taxonomy
from dealscore.training import plots
from dealscore.training.close_time import fit_close_time
from dealscore.training.config import TrainConfig
from dealscore.training.evaluate import oracle_section, stage_section, win_section
from dealscore.training.split import SLICES, DealSplit, split_deals
from dealscore.training.stage_stats import learn_stage_stats
from dealscore.training.thinness import check_history, check_slice_labels

Progress = Callable[[str], None]

BIAS_NOTE = (
    "only deals created before the data cut minus the label horizon (a high quantile of closed deals' cycle time) "
    "are split into train/validation/calibration/test; later-created deals (only their fast closes would be "
    "labelled) and cohort deals still open at the cut are excluded and counted"
)
#: Static profile fields the naive-Bayes baseline uses beside the declared stage, as CRM lead scoring does
#: (no activity evidence and no aggregates over other deals).
PROFILE_FIELDS = ("industry", "region", "employees", "annual_revenue", "amount", "product", "source")


@dataclass
class TrainingResult:
    """What one training produced (no MLflow involved)."""

    bundle: ModelBundle
    report: dict[str, Any]
    split: DealSplit
    holdout: pd.DataFrame
    test_features: pd.DataFrame | None = None
    figures: dict[str, Figure] = field(default_factory=dict)
    config: TrainConfig = field(default_factory=TrainConfig)
    timings: dict[str, float] = field(default_factory=dict)


def _noop(_: str) -> None:
    return None


def naive_bayes_columns(features: pd.DataFrame) -> list[str]:
    """Declared stage plus the static profile fields present in the frame."""
    return [c for c in ("declared_stage", *PROFILE_FIELDS) if c in features.columns]


def oracle_probabilities(truth: Any, snapshots: pd.DataFrame) -> tuple[np.ndarray | None, str]:
    """The simulator's true win probability per snapshot, when the history is simulated."""
    if truth is None:
        return None, "not a simulated history (no truth tables)"
    try:
        from dealscore.data.simulate import oracle_win_probability
    except ImportError:
        return None, "the simulator is not available in this installation"
    p = oracle_win_probability(truth, snapshots[["deal_id", "as_of"]].reset_index(drop=True))
    return np.asarray(p, dtype=float), ""


def _cap_rows(mask: np.ndarray, cap: int | None, seed: int) -> np.ndarray:
    """``mask`` reduced to a seeded random sample of at most ``cap`` rows (order kept)."""
    if cap is None or mask.sum() <= cap:
        return mask
    rows = np.flatnonzero(mask)
    out = np.zeros_like(mask)
    out[np.random.default_rng(seed).choice(rows, size=cap, replace=False)] = True
    return out


def _order_by_creation(history: DealHistory, snaps: pd.DataFrame) -> pd.DataFrame:
    created = history.deals.set_index("deal_id")["created_at"]
    out = snaps.assign(_created=snaps["deal_id"].map(created).to_numpy())
    out = out.sort_values(["_created", "deal_id", "as_of"], kind="stable").drop(columns="_created")
    return out.reset_index(drop=True)


def train_models(
    history: DealHistory,
    config: TrainConfig | None = None,
    *,
    taxonomy: StageTaxonomy | None = None,
    truth: Any = None,
    progress: Progress | None = None,
) -> TrainingResult:
    """Fit, calibrate and evaluate both models and the baselines on a time split.

    ``history`` must be validated. ``truth`` (a simulation or its truth folder)
    enables the oracle ceiling. ``progress`` receives a short line per step.
    """
    cfg = config or TrainConfig()
    tax = taxonomy or default_taxonomy()
    say = progress or _noop
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t0
        now = time.perf_counter()
        timings[name] = round(now - t0, 3)
        t0 = now

    say("splitting deals by creation time")
    split = split_deals(history.deals, history.data_cut, fractions=cfg.split.fractions,
                        horizon_quantile=cfg.split.horizon_quantile, max_train_deals=cfg.split.max_train_deals)
    counts = check_history(history.deals, split, min_won=cfg.thin.min_won, min_lost=cfg.thin.min_lost)
    lap("split")

    say("taking snapshots across each deal's open life")
    snaps = make_snapshots(history, every_days=cfg.snapshots.every_days,
                           at_stage_changes=cfg.snapshots.at_stage_changes)
    snaps = snaps[np.isin(split.slice_of(snaps["deal_id"]), SLICES)]
    snaps = _order_by_creation(history, snaps)
    labels = make_labels(history, snaps, tax).reset_index(drop=True)
    keep = labels["won"].notna().to_numpy()
    snaps, labels = snaps[keep].reset_index(drop=True), labels[keep].reset_index(drop=True)
    slice_of = split.slice_of(snaps["deal_id"])
    lap("snapshots")

    say(f"building features for {len(snaps):,} snapshots")
    context = FeatureContext().fit(history, tax, FeatureSpec.default(tax))
    features = build_features(history, snaps, spec=FeatureSpec.default(tax), taxonomy=tax,
                              context=context).reset_index(drop=True)
    # Categorical vocabularies come from the training slice only: a value first seen later is unknown (NaN),
    # exactly as it will be for the deployed model.
    spec = FeatureSpec.default(tax).fit_vocabulary(features[slice_of == "train"])
    features = spec.encode(features)
    lap("features")

    masks = {name: slice_of == name for name in SLICES}
    y = labels["won"].to_numpy(dtype=float)
    for name in SLICES:
        check_slice_labels(y[masks[name]], name, len(split.ids(name)))
    sampled = _cap_rows(masks["train"], cfg.win.max_train_rows, cfg.seed)
    Xs = {name: features[sampled if name == "train" else masks[name]] for name in SLICES}
    ys = {name: y[sampled if name == "train" else masks[name]] for name in SLICES}
    names = list(spec.feature_names)

    say("fitting the win model (early stopping on the validation slice, calibration on the next)")
    params = {**cfg.win.params, "num_threads": cfg.num_threads}
    win = WinModel(params=params, num_boost_round=cfg.win.num_boost_round,
                   early_stopping_rounds=cfg.win.early_stopping_rounds, calibration=cfg.win.calibration,
                   feature_names=names, seed=cfg.seed)
    win.fit(Xs["train"], ys["train"], Xs["validation"], ys["validation"], Xs["calibration"], ys["calibration"])
    lap("win_model")

    say("fitting the baselines on the same split")
    table = StageTableBaseline().fit(Xs["train"], ys["train"])
    nb = NaiveBayesBaseline(naive_bayes_columns(features), n_bins=cfg.baselines.naive_bayes_bins)
    nb.fit(Xs["train"], ys["train"])
    logit = LogisticBaseline(feature_names=names, C=cfg.baselines.logistic_c).fit(Xs["train"], ys["train"])
    lap("baselines")

    say("fitting the real-stage model")
    stage_ok = labels["real_stage"].notna().to_numpy()
    st_tr, st_va = masks["train"] & stage_ok, masks["validation"] & stage_ok
    st_tr = _cap_rows(st_tr, cfg.stage.max_train_rows, cfg.seed)
    stage = StageModel(tax.names, params={**cfg.stage.params, "num_threads": cfg.num_threads},
                       num_boost_round=cfg.stage.num_boost_round,
                       early_stopping_rounds=cfg.stage.early_stopping_rounds, feature_names=names,
                       use_declared_stage=cfg.stage.use_declared_stage, seed=cfg.seed)
    stage.fit(features[st_tr], labels.loc[st_tr, "real_stage"], features[st_va], labels.loc[st_va, "real_stage"])
    lap("stage_model")

    say("fitting the time-to-close model (when won deals close) and learning pipeline creation")
    close_time, close_report = fit_close_time(history, snaps, features, y, slice_of, seed=cfg.seed,
                                              num_threads=cfg.num_threads)
    creation = fit_creation_models(history)
    lap("time_to_close")

    say("evaluating on the test slice (the most recent holdout)")
    test = masks["test"]
    Xt, yt = features[test], y[test]
    preds = {
        "model": win.predict_proba(Xt),
        "stage_table": table.predict_proba(Xt),
        "naive_bayes": nb.predict_proba(Xt),
        "logistic": logit.predict_proba(Xt),
    }
    p_oracle, oracle_reason = oracle_probabilities(truth, snaps[test])
    model_sec = win_section(yt, preds["model"], Xt)
    model_sec["calibration_method"] = win.calibration_method_
    model_sec["calibration_selection_log_loss"] = win.calibrator_.selection_
    model_sec["best_iteration"] = win.best_iteration_
    win_report = {
        "model": model_sec,
        "baselines": {k: win_section(yt, preds[k], Xt) for k in ("stage_table", "naive_bayes", "logistic")},
        "oracle": oracle_section(yt, p_oracle, model_sec["roc_auc"], Xt, oracle_reason),
    }
    st_test = test & stage_ok
    stage_proba = stage.predict_proba(features[st_test])
    inferred = np.asarray(stage.classes_, dtype=object)[stage_proba.to_numpy().argmax(axis=1)]
    stage_importance = stage.feature_importance()
    stage_report = stage_section(
        labels.loc[st_test, "real_stage"].to_numpy(dtype=object), inferred,
        features.loc[st_test, "declared_stage"].astype(object).to_numpy(), stage_proba.to_numpy().max(axis=1),
        tax.names, stage_importance,
    )
    stage_report["model"]["best_iteration"] = stage.best_iteration_
    stage_report["model"]["warnings"] = list(stage.warnings_)
    lap("evaluation")

    data = _data_section(history, split, counts, slice_of, y, names, labels, history.stage_truth is not None,
                         (int(sampled.sum()), int(st_tr.sum())))
    report = to_jsonable({"win": win_report, "stage": stage_report, "time_to_close": close_report, "data": data})

    holdout = snaps[test].reset_index(drop=True).assign(
        won=yt, **{f"p_{k}": v for k, v in preds.items()},
        declared_stage=Xt["declared_stage"].astype(object).to_numpy(),
    )
    if p_oracle is not None:
        holdout["p_oracle"] = p_oracle

    say("learning stage norms and assembling the bundle")
    window = {
        "train_from": split.boundaries.get("train_from"), "train_to": split.boundaries.get("train_to"),
        "test_from": split.boundaries.get("test_from"), "test_to": split.boundaries.get("test_to"),
        "cut_at": split.cut_at, "cohort_end": split.cohort_end, "horizon_days": split.horizon_days,
    }
    bundle = ModelBundle(
        spec=spec, taxonomy=tax, win_model=win, stage_model=stage, playbook=load_playbook(taxonomy=tax),
        stage_stats=learn_stage_stats(history, split.ids("train"), table.table_),
        training_window=to_jsonable(window),
        metrics={"win": {k: model_sec[k] for k in ("roc_auc", "pr_auc", "log_loss", "brier", "ece",
                                                     "top_decile_lift")},
                 "stage": {k: stage_report["model"][k] for k in ("accuracy", "macro_f1")}},
        history_stats=to_jsonable({"deals": len(history.deals), **counts, "snapshots": len(snaps)}),
        context=context, time_to_close=close_time, pipeline_creation=creation,
    )
    figures = _figures(yt, preds, p_oracle, win_report, win, stage_report, tax.names)
    lap("bundle")
    report["data"]["timings_seconds"] = timings
    return TrainingResult(bundle=bundle, report=report, split=split, holdout=holdout,
                          test_features=Xt.reset_index(drop=True), figures=figures, config=cfg, timings=timings)


def _data_section(
    history: DealHistory, split: DealSplit, counts: dict[str, int], slice_of: np.ndarray, y: np.ndarray,
    names: list[str], labels: pd.DataFrame, has_truth: bool, train_rows: tuple[int, int],
) -> dict[str, Any]:
    deals = history.deals
    return {
        "deals": len(deals),
        "open_at_cut": int(deals["closed_at"].isna().sum()),
        **counts,
        "split": split.to_dict(),
        "snapshots": {s: int((slice_of == s).sum()) for s in SLICES},
        "train_rows_used": {"win_and_baselines": int(train_rows[0]), "stage": int(train_rows[1])},
        "win_rate": {s: float(y[slice_of == s].mean()) for s in SLICES},
        "stage_labels": "stage_truth" if has_truth else "retrospective rule over the stage history",
        "stage_labelled_snapshots": int(labels["real_stage"].notna().sum()),
        "n_features": len(names),
        "features": names,
        "open_deal_bias": BIAS_NOTE,
    }


def _figures(
    y: np.ndarray, preds: dict[str, np.ndarray], p_oracle: np.ndarray | None, win_report: dict[str, Any],
    win: WinModel, stage_report: dict[str, Any], stages: list[str],
) -> dict[str, Figure]:
    curves = dict(preds)
    aucs = {"model": win_report["model"]["roc_auc"],
            **{k: v["roc_auc"] for k, v in win_report["baselines"].items()}}
    if p_oracle is not None:
        curves["oracle"] = p_oracle
        aucs["oracle"] = win_report["oracle"]["roc_auc"]
    cm = stage_report["model"]["confusion_matrix"]
    return {
        "calibration.png": plots.calibration_plot(y, {k: curves[k] for k in curves if k != "stage_table"}),
        "roc.png": plots.roc_plot(y, curves, aucs),
        "lift.png": plots.lift_plot(y, curves),
        "feature_importance.png": plots.importance_plot(win.feature_importance()),
        "stage_confusion.png": plots.confusion_plot(cm["matrix"], stages, "Real-stage model (test slice)"),
        "stage_confusion_declared.png": plots.confusion_plot(
            stage_report["declared"]["confusion_matrix"]["matrix"], stages, "Declared stage (test slice)"),
    }


# --------------------------------------------------------------------------- champion comparison


def holdout_metrics(bundle: ModelBundle, history: DealHistory, holdout: pd.DataFrame,
                    features: pd.DataFrame | None = None) -> dict[str, Any]:
    """A bundle's win metrics on a holdout (rows of deal_id, as_of, won), built with its own spec."""
    from dealscore.training.metrics import binary_metrics

    X = features if features is not None else build_features(
        history, holdout[["deal_id", "as_of"]], spec=bundle.spec, taxonomy=bundle.taxonomy)
    p = bundle.win_model.predict_proba(X)
    return binary_metrics(holdout["won"].to_numpy(dtype=float), p)


def find_truth(folder: Path) -> Path | None:
    """The simulator's truth folder beside a generated history, if any."""
    t = folder / "truth"
    return t if t.is_dir() else None


__all__ = ["TrainingResult", "find_truth", "holdout_metrics", "train_models"]
