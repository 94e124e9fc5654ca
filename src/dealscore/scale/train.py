"""Training on a Dask cluster: the training rows built on the workers, the models fitted as on one machine.

Pass 1 validates every partition and brings back the deals (a few columns per
deal) and the context parts; the client splits the deals by creation time
exactly as :func:`~dealscore.training.pipeline.split_history` does and fits the
whole history's context. Pass 2 builds each partition's labelled snapshots and
their features on the workers (the same functions). The client joins the rows
in training order and runs the one-machine steps from there
(:func:`~dealscore.training.pipeline.train_on_rows`): fit, calibrate, evaluate
beside the baselines, assemble the bundle; :func:`~dealscore.training.run.track_training`
logs it to MLflow and gates it like any run.

Model fitting stays on the client. Its input is bounded anyway: the win and
stage models train on a seeded sample of at most ``win.max_train_rows`` /
``stage.max_train_rows`` snapshots. For a history whose *rows* do not fit the
client, ``max_deals`` keeps a seeded sample of deals, stratified by slice and
outcome (docs/scale-out.md has the measured cost of sampling).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from distributed import Client

from dealscore.data.history import DealHistory
from dealscore.features import FeatureContext, FeatureSpec, build_features
from dealscore.scale.context import fit_context
from dealscore.scale.features import prepare
from dealscore.scale.validate import ValidatedHistory
from dealscore.taxonomy import StageTaxonomy, default_taxonomy
from dealscore.training.config import TrainConfig
from dealscore.training.pipeline import (
    Progress,
    TrainingResult,
    labelled_snapshots,
    order_by_creation,
    rows_of,
    split_history,
    train_on_rows,
    train_vocabulary,
)
from dealscore.training.split import SLICES, DealSplit

_ROW_TABLES = ("accounts", "stage_history", "activities")


def sample_deals(split: DealSplit, deals: pd.DataFrame, max_deals: int | None, seed: int) -> pd.Index | None:
    """At most ``max_deals`` of the split's deals, the same share of every (slice, outcome) stratum; None: all."""
    slices = split.slice_of(deals["deal_id"])
    in_split = np.isin(slices, SLICES)
    n = int(in_split.sum())
    if max_deals is None or n <= max_deals:
        return None
    share = max_deals / n
    outcome = deals["outcome"].astype(object).where(deals["outcome"].notna(), "open").to_numpy()
    rng = np.random.default_rng(seed)
    keep: list[np.ndarray] = []
    strata = pd.Series(np.arange(len(deals)))[in_split].groupby([slices[in_split], outcome[in_split]], sort=True)
    for _, rows in strata:
        k = round(share * len(rows))
        keep.append(rng.choice(rows.to_numpy(), size=k, replace=False) if k < len(rows) else rows.to_numpy())
    chosen = np.sort(np.concatenate(keep))
    return pd.Index(deals["deal_id"].to_numpy(dtype=object)[chosen])


def training_part(history: ValidatedHistory, key: str, split: DealSplit, sample: pd.Index | None, cfg: TrainConfig,
                  context: FeatureContext) -> dict[str, Any]:
    """Pass 2 on one partition: labelled snapshots, their (open-vocabulary) features and the deals' rows."""
    part = history.load(key)
    if sample is not None:
        part = part.for_deals(part.deals["deal_id"][part.deals["deal_id"].isin(sample)])
    tax = history.taxonomy
    snaps, labels = labelled_snapshots(part, split, cfg, tax)
    features = build_features(part, snaps, spec=FeatureSpec.default(tax), taxonomy=tax, context=context)
    return {"snaps": snaps, "labels": labels, "features": features.reset_index(drop=True),
            **{name: part.table(name) for name in (*_ROW_TABLES, "stage_truth")}}


def train_partitioned(client: Client, url: str, config: TrainConfig | None = None, *,
                      taxonomy: StageTaxonomy | None = None, max_deals: int | None = None,
                      progress: Progress | None = None) -> tuple[TrainingResult, DealHistory, list[str]]:
    """Train on a partitioned history: the result, the history it describes (every deal, the trained deals'
    rows: what the report, the bundle's stage statistics and the champion comparison read) and the load warnings.
    """
    cfg = config or TrainConfig()
    tax = taxonomy or default_taxonomy()
    say = progress or (lambda _m: None)
    say(f"validating the partitions of {url} on the cluster")
    history, first = prepare(client, url, tax, keep_deals=True)
    assert first.deals is not None
    deals = first.deals
    empty = {name: pd.DataFrame(columns=["deal_id"]) for name in _ROW_TABLES}
    split, counts = split_history(DealHistory(deals=deals, cut_at=history.cut_at, **empty), cfg)
    sample = sample_deals(split, deals, max_deals, cfg.seed)
    context = fit_context(first.context_parts, tax.names)

    say(f"building labelled snapshots and features on the cluster ({len(history.keys)} partitions"
        + (f", {len(sample):,} sampled deals)" if sample is not None else ")"))
    split_f, sample_f, context_f = client.scatter([split, sample, context], broadcast=True)
    futures = client.map(training_part, [history] * len(history.keys), list(history.keys), split=split_f,
                         sample=sample_f, cfg=cfg, context=context_f, pure=False)
    parts = client.gather(futures)
    snaps = pd.concat([p["snaps"] for p in parts], ignore_index=True)
    order = order_by_creation(snaps, deals.set_index("deal_id")["created_at"])
    snaps = snaps.take(order).reset_index(drop=True)
    labels = pd.concat([p["labels"] for p in parts], ignore_index=True).take(order).reset_index(drop=True)
    features = pd.concat([p["features"] for p in parts], ignore_index=True).take(order).reset_index(drop=True)
    features, spec = train_vocabulary(features, split.slice_of(snaps["deal_id"]), tax)
    rows = rows_of(snaps, labels, features, spec, context, split)

    tables = {name: pd.concat([p[name] for p in parts], ignore_index=True) for name in _ROW_TABLES}
    tables["accounts"] = tables["accounts"].drop_duplicates("account_id", ignore_index=True)
    truth = [p["stage_truth"] for p in parts if p["stage_truth"] is not None]
    described = DealHistory(deals=deals, cut_at=history.cut_at, stage_truth=pd.concat(truth, ignore_index=True)
                            if truth else None, **tables)
    result = train_on_rows(described, split, counts, rows, cfg, tax, say=say)
    result.report["data"]["cluster"] = {
        "partitions": len(history.keys), "workers": len(client.scheduler_info()["workers"]),
        "deals_in_split": int(np.isin(split.slice_of(deals["deal_id"]), SLICES).sum()),
        "deals_trained_on": None if sample is None else len(sample), "max_deals": max_deals,
    }
    return result, described, list(first.report.warnings)
