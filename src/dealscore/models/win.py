"""The win model: LightGBM (or a logistic regression, or a blend) on snapshots, calibrated on later deals.

Training chooses the family, the booster's size and its round count by
time-series cross-validation and calibrates on out-of-fold scores
(:mod:`dealscore.training.selection`), then calls :meth:`WinModel.fit_components`.
:meth:`WinModel.fit` keeps the simpler three-slice scheme, each slice with one job
in time order: the booster learns on the training slice, stops adding trees when
the validation slice stops improving, and its raw scores are calibrated on the
calibration slice, which neither of the first two steps saw. There is no class
weighting: weights would shift the raw probabilities away from the observed win
rate, which the calibrator would then have to undo; an unweighted log-loss
objective already estimates the win probability directly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from dealscore.models.calibration import Calibrator
from dealscore.models.inputs import check_binary, feature_columns, select_features
from dealscore.models.linear import LinearLogit

#: Defaults chosen on the validation and calibration slices of a simulated history (never its test
#: slice): outcomes are noisy, so small trees, large leaves, column subsampling and L2 shrinkage
#: generalise better than deep trees. ``force_col_wise``: with about a hundred features and 100,000+ rows
#: LightGBM's column-wise histograms are the faster layout here (10 % per fit on a 100,000-deal history), and
#: forcing it skips the trial of both layouts LightGBM otherwise runs at the start of every fit.
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
    "force_col_wise": True,
    "verbose": -1,
}


FAMILIES = ("lightgbm", "logistic", "blend")


class WinModel:
    """Calibrated win-probability model: LightGBM, a logistic regression, or a blend of their log-odds.

    ``blend_weight`` is the booster's share of the raw log-odds (1 = LightGBM alone,
    0 = the logistic regression alone); training chooses it by time-series
    cross-validation (:mod:`dealscore.training.selection`). Whatever the mix, the
    model exposes one raw score, one calibrator and per-feature contributions that
    sum to the raw score, so the scorer serves and explains every family alike.
    """

    def __init__(
        self,
        params: Mapping[str, Any] | None = None,
        num_boost_round: int = 2000,
        early_stopping_rounds: int = 100,
        calibration: str = "auto",
        feature_names: Sequence[str] | None = None,
        seed: int = 0,
        blend_weight: float = 1.0,
        linear_c: float = 1.0,
    ) -> None:
        self.params = params
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.calibration = calibration
        self.feature_names = feature_names
        self.seed = seed
        self.blend_weight = blend_weight
        self.linear_c = linear_c

    def _lgb_params(self) -> dict[str, Any]:
        p = {**DEFAULT_WIN_PARAMS, **dict(self.params or {})}
        p.setdefault("seed", self.seed)
        p["objective"] = "binary"
        return p

    @property
    def family(self) -> str:
        """``lightgbm``, ``logistic`` or ``blend``."""
        w = self.weight_
        return "lightgbm" if w >= 1 else "logistic" if w <= 0 else "blend"

    @property
    def weight_(self) -> float:
        """The booster's share of the raw score (1 for bundles written before blends existed)."""
        return float(getattr(self, "blend_weight_", 1.0))

    @property
    def linear(self) -> LinearLogit | None:
        """The fitted logistic part, when the model has one."""
        return getattr(self, "linear_", None)

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
        calibration rows in time order (the calibrator picks its method on a later
        sub-slice of it).
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
        self._fit_linear(Xt, y)
        self.calibrator_ = Calibrator(self.calibration).fit(self.predict_raw(X_cal), y_cal)
        self.calibration_method_ = self.calibrator_.method_
        return self

    def fit_components(self, X: pd.DataFrame, y: np.ndarray) -> WinModel:
        """Fit the booster (exactly ``num_boost_round`` rounds) and/or the logistic part on (X, y), uncalibrated.

        Used when the round count, the blend weight and the calibrator were chosen by
        cross-validation; attach the calibrator with :meth:`with_calibrator`.
        """
        y = np.asarray(y, dtype=float)
        check_binary(y, "training slice")
        self.feature_names_ = feature_columns(X, self.feature_names)
        Xt = select_features(X, self.feature_names_, who="WinModel.fit")
        self.evals_result_ = {}
        if self.blend_weight > 0:
            self.booster_ = lgb.train(self._lgb_params(), lgb.Dataset(Xt, label=y, free_raw_data=True),
                                      num_boost_round=self.num_boost_round)
            self.best_iteration_ = int(self.num_boost_round)
        else:
            self.booster_, self.best_iteration_ = None, 0
        self._fit_linear(Xt, y)
        return self

    def _fit_linear(self, X: pd.DataFrame, y: np.ndarray) -> None:
        self.blend_weight_ = float(np.clip(self.blend_weight, 0.0, 1.0))
        self.linear_ = (LinearLogit(self.feature_names_, C=self.linear_c).fit(X, y) if self.blend_weight_ < 1
                        else None)

    def with_calibrator(self, calibrator: Calibrator) -> WinModel:
        """Attach a calibrator fitted elsewhere (on out-of-fold scores); returns self."""
        self.calibrator_ = calibrator
        self.calibration_method_ = getattr(calibrator, "variant_", calibrator.method_)
        return self

    def predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        """Log-odds before calibration."""
        Xs = select_features(X, self.feature_names_, who="WinModel")
        return self.mix(lambda: np.asarray(self.booster_.predict(Xs, num_iteration=self.best_iteration_,
                                                                 raw_score=True), dtype=float),
                        lambda lin: lin.raw_matrix(lin.matrix(Xs)))

    def mix(self, booster_part: Callable[[], np.ndarray], linear_part: Callable[[LinearLogit], np.ndarray]
            ) -> np.ndarray:
        """``weight * booster_part() + (1 - weight) * linear_part(linear)``, calling only the parts in use.

        The one place the blend rule lives: the DataFrame methods here and the
        scorer's matrix path both go through it.
        """
        w, lin = self.weight_, self.linear
        if lin is None or w >= 1:
            return booster_part()
        if w <= 0:
            return linear_part(lin)
        return w * booster_part() + (1 - w) * linear_part(lin)

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for raw log-odds (used by explanations and what-ifs)."""
        return self.calibrator_.transform(raw)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated win probability per row, shape (n,)."""
        return self.calibrate(self.predict_raw(X))

    def contributions(self, X: pd.DataFrame) -> np.ndarray:
        """Per-feature contributions in log-odds (TreeSHAP, and/or the linear terms); last column is the bias.

        Rows sum to :meth:`predict_raw`; the scoring layer turns them into
        probability points and business reasons.
        """
        Xs = select_features(X, self.feature_names_, who="WinModel")
        return self.mix(lambda: np.asarray(self.booster_.predict(Xs, num_iteration=self.best_iteration_,
                                                                 pred_contrib=True), dtype=float),
                        lambda lin: lin.contributions_matrix(lin.matrix(Xs)))

    def feature_importance(self, kind: str = "gain") -> pd.Series:
        """Importance per feature (the booster's total gain; a logistic model's spread of each term), largest first."""
        if self.booster_ is None:
            imp = np.asarray(self.linear.term_std_)
        else:
            imp = self.booster_.feature_importance(importance_type=kind, iteration=self.best_iteration_)
        return pd.Series(imp, index=self.feature_names_, dtype=float).sort_values(ascending=False)
