"""Point-in-time features: snapshots, labels and one feature code path for training and serving.

See docs/features.md for the rules (DESIGN §5) and the generated feature catalog.
"""

from dealscore.features.build import FeatureBlock, PreparedHistory, build_feature_block, build_features, prepare_history
from dealscore.features.catalog import FEATURE_CATALOG, feature_catalog_markdown
from dealscore.features.context import FeatureContext
from dealscore.features.labels import make_labels
from dealscore.features.snapshots import make_snapshots, scoring_snapshots
from dealscore.features.spec import FeatureInfo, FeatureSpec
from dealscore.features.whatif import Touchpoint, WhatIf, build_what_if

__all__ = [
    "FEATURE_CATALOG",
    "FeatureBlock",
    "FeatureContext",
    "FeatureInfo",
    "FeatureSpec",
    "PreparedHistory",
    "Touchpoint",
    "WhatIf",
    "build_feature_block",
    "build_features",
    "build_what_if",
    "feature_catalog_markdown",
    "make_labels",
    "make_snapshots",
    "prepare_history",
    "scoring_snapshots",
]
