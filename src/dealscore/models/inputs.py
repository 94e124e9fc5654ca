"""Feature-frame checks shared by every model: which columns are features, and are the labels usable.

Each model (win, stage, baselines, the linear terms) reads its columns through
:func:`select_features`, so a frame built with another spec fails the same way
everywhere: with the missing column named and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from dealscore.errors import DataValidationError, InsufficientDataError

ID_COLUMNS = ("deal_id", "as_of")


def feature_columns(X: pd.DataFrame, feature_names: Sequence[str] | None) -> list[str]:
    """The model's feature columns: the given names, else every column but the snapshot ids."""
    if feature_names is not None:
        return list(feature_names)
    return [c for c in X.columns if c not in ID_COLUMNS]


def select_features(X: pd.DataFrame, names: Sequence[str], *, who: str) -> pd.DataFrame:
    """The feature columns in training order, with a clear error when some are missing."""
    missing = [c for c in names if c not in X.columns]
    if missing:
        raise DataValidationError(
            f"{who}: feature frame lacks column(s) {missing[:5]}"
            + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""),
            table="features", column=missing[0],
            fix="build the frame with dealscore.features.build_features using the bundle's FeatureSpec",
        )
    return X.loc[:, list(names)]


def check_binary(y: np.ndarray, where: str) -> None:
    """Refuse a one-class label set with a message instead of a LightGBM traceback."""
    values = set(np.unique(np.asarray(y, dtype=float)).tolist())
    if not values <= {0.0, 1.0}:
        raise DataValidationError(f"{where}: win labels must be 0/1 (NaN only for open deals, which are excluded)",
                                  table="labels", column="won")
    if len(values) < 2:
        only = "won" if values == {1.0} else "lost"
        raise InsufficientDataError(
            f"{where}: every closed deal in it was {only}; the win model needs both won and lost deals. "
            "Add history with the other outcome (or a longer period)",
            slice=where, only=only,
        )
