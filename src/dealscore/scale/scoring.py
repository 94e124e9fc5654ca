"""Batch scoring of a partitioned history on a Dask cluster, one partition per task.

Every task runs :meth:`dealscore.scoring.Scorer.score_frame` (open deals at a
time) or :meth:`~dealscore.scoring.Scorer.score_snapshots` (a backtest's
snapshots) on its partition, with the cross-deal context the scorer would have
used on the whole history: fitted from every partition in the first pass when
the scorer learns it from the history, else the bundle's. Results go to one
Parquet file per partition.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from distributed import Client

from dealscore.data.history import refuse_after_cut
from dealscore.features import make_snapshots
from dealscore.scale.context import fit_context
from dealscore.scale.features import prepare
from dealscore.scale.layout import write_frame
from dealscore.scale.validate import FirstPass, ValidatedHistory
from dealscore.scoring import Scorer
from dealscore.times import naive_utc


def score_partition(history: ValidatedHistory, key: str, out: str, bundle: Any, context: Any,
                    as_of: pd.Timestamp | None, explain: bool, every_days: float | None) -> int:
    """Scores of one partition written to ``out/<key>.parquet``; returns how many rows.

    ``every_days`` scores backtest snapshots instead: every deal every that many
    days across its open life (the training schedule, without stage-change snapshots).
    """
    part = history.load(key)
    scorer = Scorer(bundle)
    if every_days is None:
        frame = scorer.score_frame(part, as_of, explain=explain, context=context)
    else:
        # the schedule only holds times a deal was open at (strictly before its close)
        snaps = make_snapshots(part, every_days=every_days, at_stage_changes=False)
        frame = scorer.score_snapshots(part, snaps, explain=explain, as_frame=True, context=context)
    write_frame(out, key, frame, storage_options=history.source.storage_options)
    return len(frame)


def score_partitioned(client: Client, url: str, out: str, bundle: Any, *, as_of: pd.Timestamp | None = None,
                      explain: bool = False, every_days: float | None = None,
                      storage_options: dict[str, Any] | None = None,
                      prepared: tuple[ValidatedHistory, FirstPass] | None = None) -> dict[str, Any]:
    """``dealscore score`` on a cluster: validate, fit the context once, score every partition into ``out``.

    An ``as_of`` after the history's data cut is refused as on one machine: the
    first pass knows the cut (``history.yaml``, else the latest time of every
    partition), so the refusal comes before the context is fitted or a partition scored.

    ``prepared``: a first pass already made with the bundle's taxonomy (features and scores of one
    history in one session validate it once).
    """
    scorer = Scorer(bundle)
    history, first = prepared or prepare(client, url, bundle.taxonomy, storage_options=storage_options)
    if as_of is not None:  # the single-machine rule on the whole history's cut, before any task scores
        refuse_after_cut(history, naive_utc(pd.Timestamp(as_of)), "score")  # a validated history is naive UTC
    if scorer.learns_context(first.has_closed):
        context = fit_context(first.context_parts, list(bundle.spec.stages), scorer.unfitted_context())
    else:
        context = scorer.bundle_context()
    bundle_f, context_f = client.scatter([bundle, context], broadcast=True)
    futures = client.map(score_partition, [history] * len(history.keys), list(history.keys), out=out,
                         bundle=bundle_f, context=context_f, as_of=as_of, explain=explain, every_days=every_days,
                         pure=False)
    rows = int(np.sum(client.gather(futures)))
    return {"rows": rows, "partitions": len(history.keys), "report": first.report, "cut_at": history.cut_at}
