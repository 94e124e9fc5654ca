"""The promotion gate: a new model takes the ``champion`` alias only if it is not worse.

Both models are scored on the *same* rows, the new run's most recent holdout
(test slice), so the comparison is not flattered by a different period. The new
version is promoted when there is no champion, or when its log loss is at most
``log_loss_tolerance`` above the champion's and its ROC AUC at most
``auc_tolerance`` below. Otherwise it becomes ``challenger`` and the reasons say
by how much it lost. A metric that passes reads ``better``, ``the same`` or
``within tolerance`` (worse, but by no more than the tolerance).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dealscore.training.config import GateConfig


@dataclass
class GateDecision:
    """Outcome of the gate: promote or not, and why (sentences for the CLI)."""

    promote: bool
    reasons: list[str] = field(default_factory=list)
    champion_version: str | None = None
    new: dict[str, Any] = field(default_factory=dict)
    champion: dict[str, Any] = field(default_factory=dict)

    @property
    def alias(self) -> str:
        """The alias the new version gets."""
        return "champion" if self.promote else "challenger"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the report and MLflow tags."""
        return {"promote": self.promote, "alias": self.alias, "reasons": self.reasons,
                "champion_version": self.champion_version, "new": self.new, "champion": self.champion}


def decide(
    new: dict[str, Any], champion: dict[str, Any] | None, config: GateConfig, champion_version: str | None = None,
    *, unusable: str | None = None, replaceable: bool = False,
) -> GateDecision:
    """Compare the new model's holdout metrics with the champion's on the same holdout.

    ``unusable`` says why the champion could not be scored on that holdout (no
    comparison was made). The new version then replaces it only when
    ``replaceable`` (this installation could not serve the champion either);
    otherwise it is held as challenger, since an uncompared model must not
    displace one that may still be serving.
    """
    if unusable is not None:
        outcome = ("; this installation could not serve it either, so the new version replaces it" if replaceable
                   else "; the models were not compared, so the new version is held as challenger (check the "
                   "champion, or promote the new version with `dealscore promote`)")
        return GateDecision(replaceable, [unusable + outcome], champion_version, new, {})
    if champion is None:
        return GateDecision(True, ["no champion yet: the first registered model becomes champion"], None, new, {})
    reasons: list[str] = []
    ok = True
    ll_new, ll_old = new.get("log_loss"), champion.get("log_loss")
    if ll_new is not None and ll_old is not None:
        if ll_new > ll_old + config.log_loss_tolerance:
            ok = False
            reasons.append(f"log loss {ll_new:.4f} is worse than champion v{champion_version}'s {ll_old:.4f} "
                           f"by more than the tolerance {config.log_loss_tolerance}")
        else:
            reasons.append(f"log loss {ll_new:.4f} vs champion {ll_old:.4f} ({_standing(ll_new, ll_old, False)})")
    auc_new, auc_old = new.get("roc_auc"), champion.get("roc_auc")
    if auc_new is not None and auc_old is not None:
        if auc_new < auc_old - config.auc_tolerance:
            ok = False
            reasons.append(f"ROC AUC {auc_new:.4f} is below champion v{champion_version}'s {auc_old:.4f} "
                           f"by more than the tolerance {config.auc_tolerance}")
        else:
            reasons.append(f"ROC AUC {auc_new:.4f} vs champion {auc_old:.4f} ({_standing(auc_new, auc_old, True)})")
    if auc_new is None or auc_old is None or ll_new is None or ll_old is None:
        ok = False
        reasons.append("the holdout lacks a metric to compare on (one outcome class only?); keeping the champion")
    return GateDecision(ok, reasons, champion_version, new, champion)


def _standing(new: float, old: float, higher_is_better: bool) -> str:
    """How a metric the gate let pass compares: ``better``, ``the same`` or ``within tolerance`` (worse, by no more
    than the tolerance).

    Judged on the four decimals the reason shows, so the words never contradict the numbers beside them;
    "within tolerance" for a clearly better model read as if it had barely passed.
    """
    gain = round(new, 4) - round(old, 4)
    if round(gain, 4) == 0:
        return "the same"
    return "better" if (gain > 0) == higher_is_better else "within tolerance"
