"""The vectorised scoring core shared by one-deal scoring, batch scoring and the API.

A block of snapshots goes through: one feature build, one win-model call, one
stage-model call, array rules for mismatch and warnings, and, when asked, one
``pred_contrib`` call for the reasons and one more feature build + predict for
all candidate actions of all deals (each as a copy of its deal with the action's
touchpoint added). The result is a :class:`ScoredBlock` of aligned arrays that
turns into :class:`~dealscore.scoring.result.ScoreResult` objects or a flat
DataFrame for files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from dealscore.forecast.close_time import BUCKET_EDGES, describe_closes
from dealscore.scoring.result import CloseOutlook, NextAction, Reason, ScoreResult
from dealscore.scoring.warnings import WarningHits

#: Columns of the batch output (``dealscore score --out``), in order.
FRAME_COLUMNS = (
    "deal_id", "as_of", "account_id", "owner_id", "team", "amount", "p_win", "grade", "declared_stage",
    "inferred_stage", "inferred_stage_probability", "stage_mismatch", "mismatch_explanation", "stage_typical_p_win",
    "value_at_risk", "n_warnings", "warnings", "model_version",
)
#: Display columns the scorer carries from the history when it has them (never features).
LABEL_COLUMNS = ("deal_name", "account_name", "owner_name", "currency", "expected_close_date")


@dataclass
class ScoredBlock:
    """Scores of a block of snapshots as aligned arrays and per-row lists."""

    deal_id: np.ndarray
    as_of: np.ndarray
    account_id: np.ndarray
    owner_id: np.ndarray
    team: np.ndarray
    amount: np.ndarray
    p_win: np.ndarray
    grade: np.ndarray
    declared_stage: np.ndarray
    inferred_stage: np.ndarray
    inferred_probability: np.ndarray
    stage_proba: np.ndarray
    stage_names: list[str]
    verdict: np.ndarray
    explanation: np.ndarray
    typical: np.ndarray
    value_at_risk: np.ndarray
    warnings: WarningHits
    model_version: str
    #: display columns (``LABEL_COLUMNS``): names, currency, expected close date; ``None`` when unknown
    labels: dict[str, np.ndarray] | None = None
    base_points: np.ndarray | None = None
    reasons_up: list[list[Reason]] | None = None
    reasons_down: list[list[Reason]] | None = None
    other_points: np.ndarray | None = None
    actions: list[list[NextAction]] | None = None
    #: P(close in each time-to-close bucket | won), rows × buckets (None: the bundle has no time-to-close model)
    close_pmf: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.deal_id)

    def results(self) -> list[ScoreResult]:
        """One validated :class:`ScoreResult` per row (pydantic's compiled validation costs microseconds)."""
        n = len(self)
        as_of = _py_datetimes(self.as_of)
        p = self.p_win.tolist()
        probs = np.round(self.stage_proba, 6).tolist()
        ip = self.inferred_probability.tolist()
        typical = [None if t != t else t for t in self.typical.tolist()]
        amount = [None if a != a else a for a in self.amount.tolist()]
        var = self.value_at_risk.tolist()
        base = self.base_points.tolist() if self.base_points is not None else [None] * n
        other = self.other_points.tolist() if self.other_points is not None else [None] * n
        warnings = self.warnings.lists()
        labels = {k: v.tolist() for k, v in (self.labels or {}).items()}
        outlooks = self.close_outlooks()
        out = []
        for i in range(n):
            out.append(ScoreResult(
                **{k: v[i] for k, v in labels.items()},
                deal_id=self.deal_id[i], as_of=as_of[i], account_id=self.account_id[i], owner_id=self.owner_id[i],
                team=self.team[i], amount=amount[i], p_win=p[i], grade=self.grade[i],
                declared_stage=self.declared_stage[i], inferred_stage=self.inferred_stage[i],
                inferred_stage_probability=ip[i], stage_probabilities=dict(zip(self.stage_names, probs[i],
                                                                                 strict=True)),
                stage_mismatch=self.verdict[i], mismatch_explanation=self.explanation[i],
                stage_typical_p_win=typical[i],
                reasons_up=self.reasons_up[i] if self.reasons_up is not None else [],
                reasons_down=self.reasons_down[i] if self.reasons_down is not None else [],
                base_points=base[i], other_points=other[i], warnings=warnings[i],
                actions=self.actions[i] if self.actions is not None else [],
                value_at_risk=var[i], previous_p_win=None, close_outlook=outlooks[i],
                model_version=self.model_version,
            ))
        return out

    def close_outlooks(self) -> list[CloseOutlook | None]:
        """Each deal's close outlook ("likely to close: Aug–Sep (58% this quarter if won)"), when the model has one."""
        if self.close_pmf is None:
            return [None] * len(self)
        edges = [float(e) for e in BUCKET_EDGES]
        described = describe_closes(self.close_pmf, self.as_of)
        rounded = np.round(self.close_pmf, 6).tolist()
        return [CloseOutlook(**described.row(i), bucket_days=edges, bucket_probabilities=rounded[i])
                for i in range(len(self))]

    def frame(self) -> pd.DataFrame:
        """Flat table for files: one row per deal, lists joined as text."""
        n_warnings, warnings = self.warnings.joined_codes()
        out = pd.DataFrame({
            "deal_id": self.deal_id, "as_of": pd.DatetimeIndex(self.as_of), "account_id": self.account_id,
            "owner_id": self.owner_id, "team": self.team, "amount": self.amount, "p_win": self.p_win,
            "grade": self.grade, "declared_stage": self.declared_stage, "inferred_stage": self.inferred_stage,
            "inferred_stage_probability": self.inferred_probability, "stage_mismatch": self.verdict,
            "mismatch_explanation": self.explanation, "stage_typical_p_win": self.typical,
            "value_at_risk": self.value_at_risk,
            "n_warnings": n_warnings, "warnings": warnings,
            "model_version": self.model_version,
        })
        for name, values in (self.labels or {}).items():
            out[name] = values
        for j, s in enumerate(self.stage_names):
            out[f"p_stage_{s}"] = self.stage_proba[:, j]
        if self.close_pmf is not None:
            described = describe_closes(self.close_pmf, self.as_of)  # arrays: a batch has no per-row objects
            out["close_likely"] = described.likely()
            out["close_p_this_quarter_if_won"] = described.p_this_quarter()
        if self.reasons_up is not None and self.reasons_down is not None:
            out["base_points"] = self.base_points
            out["reasons_up"] = ["; ".join(r.display for r in rs) for rs in self.reasons_up]
            out["reasons_down"] = ["; ".join(r.display for r in rs) for rs in self.reasons_down]
        if self.actions is not None:
            out["top_action"] = [a[0].text if a else None for a in self.actions]
            out["top_action_change"] = [a[0].expected_change if a else np.nan for a in self.actions]
        return out


def _py_datetimes(values: np.ndarray) -> list[datetime]:
    """Times as ``datetime`` objects, what ``DatetimeIndex.to_pydatetime`` gives.

    Whole-microsecond naive times (every validated history's) convert through
    NumPy's microsecond unit, exactly and without building an index; anything
    else (nanoseconds, time zones) goes through pandas.
    """
    if isinstance(values, np.ndarray) and values.dtype == np.dtype("datetime64[ns]"):
        ns = values.view(np.int64)
        if not (ns % 1000).any() and not np.isnat(values).any():
            return values.astype("datetime64[us]").tolist()
    return list(pd.DatetimeIndex(values).to_pydatetime())
