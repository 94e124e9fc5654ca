"""Scale-out on Dask: the same validation, features, scores and training for a history beyond one machine.

A partitioned history (:mod:`~dealscore.scale.layout`) is read partition by
partition on the workers; the cross-deal figures come from a first pass
(:mod:`~dealscore.scale.context`), then the single-machine code runs on each
partition (:mod:`~dealscore.scale.features`, :mod:`~dealscore.scale.scoring`).
``--scheduler ADDRESS`` (or ``local:N``) on ``dealscore features|score|train``
goes through :func:`~dealscore.scale.cluster.connect`. See docs/scale-out.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from dealscore.features import FeatureSpec
from dealscore.scale.cluster import connect
from dealscore.scale.features import build_features_partitioned
from dealscore.scale.layout import PartitionedHistory, is_partitioned, open_partitioned
from dealscore.scale.scoring import score_partitioned
from dealscore.scale.validate import ValidatedHistory, validate_partitioned
from dealscore.taxonomy import StageTaxonomy


def features_on_cluster(scheduler: str, url: str, out: str, taxonomy: StageTaxonomy, *,
                        warn: Callable[[str], None] | None = None, **options: Any) -> tuple[dict[str, int],
                                                                                        FeatureSpec]:
    """``dealscore features --scheduler``: connect, build every partition's frame into ``out``."""
    with connect(scheduler) as client:
        return build_features_partitioned(client, url, out, taxonomy, warn=warn, **options)


def score_on_cluster(scheduler: str, url: str, out: str, bundle: Any, *, as_of: pd.Timestamp | None = None,
                     explain: bool = False, every_days: float | None = None) -> dict[str, Any]:
    """``dealscore score --scheduler``: connect, score every partition into ``out``."""
    with connect(scheduler) as client:
        return score_partitioned(client, url, out, bundle, as_of=as_of, explain=explain, every_days=every_days)


__all__ = ["PartitionedHistory", "ValidatedHistory", "build_features_partitioned", "connect", "features_on_cluster",
           "is_partitioned", "open_partitioned", "score_on_cluster", "score_partitioned", "validate_partitioned"]
