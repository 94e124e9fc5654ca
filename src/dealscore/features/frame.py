"""The training frame of a history: its snapshots, their features and (optionally) their labels.

What ``dealscore features`` writes, for a history in memory or for each
partition of a partitioned history on a cluster (:mod:`dealscore.scale`): one
function, so both give the same rows.
"""

from __future__ import annotations

import pandas as pd

from dealscore.data.history import DealHistory
from dealscore.features.build import build_features
from dealscore.features.context import FeatureContext
from dealscore.features.labels import make_labels
from dealscore.features.snapshots import make_snapshots
from dealscore.features.spec import FeatureSpec
from dealscore.taxonomy import StageTaxonomy


def feature_frame(history: DealHistory, spec: FeatureSpec, taxonomy: StageTaxonomy, *, every_days: float = 7.0,
                  at_stage_changes: bool = True, labels: bool = True,
                  context: FeatureContext | None = None, progress: bool = False) -> pd.DataFrame:
    """One row per training snapshot: ``deal_id``, ``as_of``, the features and, with ``labels``,
    ``won`` and the audited ``real_stage`` (None where ``stage_truth`` has no row; training
    infers the rest with :class:`dealscore.models.stage_labels.StageLabeler`).

    ``context`` as in :func:`~dealscore.features.build_features`: None learns the
    cross-deal figures from ``history`` itself.
    """
    snaps = make_snapshots(history, every_days=every_days, at_stage_changes=at_stage_changes)
    frame = build_features(history, snaps, spec=spec, taxonomy=taxonomy, context=context, progress=progress)
    if labels:
        lab = make_labels(history, snaps, taxonomy)
        frame["won"] = lab["won"].to_numpy()
        frame["real_stage"] = lab["real_stage"].to_numpy()
    return frame
