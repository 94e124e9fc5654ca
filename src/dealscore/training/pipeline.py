"""The training pipeline: history → snapshots → split → features → models → evaluation → bundle.

:func:`train_models` is pure (no MLflow): it returns the bundle, the report and
the scored holdout. :func:`run_training` wraps it for the CLI and the training
script: load and validate the folder, train, log the run to MLflow, register the
bundle and pass it through the promotion gate.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dealscore.data.history import DealHistory
from dealscore.data.simulate import oracle_win_probability
from dealscore.features import FeatureContext, FeatureSpec, build_features, make_labels, make_snapshots
from dealscore.forecast.calibration import fit_open_calibration
from dealscore.forecast.close_time import TimeToCloseModel
from dealscore.forecast.creation import PipelineCreationModel, fit_creation_models
from dealscore.models.audited_labels import AuditedLabelModel
from dealscore.models.baselines import LogisticBaseline, NaiveBayesBaseline, StageTableBaseline
from dealscore.models.bundle import ModelBundle, to_jsonable
from dealscore.models.data_fit import training_data_profile
from dealscore.models.episodes import EpisodeModel, touch_days, weights_at
from dealscore.models.stage import StageModel
from dealscore.models.stage_labels import StageLabeler
from dealscore.models.win import WinModel
from dealscore.playbook import load_playbook
from dealscore.scoring.scorer import Scorer
from dealscore.scoring.warnings import WarningRules
from dealscore.taxonomy import StageTaxonomy, default_taxonomy
from dealscore.training import plots
from dealscore.training.bootstrap import compare_to_baselines
from dealscore.training.close_time import fit_close_time
from dealscore.training.config import TrainConfig
from dealscore.training.evaluate import oracle_section, stage_section, win_section
from dealscore.training.learning_curve import learning_curve
from dealscore.training.metrics import binary_metrics
from dealscore.training.response_rates import learn_response_rates
from dealscore.training.selection import Selection, fit_win_model
from dealscore.training.split import SLICES, DealSplit, recent_closes_warning, split_deals
from dealscore.training.stage_checks import label_free_checks
from dealscore.training.stage_stats import learn_stage_stats
from dealscore.training.stage_values import learn_stage_values
from dealscore.training.thinness import check_history, check_slice_labels
from dealscore.training.warning_thresholds import episode_track_record, learn_warning_thresholds

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
    order = order_by_creation(snaps, history.deals.set_index("deal_id")["created_at"])
    return snaps.take(order).reset_index(drop=True)


class _Laps:
    """Wall-clock seconds per named step, for the report's ``timings_seconds``."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._t0 = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self._t0, 3)
        self._t0 = now


@dataclass
class TrainingRows:
    """The labelled snapshots of the split's slices, their encoded features and per-slice masks."""

    snaps: pd.DataFrame
    labels: pd.DataFrame
    slice_of: np.ndarray
    features: pd.DataFrame
    spec: FeatureSpec
    context: FeatureContext
    y: np.ndarray
    masks: dict[str, np.ndarray]
    labeler: StageLabeler | None = None
    #: what the audited deals taught the labels of the others (None without a partial audit)
    audited_labels: AuditedLabelModel | None = None

    @property
    def names(self) -> list[str]:
        return list(self.spec.feature_names)


@dataclass
class FittedModels:
    """The win model, its baselines and the real-stage model, fitted on the same split."""

    win: WinModel
    table: StageTableBaseline
    naive_bayes: NaiveBayesBaseline
    logistic: LogisticBaseline
    stage: StageModel
    win_rows: np.ndarray
    stage_rows: np.ndarray
    selection: Selection | None = None


@dataclass
class Evaluation:
    """Test-slice predictions and the report sections built from them."""

    preds: dict[str, np.ndarray]
    p_oracle: np.ndarray | None
    win_report: dict[str, Any]
    stage_report: dict[str, Any]


def split_history(history: DealHistory, cfg: TrainConfig) -> tuple[DealSplit, dict[str, int]]:
    """The time split of deals and the label counts, refused when a slice is too thin to learn from."""
    split = split_deals(history.deals, history.data_cut, fractions=cfg.split.fractions,
                        horizon_quantile=cfg.split.horizon_quantile, max_train_deals=cfg.split.max_train_deals)
    counts = check_history(history.deals, split, min_won=cfg.thin.min_won, min_lost=cfg.thin.min_lost)
    return split, counts


