"""The real-stage model: LightGBM multiclass predicting where a deal really stands.

It learns the real stage (audited ``stage_truth`` or the retrospective rule of
the labels) from the evidence in the features: touchpoints, contacts, pricing,
timing. The declared CRM stage may be one input among many (``use_declared_stage``),
but the point of the model is to correct it, so the evaluation reports how much
of the model's gain comes from it and compares the model against trusting the
declared stage outright.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from dealscore.errors import DataValidationError
from dealscore.models.inputs import feature_columns, select_features

#: Multiclass boosting grows one tree per stage per round, so the defaults favour few rounds
#: (a higher learning rate) and coarse histograms: the real stage is well determined by evidence.
DEFAULT_STAGE_PARAMS: dict[str, Any] = {
    "learning_rate": 0.15,
    "num_leaves": 15,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.7,
    "bagging_fraction": 0.7,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "max_bin": 63,
    "max_cat_to_onehot": 8,
    "verbose": -1,
}


class StageModel:
    """Multiclass LightGBM over the taxonomy's stages (scikit-learn style).

    ``stages`` fixes the class order (taxonomy order), so probabilities line up
    with the taxonomy even when a stage never occurs in the training slice.
    """

    def __init__(
        self,
        stages: Sequence[str],
        params: Mapping[str, Any] | None = None,
        num_boost_round: int = 500,
        early_stopping_rounds: int = 20,
        feature_names: Sequence[str] | None = None,
        use_declared_stage: bool = True,
        seed: int = 0,
    ) -> None:
        self.stages = stages
        self.params = params
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.feature_names = feature_names
        self.use_declared_stage = use_declared_stage
        self.seed = seed

    def _encode(self, y: Sequence[str] | pd.Series, where: str) -> np.ndarray:
        lookup = {s: i for i, s in enumerate(self.classes_)}
        ys = pd.Series(np.asarray(y, dtype=object))
        codes = ys.map(lookup)
        bad = codes.isna()
        if bad.any():
            raise DataValidationError(
                f"{where}: real-stage labels {sorted(set(ys[bad].astype(str)))[:5]} are not configured stages "
                f"{self.classes_}", table="labels", column="real_stage",
                fix="map them in the taxonomy YAML or correct stage_truth",
            )
        return codes.to_numpy(dtype=int)

    def fit(
        self, X: pd.DataFrame, y: Sequence[str] | pd.Series, X_val: pd.DataFrame, y_val: Sequence[str] | pd.Series
    ) -> StageModel:
        """Fit on the training slice, early-stopping on the later validation slice."""
        self.classes_ = list(self.stages)
        names = feature_columns(X, self.feature_names)
        if not self.use_declared_stage:
            names = [c for c in names if c not in ("declared_stage", "declared_stage_order")]
        self.feature_names_ = names
        yt, yv = self._encode(y, "training slice"), self._encode(y_val, "validation slice")
        self.warnings_: list[str] = []
        if len(np.unique(yt)) < 2:
            # A CRM export without stage evidence (e.g. one stage row per deal) leaves nothing to learn: the
            # model then honestly predicts the only stage seen, and the report says so instead of failing.
            self.warnings_.append(
                f"every training snapshot has the real stage {self.classes_[int(yt[0])]!r}: the history carries "
                "no evidence of stage progress, so the stage model can only repeat that stage"
            )
        params = {**DEFAULT_STAGE_PARAMS, **dict(self.params or {}),
                  "objective": "multiclass", "num_class": len(self.classes_)}
        params.setdefault("seed", self.seed)
        train = lgb.Dataset(select_features(X, names, who="StageModel.fit"), label=yt)
        valid = lgb.Dataset(select_features(X_val, names, who="StageModel.fit (validation)"), label=yv,
                            reference=train)
        self.booster_ = lgb.train(
            params, train, num_boost_round=self.num_boost_round, valid_sets=[valid], valid_names=["validation"],
            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
        )
        self.best_iteration_ = int(self.booster_.best_iteration or self.booster_.current_iteration())
        return self

    def predict_proba(self, X: pd.DataFrame) -> pd.DataFrame:
        """Probability of each stage per row; columns are stage names in taxonomy order."""
        Xs = select_features(X, self.feature_names_, who="StageModel")
        p = np.asarray(self.booster_.predict(Xs, num_iteration=self.best_iteration_), dtype=float)
        return pd.DataFrame(p.reshape(len(Xs), len(self.classes_)), columns=self.classes_, index=X.index)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Most likely real stage per row."""
        proba = self.predict_proba(X)
        return np.asarray(self.classes_, dtype=object)[proba.to_numpy().argmax(axis=1)]

    def confidence(self, X: pd.DataFrame) -> np.ndarray:
        """Probability of the predicted stage (how sure the model is)."""
        return self.predict_proba(X).to_numpy().max(axis=1)

    def feature_importance(self, kind: str = "gain") -> pd.Series:
        """Importance per feature (total gain over all classes), largest first."""
        imp = self.booster_.feature_importance(importance_type=kind, iteration=self.best_iteration_)
        return pd.Series(imp, index=self.feature_names_, dtype=float).sort_values(ascending=False)
