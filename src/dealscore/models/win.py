"""The win model: LightGBM on snapshots, early-stopped and calibrated on later time slices.

Three slices, in time order, each with one job: the booster learns on the
training slice, stops adding trees when the validation slice stops improving,
and its raw scores are calibrated on the calibration slice, which neither of the
first two steps saw. There is no class weighting: weights would shift the raw
probabilities away from the observed win rate, which the calibrator would then
have to undo; an unweighted log-loss objective already estimates the win
probability directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from dealscore.errors import DataValidationError, InsufficientDataError
from dealscore.models.calibration import Calibrator

ID_COLUMNS = ("deal_id", "as_of")

#: Defaults chosen on the validation and calibration slices of a simulated history (never its test
#: slice): outcomes are noisy, so small trees, large leaves, column subsampling and L2 shrinkage
#: generalise better than deep trees.
DEFAULT_WIN_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 300,
    "feature_fraction": 0.5,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 10.0,
    "max_cat_to_onehot": 8,
    "verbose": -1,
}


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


class WinModel:
    """Calibrated LightGBM win-probability model (scikit-learn style)."""

    def __init__(
        self,
        params: Mapping[str, Any] | None = None,
        num_boost_round: int = 2000,
        early_stopping_rounds: int = 100,
        calibration: str = "auto",
        feature_names: Sequence[str] | None = None,
        seed: int = 0,
    ) -> None:
        self.params = params
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.calibration = calibration
        self.feature_names = feature_names
        self.seed = seed

    def _lgb_params(self) -> dict[str, Any]:
        p = {**DEFAULT_WIN_PARAMS, **dict(self.params or {})}
        p.setdefault("seed", self.seed)
        p["objective"] = "binary"
        return p

    def fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        X_val: pd.DataFrame,
        y_val: np.ndarray,
        X_cal: pd.DataFrame,
        y_cal: np.ndarray,
    ) -> WinModel:
        """Fit the booster on (X, y), early-stop on (X_val, y_val), calibrate on (X_cal, y_cal).

        Each pair must come from a later time slice than the previous one, and the
        calibration rows in time order (the calibrator picks isotonic vs Platt on
        a later sub-slice of it).
        """
        y, y_val, y_cal = (np.asarray(v, dtype=float) for v in (y, y_val, y_cal))
        check_binary(y, "training slice")
        check_binary(y_val, "validation slice")
        check_binary(y_cal, "calibration slice")
        self.feature_names_ = feature_columns(X, self.feature_names)
        Xt = select_features(X, self.feature_names_, who="WinModel.fit")
        Xv = select_features(X_val, self.feature_names_, who="WinModel.fit (validation)")
        train = lgb.Dataset(Xt, label=y, free_raw_data=True)
        valid = lgb.Dataset(Xv, label=y_val, reference=train)
        self.evals_result_: dict[str, Any] = {}
        self.booster_ = lgb.train(
            self._lgb_params(), train, num_boost_round=self.num_boost_round,
            valid_sets=[valid], valid_names=["validation"],
            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False),
                       lgb.record_evaluation(self.evals_result_)],
        )
        self.best_iteration_ = int(self.booster_.best_iteration or self.booster_.current_iteration())
        self.calibrator_ = Calibrator(self.calibration).fit(self.predict_raw(X_cal), y_cal)
        self.calibration_method_ = self.calibrator_.method_
        return self

    def predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        """Log-odds before calibration."""
        Xs = select_features(X, self.feature_names_, who="WinModel")
        return np.asarray(self.booster_.predict(Xs, num_iteration=self.best_iteration_, raw_score=True), dtype=float)

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for raw log-odds (used by explanations and what-ifs)."""
        return self.calibrator_.transform(raw)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated win probability per row, shape (n,)."""
        return self.calibrate(self.predict_raw(X))

    def contributions(self, X: pd.DataFrame) -> np.ndarray:
        """Per-feature contributions in log-odds (TreeSHAP); last column is the bias.

        Rows sum to :meth:`predict_raw`; the scoring layer turns them into
        probability points and business reasons.
        """
        Xs = select_features(X, self.feature_names_, who="WinModel")
        out = self.booster_.predict(Xs, num_iteration=self.best_iteration_, pred_contrib=True)
        return np.asarray(out, dtype=float)

    def feature_importance(self, kind: str = "gain") -> pd.Series:
        """Importance per feature (total gain by default), largest first."""
        imp = self.booster_.feature_importance(importance_type=kind, iteration=self.best_iteration_)
        return pd.Series(imp, index=self.feature_names_, dtype=float).sort_values(ascending=False)