def labelled_snapshots(
    history: DealHistory, split: DealSplit, cfg: TrainConfig, tax: StageTaxonomy,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Snapshots of the split's deals in creation order, with labels; unlabelled snapshots dropped."""
    snaps = make_snapshots(history, every_days=cfg.snapshots.every_days,
                           at_stage_changes=cfg.snapshots.at_stage_changes)
    snaps = snaps[np.isin(split.slice_of(snaps["deal_id"]), SLICES)]
    snaps = _order_by_creation(history, snaps)
    labels = make_labels(history, snaps, tax).reset_index(drop=True)
    keep = labels["won"].notna().to_numpy()
    return snaps[keep].reset_index(drop=True), labels[keep].reset_index(drop=True)


def infer_real_stages(
    history: DealHistory, split: DealSplit, snaps: pd.DataFrame, labels: pd.DataFrame, tax: StageTaxonomy,
) -> tuple[pd.DataFrame, StageLabeler, AuditedLabelModel | None]:
    """Real-stage labels: the audited stage where ``stage_truth`` has one, else the estimator's.

    The estimator learns the company's recording habits from the deals before the
    test slice only, so nothing about the test deals' outcomes reaches the labels
    the stage model learns from. Where some of those deals are audited, an
    :class:`AuditedLabelModel` learns from them how the labeler's readings map to
    the real stage and labels the unaudited deals instead, if it beats the labeler
    on audited deals it did not learn from. ``truth_stage`` keeps the audited stage
    alone: the only labels the stage model is ever evaluated against.
    """
    fit_ids = [i for name in SLICES if name != "test" for i in split.ids(name)]
    labeler = StageLabeler.for_taxonomy(tax).fit(history, deal_ids=fit_ids)
    inferred = labeler.label(history, snaps)["real_stage"].to_numpy(dtype=object)
    truth = labels["real_stage"].to_numpy(dtype=object)
    audited = pd.notna(truth)
    guided = None
    learn = audited & snaps["deal_id"].isin(pd.Index(fit_ids)).to_numpy()
    if learn.any() and not audited.all():
        frame = labeler.hindsight_frame(history, snaps)
        guided = AuditedLabelModel(tax.names).fit(frame[learn], truth[learn], snaps["deal_id"].to_numpy()[learn])
        if guided.used_:
            inferred = np.where(audited, inferred, guided.predict(frame))
    return labels.assign(truth_stage=truth, real_stage=np.where(audited, truth, inferred),
                         stage_label_source=np.where(audited, "stage_truth", "inferred")), labeler, guided


def encoded_features(
    history: DealHistory, snaps: pd.DataFrame, slice_of: np.ndarray, tax: StageTaxonomy,
) -> tuple[pd.DataFrame, FeatureSpec, FeatureContext]:
    """Features of every snapshot, encoded with vocabularies learned from the training slice only.

    A categorical value first seen after the training slice is unknown (NaN), exactly
    as it will be for the deployed model.
    """
    spec = FeatureSpec.default(tax)
    context = FeatureContext().fit(history, tax, spec)
    features = build_features(history, snaps, spec=spec, taxonomy=tax, context=context).reset_index(drop=True)
    encoded, spec = train_vocabulary(features, slice_of, tax)
    return encoded, spec, context


def train_vocabulary(features: pd.DataFrame, slice_of: np.ndarray, tax: StageTaxonomy
                     ) -> tuple[pd.DataFrame, FeatureSpec]:
    """Features encoded with categorical vocabularies learned from the training slice only, and that spec."""
    spec = FeatureSpec.default(tax).fit_vocabulary(features[slice_of == "train"])
    return spec.encode(features), spec


def training_rows(
    history: DealHistory, split: DealSplit, cfg: TrainConfig, tax: StageTaxonomy, say: Progress, laps: _Laps,
) -> TrainingRows:
    """Snapshots, labels and encoded features of the split, each slice checked for both outcomes."""
    say("taking snapshots across each deal's open life")
    snaps, labels = labelled_snapshots(history, split, cfg, tax)
    slice_of = split.slice_of(snaps["deal_id"])
    laps.lap("snapshots")

    say(f"building features for {len(snaps):,} snapshots")
    features, spec, context = encoded_features(history, snaps, slice_of, tax)
    laps.lap("features")
    return rows_of(snaps, labels, features, spec, context, split)


def order_by_creation(snaps: pd.DataFrame, created: pd.Series) -> np.ndarray:
    """Positions that put snapshots in training order: deal creation, deal id, time (``created``: by deal id)."""
    key = pd.DataFrame({"_created": snaps["deal_id"].map(created).to_numpy(), "deal_id": snaps["deal_id"].to_numpy(),
                        "as_of": snaps["as_of"].to_numpy()})
    return key.sort_values(["_created", "deal_id", "as_of"], kind="stable").index.to_numpy()


def rows_of(snaps: pd.DataFrame, labels: pd.DataFrame, features: pd.DataFrame, spec: FeatureSpec,
            context: FeatureContext, split: DealSplit) -> TrainingRows:
    """Training rows from labelled snapshots in training order and their features encoded with ``spec``
    (see :func:`train_vocabulary`). A cluster builds the parts on its workers and joins them here
    (:mod:`dealscore.scale.train`)."""
    slice_of = split.slice_of(snaps["deal_id"])
    masks = {name: slice_of == name for name in SLICES}
    y = labels["won"].to_numpy(dtype=float)
    for name in SLICES:
        check_slice_labels(y[masks[name]], name, len(split.ids(name)))
    return TrainingRows(snaps=snaps, labels=labels, slice_of=slice_of, features=features, spec=spec,
                        context=context, y=y, masks=masks)


def with_real_stages(history: DealHistory, split: DealSplit, rows: TrainingRows, tax: StageTaxonomy) -> TrainingRows:
    """The rows with real-stage labels filled in by the recording-habits estimator (see :func:`infer_real_stages`).

    One step for one machine and for a cluster's rows (``history`` then holds the rows
    of the deals trained on), so both learn the same labels.
    """
    labels, labeler, guided = infer_real_stages(history, split, rows.snaps, rows.labels, tax)
    return dataclasses.replace(rows, labels=labels, labeler=labeler, audited_labels=guided)


def fit_win(rows: TrainingRows, cfg: TrainConfig) -> tuple[WinModel, np.ndarray, Selection | None]:
    """The win model, the rows it (and the baselines) learn from, and the model selection behind it.

    With ``win.selection`` (the default) family, settings and calibration are chosen by
    time-series cross-validation over every deal before the test slice, and the champion
    learns from all of them (:mod:`dealscore.training.selection`); otherwise early stopping
    on the validation slice and calibration on the next.
    """
    if cfg.win.selection:
        pool = rows.masks["train"] | rows.masks["validation"] | rows.masks["calibration"]
        sampled = _cap_rows(pool, cfg.win.max_train_rows, cfg.seed)
        win, selection = fit_win_model(rows.features, rows.y, rows.snaps["deal_id"].to_numpy(), pool, sampled,
                                       rows.names, cfg.win, seed=cfg.seed, threads=cfg.num_threads)
        return win, sampled, selection
    sampled = _cap_rows(rows.masks["train"], cfg.win.max_train_rows, cfg.seed)
    Xs = {name: rows.features[sampled if name == "train" else rows.masks[name]] for name in SLICES}
    ys = {name: rows.y[sampled if name == "train" else rows.masks[name]] for name in SLICES}
    win = WinModel(params={**cfg.win.params, "num_threads": cfg.num_threads}, num_boost_round=cfg.win.num_boost_round,
                   early_stopping_rounds=cfg.win.early_stopping_rounds, calibration=cfg.win.calibration,
                   feature_names=rows.names, seed=cfg.seed)
    win.fit(Xs["train"], ys["train"], Xs["validation"], ys["validation"], Xs["calibration"], ys["calibration"])
    return win, sampled, None


def fit_baselines(
    rows: TrainingRows, train: np.ndarray, cfg: TrainConfig,
) -> tuple[StageTableBaseline, NaiveBayesBaseline, LogisticBaseline]:
    """The stage-table, naive-Bayes and logistic baselines on the win model's training rows (like with like)."""
    X, y = rows.features[train], rows.y[train]
    table = StageTableBaseline().fit(X, y)
    nb = NaiveBayesBaseline(naive_bayes_columns(rows.features), n_bins=cfg.baselines.naive_bayes_bins).fit(X, y)
    logit = LogisticBaseline(feature_names=rows.names, C=cfg.baselines.logistic_c).fit(X, y)
    return table, nb, logit


def fit_stage(rows: TrainingRows, cfg: TrainConfig, tax: StageTaxonomy) -> tuple[StageModel, np.ndarray]:
    """The real-stage model on the stage-labelled training rows (early stopping on validation)."""
    stage_ok = rows.labels["real_stage"].notna().to_numpy()
    st_tr, st_va = rows.masks["train"] & stage_ok, rows.masks["validation"] & stage_ok
    st_tr = _cap_rows(st_tr, cfg.stage.max_train_rows, cfg.seed)
    stage = StageModel(tax.names, params={**cfg.stage.params, "num_threads": cfg.num_threads},
                       num_boost_round=cfg.stage.num_boost_round,
                       early_stopping_rounds=cfg.stage.early_stopping_rounds, feature_names=rows.names,
                       use_declared_stage=cfg.stage.use_declared_stage, seed=cfg.seed)
    features, real = rows.features, rows.labels["real_stage"]
    stage.fit(features[st_tr], real[st_tr], features[st_va], real[st_va])
    return stage, st_tr


def fit_models(rows: TrainingRows, cfg: TrainConfig, tax: StageTaxonomy, say: Progress, laps: _Laps) -> FittedModels:
    """Win model, baselines and real-stage model, each step timed."""
    say("choosing the win model by time-series cross-validation (rolling origins), then refitting it"
        if cfg.win.selection
        else "fitting the win model (early stopping on the validation slice, calibration on the next)")
    win, win_rows, selection = fit_win(rows, cfg)
    laps.lap("win_model")
    say("fitting the baselines on the win model's training deals")
    table, nb, logit = fit_baselines(rows, win_rows, cfg)
    laps.lap("baselines")
    say("fitting the real-stage model")
    stage, stage_rows = fit_stage(rows, cfg, tax)
    laps.lap("stage_model")
    return FittedModels(win=win, table=table, naive_bayes=nb, logistic=logit, stage=stage,
                        win_rows=win_rows, stage_rows=stage_rows, selection=selection)


def evaluate_models(rows: TrainingRows, models: FittedModels, tax: StageTaxonomy, truth: Any,
                    history: DealHistory, cfg: TrainConfig | None = None) -> Evaluation:
    """Win and stage sections on the test slice (the most recent holdout), baselines and oracle beside,
    and the model's difference to the best baseline per metric with a bootstrap interval over deals."""
    cfg = cfg or TrainConfig()
    test = rows.masks["test"]
    Xt, yt = rows.features[test], rows.y[test]
    preds = {
        "model": models.win.predict_proba(Xt),
        "stage_table": models.table.predict_proba(Xt),
        "naive_bayes": models.naive_bayes.predict_proba(Xt),
        "logistic": models.logistic.predict_proba(Xt),
    }
    p_oracle, oracle_reason = oracle_probabilities(truth, rows.snaps[test])
    model_sec = win_section(yt, preds["model"], Xt)
    win = models.win
    model_sec["family"] = win.family
    model_sec["calibration_method"] = win.calibration_method_
    model_sec["calibration_selection_log_loss"] = win.calibrator_.selection_
    model_sec["probability_bounds"] = {"floor": win.calibrator_.floor_, "ceiling": win.calibrator_.ceiling_}
    model_sec["best_iteration"] = win.best_iteration_
    if models.selection is not None:
        model_sec["selection"] = models.selection.to_dict()
    win_report = {
        "model": model_sec,
        "baselines": {k: win_section(yt, preds[k], Xt) for k in ("stage_table", "naive_bayes", "logistic")},
        "oracle": oracle_section(yt, p_oracle, model_sec["roc_auc"], Xt, oracle_reason),
        "comparison": compare_to_baselines(yt, preds, rows.snaps.loc[test, "deal_id"].to_numpy(),
                                           n_boot=cfg.win.bootstrap_replicates, seed=cfg.seed),
    }
    return Evaluation(preds=preds, p_oracle=p_oracle, win_report=win_report,
                      stage_report=_stage_report(rows, models, tax, history, cfg.seed))


def win_learning_curve(rows: TrainingRows, selection: Selection, cfg: TrainConfig) -> dict[str, Any]:
    """The champion's learning curve on the selection's folds (:mod:`dealscore.training.learning_curve`)."""
    pool = rows.masks["train"] | rows.masks["validation"] | rows.masks["calibration"]
    return learning_curve(selection, rows.features[pool], rows.y[pool], rows.snaps.loc[pool, "deal_id"].to_numpy(),
                          rows.names, base_params={**cfg.win.params, "num_threads": cfg.num_threads},
                          linear_c=cfg.win.linear_c, max_rows=cfg.win.max_cv_rows, seed=cfg.seed)


def _stage_report(rows: TrainingRows, models: FittedModels, tax: StageTaxonomy, history: DealHistory,
                  seed: int) -> dict[str, Any]:
    """The stage model against audited stages only (never against the labels it learned), and label-free."""
    stage = models.stage
    test = rows.masks["test"]
    audited = pd.notna(rows.labels["truth_stage"]).to_numpy()
    st_test = test & audited
    # the whole test slice once: the audited rows' report and the label-free checks read the same predictions
    test_proba = stage.predict_proba(rows.features[test]).to_numpy()
    inferred = np.asarray(stage.classes_, dtype=object)[test_proba.argmax(axis=1)]
    if st_test.any():
        of_test = audited[test]
        report = stage_section(
            rows.labels.loc[st_test, "truth_stage"].to_numpy(dtype=object), inferred[of_test],
            rows.features.loc[st_test, "declared_stage"].astype(object).to_numpy(), test_proba[of_test].max(axis=1),
            tax.names, stage.feature_importance(),
        )
    else:
        report = {"model": {"accuracy": None, "macro_f1": None, "n": 0}, "declared": {"accuracy": None,
                                                                                      "macro_f1": None, "n": 0}}
    report["model"]["best_iteration"] = stage.best_iteration_
    report["model"]["warnings"] = list(stage.warnings_)
    report["label_free"] = _label_free(rows, models, history, seed, inferred)
    report["labels"] = _label_words(rows, int(st_test.sum()))
    if rows.labeler is not None:
        report["recording_habits"] = rows.labeler.habits_summary()
    return report


def _label_free(rows: TrainingRows, models: FittedModels, history: DealHistory, seed: int,
                inferred_test: np.ndarray) -> dict[str, Any]:
    """Win-rate-table AUC and time-to-close error keyed on the stage model's stage vs the declared one
    (``inferred_test``: the stage model's stage of each test-slice row)."""
    closed = history.deals.set_index("deal_id")["closed_at"]
    part = {}
    for name, mask in (("train", models.stage_rows), ("test", rows.masks["test"])):
        X = rows.features[mask]
        snaps = rows.snaps[mask]
        left = (snaps["deal_id"].map(closed) - snaps["as_of"]).dt.total_seconds().to_numpy() / 86_400.0
        inferred = inferred_test if name == "test" else models.stage.predict(X)
        part[name] = {"inferred": inferred, "declared": X["declared_stage"].astype(object).to_numpy(),
                      "won": rows.y[mask], "days_left": left, "deal": snaps["deal_id"].to_numpy(dtype=object)}
    return label_free_checks(part["train"], part["test"], seed=seed)


def _label_words(rows: TrainingRows, n_test_audited: int) -> dict[str, Any]:
    """Which real-stage labels the stage model learned from and was judged by, in words."""
    train = rows.masks["train"] | rows.masks["validation"]
    share = float((rows.labels.loc[train, "stage_label_source"] == "stage_truth").mean()) if train.any() else 0.0
    if share >= 0.999:
        learned = "audited stages (stage_truth) for every training snapshot"
    elif share > 0:
        learned = (f"audited stages (stage_truth) for {share:.0%} of training snapshots; the rest inferred from "
                   "evidence and each rep's learned recording habits (StageLabeler)")
        guided = rows.audited_labels
        if guided is not None and guided.used_:
            acc = guided.holdout_accuracy_
            learned += (f", read through what the {guided.n_audited_deals_:,} audited deals taught "
                        f"(AuditedLabelModel: {acc['audited_model']:.0%} right on {acc['deals']:,} held-out audited "
                        f"deals, the labeler alone {acc['labeler']:.0%})")
    else:
        learned = ("no audited stages: every label inferred from evidence and each rep's learned recording habits "
                   "(StageLabeler); no fixed rule")
    judged = (f"accuracy is measured against stage_truth only ({n_test_audited:,} audited test snapshots), never "
              "against inferred labels" if n_test_audited else
              "no audited stages in the test slice, so no accuracy is reported: only the label-free checks "
              "(win-rate table AUC and time to close keyed on the inferred vs the declared stage)")
    out = {"trained_on": learned, "evaluated_against": judged, "truth_share_of_training": share}
    guided = rows.audited_labels
    if guided is not None:
        out["audited_labels"] = {"used": guided.used_, "audited_deals": guided.n_audited_deals_,
                                 "holdout_accuracy": guided.holdout_accuracy_}
    return out


def scored_holdout(rows: TrainingRows, ev: Evaluation) -> pd.DataFrame:
    """The test slice's snapshots with outcome, declared stage and every model's probability."""
    test = rows.masks["test"]
    holdout = rows.snaps[test].reset_index(drop=True).assign(
        won=rows.y[test], **{f"p_{k}": v for k, v in ev.preds.items()},
        declared_stage=rows.features.loc[test, "declared_stage"].astype(object).to_numpy(),
    )
    if ev.p_oracle is not None:
        holdout["p_oracle"] = ev.p_oracle
    return holdout


def warning_thresholds(rows: TrainingRows, cfg: TrainConfig) -> dict[str, Any]:
    """Episode-warning thresholds chosen on the training slice's snapshots, their stated precision counted on
    the validation and calibration periods' (later deals the choice never saw; the test period stays untouched)."""
    train, later = rows.masks["train"], rows.masks["validation"] | rows.masks["calibration"]
    w = cfg.warnings
    return learn_warning_thresholds(
        rows.features[train], rows.y[train], rows.snaps.loc[train, "deal_id"].to_numpy(),
        target_precision=w.target_precision, max_win_ratio=w.max_win_ratio, min_support=w.min_support,
        held_out=(rows.features[later], rows.y[later], rows.snaps.loc[later, "deal_id"].to_numpy()))


def fit_episodes(history: DealHistory, split: DealSplit, cfg: TrainConfig) -> EpisodeModel | None:
    """The episode model (:mod:`dealscore.models.episodes`) on the training slice's deals, each read to its close
    or the data cut; None when too few deals have a customer reply (the warnings keep their rules then)."""
    deals = history.deals[history.deals["deal_id"].isin(split.ids("train"))]
    end = pd.to_datetime(deals["closed_at"]).fillna(history.data_cut).clip(upper=history.data_cut)
    return EpisodeModel.fit(touch_days(history, deals["deal_id"].to_numpy(dtype=object),
                                       end.to_numpy(dtype="datetime64[ns]")), seed=cfg.seed)


def episode_stats(model: EpisodeModel | None, history: DealHistory, rows: TrainingRows) -> dict[str, Any]:
    """The episode model as stored, with its warnings' track record on the validation and calibration periods'
    snapshots (later deals; the test period stays untouched). Empty without a model."""
    if model is None:
        return {}
    later = rows.masks["validation"] | rows.masks["calibration"]
    ids = rows.snaps.loc[later, "deal_id"].to_numpy(dtype=object)
    p = model.probabilities(touch_days(history, ids, rows.snaps.loc[later, "as_of"].to_numpy(dtype="datetime64[ns]")))
    return {**model.to_dict(), "track_record": episode_track_record(p, rows.y[later] == 0, ids,
                                                                    WarningRules().episode_probability)}


#: Training snapshots the state values are counted on at most (sampled with the run's seed beyond): each needs
#: the episode filter at its time, and a table of rates is pinned down by far fewer rows than a long history has.
STATE_VALUE_ROWS = 200_000


def stage_values(rows: TrainingRows, tax: StageTaxonomy, history: DealHistory, episodes: EpisodeModel | None,
                 seed: int = 0) -> dict[str, Any]:
    """Win rates per (real stage, episode, silence, chase) on the training slice's snapshots: what next-best actions
    value a customer's response by (:mod:`dealscore.training.stage_values`)."""
    f = rows.features
    if not {"days_since_last_inbound", "n_outbound_unanswered"} <= set(f.columns):  # no touchpoint features
        return {"rows": []}
    train = np.flatnonzero(rows.masks["train"])
    if len(train) > STATE_VALUE_ROWS:
        train = np.sort(np.random.default_rng(seed).choice(train, STATE_VALUE_ROWS, replace=False))
    ids = rows.snaps["deal_id"].to_numpy(dtype=object)[train]
    weights = weights_at(episodes, history, ids, rows.snaps["as_of"].to_numpy(dtype="datetime64[ns]")[train])
    return learn_stage_values(rows.labels["real_stage"].to_numpy(dtype=object)[train],
                              f["days_since_last_inbound"].to_numpy(dtype=float)[train],
                              f["n_outbound_unanswered"].to_numpy(dtype=float)[train], rows.y[train], ids, tax.names,
                              weights)


def assemble_bundle(
    history: DealHistory, split: DealSplit, counts: dict[str, int], rows: TrainingRows, models: FittedModels,
    ev: Evaluation, tax: StageTaxonomy, cfg: TrainConfig | None = None,
) -> ModelBundle:
    """The deployable bundle: spec, models, playbook, stage norms, training window and headline metrics."""
    b = split.boundaries
    window = {
        "train_from": b.get("train_from"), "train_to": b.get("train_to"),
        "test_from": b.get("test_from"), "test_to": b.get("test_to"),
        "cut_at": split.cut_at, "cohort_end": split.cohort_end, "horizon_days": split.horizon_days,
        "fitted_to": split.fitted_to(),
    }
    model_sec, stage_sec = ev.win_report["model"], ev.stage_report["model"]
    cfg = cfg or TrainConfig()
    episodes = fit_episodes(history, split, cfg)
    return ModelBundle(
        spec=rows.spec, taxonomy=tax, win_model=models.win, stage_model=models.stage,
        playbook=load_playbook(taxonomy=tax),
        stage_stats={**learn_stage_stats(history, split.ids("train"), models.table.table_),
                     "_response_rates": learn_response_rates(history, split.ids("train"), episodes, seed=cfg.seed),
                     "_stage_values": stage_values(rows, tax, history, episodes, cfg.seed),
                     "_warning_thresholds": warning_thresholds(rows, cfg),
                     "_episodes": episode_stats(episodes, history, rows)},
        training_window=to_jsonable(window),
        metrics={"win": {k: model_sec[k] for k in ("roc_auc", "pr_auc", "log_loss", "brier", "ece",
                                                     "top_decile_lift")},
                 "stage": {**{k: stage_sec[k] for k in ("accuracy", "macro_f1")},
                           "win_rate_table_auc_gain": ev.stage_report["label_free"]["win_rate_table_auc"]["gain"]}},
        recording_habits=ev.stage_report.get("recording_habits", {}),
        history_stats=to_jsonable({"deals": len(history.deals), **counts, "snapshots": len(rows.snaps),
                                   **training_data_profile(history)}),
        context=rows.context,
    )


@dataclass
class ForecastModels:
    """What the forecast needs from training: when won deals close, and how fast new pipeline turns into bookings."""

    close_time: TimeToCloseModel
    creation: dict[str, PipelineCreationModel]
    report: dict[str, Any]


def fit_forecast_models(history: DealHistory, rows: TrainingRows, cfg: TrainConfig, say: Progress) -> ForecastModels:
    """The time-to-close model on the won deals' snapshots of the same split, and creation rates at the data cut."""
    say("fitting the time-to-close model (when won deals close) and learning pipeline creation")
    close_time, report = fit_close_time(history, rows.snaps, rows.features, rows.y, rows.slice_of, seed=cfg.seed,
                                        num_threads=cfg.num_threads)
    return ForecastModels(close_time=close_time, creation=fit_creation_models(history), report=report)


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
    laps = _Laps()

    say("splitting deals by creation time")
    split, counts = split_history(history, cfg)
    laps.lap("split")
    rows = training_rows(history, split, cfg, tax, say, laps)
    return train_on_rows(history, split, counts, rows, cfg, tax, truth=truth, say=say, laps=laps)


def train_on_rows(
    history: DealHistory, split: DealSplit, counts: dict[str, int], rows: TrainingRows, cfg: TrainConfig,
    tax: StageTaxonomy, *, truth: Any = None, say: Progress = _noop, laps: _Laps | None = None,
) -> TrainingResult:
    """The steps after the training rows: fit, evaluate, report and bundle (one machine or a cluster's rows).

    ``history`` gives the deal counts of the report and the stage statistics of the
    bundle; a cluster passes every deal and the rows of the deals it trained on.
    """
    laps = laps or _Laps()
    say("learning the reps' recording habits and inferring real stages")
    rows = with_real_stages(history, split, rows, tax)
    laps.lap("stage_labels")
    models = fit_models(rows, cfg, tax, say, laps)

    forecast = fit_forecast_models(history, rows, cfg, say)
    laps.lap("time_to_close")

    say("evaluating on the test slice (the most recent holdout)")
    ev = evaluate_models(rows, models, tax, truth, history, cfg)
    laps.lap("evaluation")
    if models.selection is not None:
        say("measuring the learning curve (25/50/100% of the training deals, last cross-validation fold)")
        ev.win_report["learning_curve"] = win_learning_curve(rows, models.selection, cfg)
        laps.lap("learning_curve")
    data = _data_section(history, split, counts, rows, history.stage_truth is not None,
                         (int(models.win_rows.sum()), int(models.stage_rows.sum())))
    report = to_jsonable({"win": ev.win_report, "stage": ev.stage_report, "time_to_close": forecast.report,
                          "data": data})

    say("learning stage norms and assembling the bundle")
    bundle = assemble_bundle(history, split, counts, rows, models, ev, tax, cfg)
    bundle.time_to_close, bundle.pipeline_creation = forecast.close_time, forecast.creation
    episodes = EpisodeModel.from_dict(bundle.stage_stats.get("_episodes"))
    report["episodes"] = ({"deals": episodes.deals, "paces": episodes.paces(), "reading": episodes.summary()}
                          if episodes is not None else {"deals": 0, "reading": [
                              "too few deals with a customer reply to learn episodes: the stalled, gone-quiet and "
                              "ghosting warnings use thresholds on one measure each"]})
    say("calibrating the forecast's open deals on past quarter windows (what such deals really booked)")
    bundle.forecast_calibration = fit_open_calibration(history, Scorer(bundle), history.data_cut)
    report["time_to_close"]["open_deal_calibration"] = to_jsonable(bundle.forecast_calibration.summary())
    laps.lap("forecast_calibration")
    test = rows.masks["test"]
    figures = _figures(rows.y[test], ev.preds, ev.p_oracle, ev.win_report, models.win, ev.stage_report, tax.names)
    laps.lap("bundle")
    report["data"]["timings_seconds"] = laps.timings
    return TrainingResult(bundle=bundle, report=report, split=split, holdout=scored_holdout(rows, ev),
                          test_features=rows.features[test].reset_index(drop=True), figures=figures, config=cfg,
                          timings=laps.timings)


def _data_section(
    history: DealHistory, split: DealSplit, counts: dict[str, int], rows: TrainingRows, has_truth: bool,
    train_rows: tuple[int, int],
) -> dict[str, Any]:
    deals, slice_of, y, names = history.deals, rows.slice_of, rows.y, rows.names
    return {
        "deals": len(deals),
        "open_at_cut": int(deals["closed_at"].isna().sum()),
        **counts,
        "split": split.to_dict(),
        "snapshots": {s: int((slice_of == s).sum()) for s in SLICES},
        "train_rows_used": {"win_and_baselines": int(train_rows[0]), "stage": int(train_rows[1])},
        "win_rate": {s: float(y[slice_of == s].mean()) for s in SLICES},
        "stage_labels": ("stage_truth where audited, else inferred (StageLabeler)" if has_truth
                         else "inferred from evidence and learned recording habits (StageLabeler)"),
        "stage_labelled_snapshots": int(rows.labels["real_stage"].notna().sum()),
        "n_features": len(names),
        "features": names,
        "open_deal_bias": BIAS_NOTE,
        "warnings": [w for w in (recent_closes_warning(deals, split.cut_at),) if w],
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
    figures = {
        "calibration.png": plots.calibration_plot(y, {k: curves[k] for k in curves if k != "stage_table"}),
        "roc.png": plots.roc_plot(y, curves, aucs),
        "lift.png": plots.lift_plot(y, curves),
        "feature_importance.png": plots.importance_plot(win.feature_importance()),
    }
    if "confusion_matrix" in stage_report["model"]:  # only with audited stages in the test slice
        figures["stage_confusion.png"] = plots.confusion_plot(
            stage_report["model"]["confusion_matrix"]["matrix"], stages, "Real-stage model vs audited stage (test)")
        figures["stage_confusion_declared.png"] = plots.confusion_plot(
            stage_report["declared"]["confusion_matrix"]["matrix"], stages, "Declared stage vs audited stage (test)")
    return figures


# --------------------------------------------------------------------------- champion comparison


def holdout_metrics(bundle: ModelBundle, history: DealHistory, holdout: pd.DataFrame,
                    features: pd.DataFrame | None = None) -> dict[str, Any]:
    """A bundle's win metrics on a holdout (rows of deal_id, as_of, won), built with its own spec."""
    X = features if features is not None else build_features(
        history, holdout[["deal_id", "as_of"]], spec=bundle.spec, taxonomy=bundle.taxonomy)
    p = bundle.win_model.predict_proba(X)
    return binary_metrics(holdout["won"].to_numpy(dtype=float), p)


def find_truth(folder: Path) -> Path | None:
    """The simulator's truth folder beside a generated history, if any."""
    t = folder / "truth"
    return t if t.is_dir() else None


__all__ = ["TrainingResult", "find_truth", "holdout_metrics", "order_by_creation", "rows_of", "train_models",
           "train_on_rows", "train_vocabulary"]
