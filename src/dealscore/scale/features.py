"""Features of a partitioned history on a Dask cluster: the single-machine code, one partition per task.

Pass 1 validates every partition and collects the cross-deal parts
(:mod:`dealscore.scale.validate`, :mod:`dealscore.scale.context`); the client
fits the context and the vocabularies and broadcasts them; pass 2 runs
:func:`~dealscore.features.frame.feature_frame` on each partition with them and
writes one Parquet file per partition. Deals never move between workers: a
partition holds all rows of its deals.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distributed import Client

from dealscore.features import FeatureContext, FeatureSpec
from dealscore.features.frame import feature_frame
from dealscore.scale.context import fit_context, fit_vocabulary
from dealscore.scale.layout import open_partitioned, write_frame
from dealscore.scale.validate import FirstPass, ValidatedHistory, validate_partitioned
from dealscore.taxonomy import StageTaxonomy


def features_partition(history: ValidatedHistory, key: str, out: str, spec: FeatureSpec, context: FeatureContext,
                       options: dict[str, Any]) -> dict[str, int]:
    """Pass 2 on one partition: its training frame written to ``out/<key>.parquet``; returns its counts."""
    frame = feature_frame(history.load(key), spec, history.taxonomy, context=context, **options)
    write_frame(out, key, frame, storage_options=history.source.storage_options)
    counts = {"snapshots": len(frame), "deals": int(frame["deal_id"].nunique())}
    if options.get("labels", True):
        counts["labelled"] = int(frame["won"].notna().sum())
        counts["real_stage"] = int(frame["real_stage"].notna().sum())
    return counts


def prepare(client: Client, url: str, taxonomy: StageTaxonomy, spec: FeatureSpec | None = None,
            storage_options: dict[str, Any] | None = None, *, keep_deals: bool = False
            ) -> tuple[ValidatedHistory, FirstPass]:
    """Pass 1: open and validate the partitioned history at ``url`` (and collect the cross-deal parts)."""
    return validate_partitioned(client, open_partitioned(url, storage_options), taxonomy, spec=spec,
                                keep_deals=keep_deals)


def build_features_partitioned(client: Client, url: str, out: str, taxonomy: StageTaxonomy, *,
                               every_days: float = 7.0, at_stage_changes: bool = True, labels: bool = True,
                               storage_options: dict[str, Any] | None = None,
                               warn: Callable[[str], None] | None = None,
                               prepared: tuple[ValidatedHistory, FirstPass] | None = None,
                               ) -> tuple[dict[str, int], FeatureSpec]:
    """``dealscore features`` on a cluster: the frame of every partition under ``out``; counts and fitted spec.

    The frame equals the single-machine one row for row (floats to rounding,
    categories exactly), partitions in key order instead of the history's row order.
    ``prepared``: a first pass already made with the default spec (saves validating twice).
    """
    spec = FeatureSpec.default(taxonomy)
    history, first = prepared or prepare(client, url, taxonomy, spec, storage_options)
    for w in first.report.warnings:
        if warn is not None:
            warn(w)
    spec = fit_vocabulary(spec, first.categories)
    context = fit_context(first.context_parts, spec.stages)
    spec_f, context_f = client.scatter([spec, context], broadcast=True)
    options = {"every_days": every_days, "at_stage_changes": at_stage_changes, "labels": labels}
    futures = client.map(features_partition, [history] * len(history.keys), list(history.keys), out=out,
                         spec=spec_f, context=context_f, options=options, pure=False)
    totals: dict[str, int] = {}
    for counts in client.gather(futures):
        for k, v in counts.items():
            totals[k] = totals.get(k, 0) + v
    return totals, spec
