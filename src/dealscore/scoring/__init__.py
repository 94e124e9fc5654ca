"""Scoring: the library's single entry point for p_win, real stage, reasons, warnings and actions.

``Scorer(bundle).score(history)`` for one deal, ``score_many`` / ``score_frame``
for a pipeline, :func:`at_risk` for the Monday ranking. Everything returns
:class:`ScoreResult` (or its flat table form).
"""

from dealscore.scoring.at_risk import at_risk, value_at_risk
from dealscore.scoring.result import DealWarning, NextAction, Reason, ScoreResult
from dealscore.scoring.scorer import Scorer

__all__ = ["DealWarning", "NextAction", "Reason", "ScoreResult", "Scorer", "at_risk", "value_at_risk"]
