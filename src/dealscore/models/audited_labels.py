"""Partial audits teach the labeler: learn from the audited deals how the history maps to the real stage.

Where some deals carry audited stages (``stage_truth``), they show directly how this
company's record and evidence relate to where its deals really stood: how late its
reps type stages in, which evidence comes early (a demo given in discovery), which
stages leave no trace. :class:`AuditedLabelModel` learns that mapping, a small
LightGBM classifier over what :meth:`StageLabeler.hindsight_frame
<dealscore.models.stage_labels.StageLabeler.hindsight_frame>` reads about each
snapshot (evidence, record and the labeler's own estimate, relative to the
snapshot, plus the outcome), fitted on the audited deals' snapshots, and labels
the deals nobody audited. It is used only where it beats the labeler on audited
deals it did not learn from; otherwise the labeler's labels stand. Labels only: its
inputs look past the snapshot, the real-time stage model never reads them.
"""

from __future__ import annotations

from collections.abc import Sequence

import lightgbm as lgb
import numpy as np
import pandas as pd

from dealscore.errors import DataValidationError

#: Few, shallow trees: a few hundred audited deals are enough to learn a company's recording habits.
DEFAULT_PARAMS = {
    "learning_rate": 0.1,
    "num_leaves": 15,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbose": -1,
}


class AuditedLabelModel:
    """Real-stage labels for unaudited deals, learned from audited ones (scikit-learn style).

    ``fit`` holds out ``holdout_share`` of the audited deals, early-stops on them and
    compares the model with the labeler's own stage (column ``labeler_stage``) there:
    ``holdout_accuracy_`` holds both. ``used_`` is True when the model is the better
    one; it is then refitted on every audited deal with the chosen number of rounds.
    Below ``min_deals`` audited deals nothing is learned (``used_`` False).
    """

    def __init__(
        self,
        stages: Sequence[str],
        min_deals: int = 100,
        holdout_share: float = 0.25,
        num_boost_round: int = 400,
        early_stopping_rounds: int = 20,
        num_threads: int = 0,
        seed: int = 0,
    ) -> None:
        self.stages = stages
        self.min_deals = min_deals
        self.holdout_share = holdout_share
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.num_threads = num_threads
        self.seed = seed

    def _codes(self, real_stage: Sequence[object]) -> np.ndarray:
        codes = pd.Index(list(self.stages)).get_indexer(pd.Series(list(real_stage), dtype=object))
        if (codes < 0).any():
            raise DataValidationError("audited stages outside the taxonomy reached AuditedLabelModel.fit",
                                      table="stage_truth", column="stage",
                                      fix="map them in the taxonomy YAML or correct stage_truth")
        return codes

    def fit(self, frame: pd.DataFrame, real_stage: Sequence[object], deal_ids: Sequence[object]) -> AuditedLabelModel:
        """Learn from the audited snapshots: ``frame`` (hindsight readings), their audited stage and deal."""
        y = self._codes(real_stage)
        deals = pd.unique(np.asarray(deal_ids, dtype=object))
        self.n_audited_deals_ = len(deals)
        self.used_ = False
        self.holdout_accuracy_: dict[str, float] = {}
        if len(deals) < self.min_deals:
            return self
        rng = np.random.default_rng(self.seed)
        held = set(deals[rng.random(len(deals)) < self.holdout_share])
        hold = pd.Series(np.asarray(deal_ids, dtype=object)).isin(held).to_numpy()
        params = {**DEFAULT_PARAMS, "objective": "multiclass", "num_class": len(self.stages),
                  "num_threads": self.num_threads, "seed": self.seed}
        train = lgb.Dataset(frame[~hold], label=y[~hold])
        valid = lgb.Dataset(frame[hold], label=y[hold], reference=train)
        probe = lgb.train(params, train, num_boost_round=self.num_boost_round, valid_sets=[valid],
                          callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)])
        rounds = int(probe.best_iteration or probe.current_iteration())
        guess = np.asarray(probe.predict(frame[hold], num_iteration=rounds)).argmax(axis=1)
        labeler = frame.loc[hold, "labeler_stage"].to_numpy()
        self.holdout_accuracy_ = {"labeler": float((labeler == y[hold]).mean()),
                                  "audited_model": float((guess == y[hold]).mean()), "deals": len(held)}
        self.used_ = self.holdout_accuracy_["audited_model"] > self.holdout_accuracy_["labeler"]
        if self.used_:
            self.booster_ = lgb.train(params, lgb.Dataset(frame, label=y), num_boost_round=rounds)
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """The most likely real stage of each snapshot (only meaningful when ``used_``)."""
        p = np.asarray(self.booster_.predict(frame)).reshape(len(frame), len(self.stages))
        return np.asarray(self.stages, dtype=object)[p.argmax(axis=1)]


__all__ = ["AuditedLabelModel"]
