"""The typed result of scoring one deal: what the API returns and the store keeps.

It lives in the library (not the service) because batch scoring, the at-risk
ranking, the CLI and the HTTP API all hand out the same object.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field, computed_field

from dealscore.wording import percent_text, points_text

Grade = Literal["A", "B", "C", "D"]


Mismatch = Literal["ahead_of_evidence", "behind_evidence", "consistent", "unknown"]


class Reason(BaseModel):
    """One business-level reason moving the score, in a rep's words."""

    group: str = Field(description="business meaning the underlying features were grouped under")
    text: str = Field(description="e.g. 'No reply from the customer in 21 days'")
    points: float = Field(description="contribution in probability points (+6.0 means +6 pts)")
    features: list[str] = Field(default_factory=list, description="feature columns behind the reason")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def display(self) -> str:
        """The reason as a rep reads it: 'No reply from the customer in 21 days (−9 pts)'."""
        return f"{self.text} ({points_text(self.points)})"


class DealWarning(BaseModel):
    """A risk pattern found in the deal, with its evidence and the threshold used."""

    code: str = Field(description="stable id, e.g. 'gone_quiet', 'single_threaded'")
    title: str
    evidence: str = Field(description="the facts that triggered it")
    threshold: str | None = Field(default=None, description="the limit and where it was learned from")
    severity: Literal["low", "medium", "high"] = "medium"
    precision: float | None = Field(
        default=None, ge=0, le=1,
        description="share of the company's closed training deals flagged like this that were followed by a loss "
                    "(the learned threshold's track record); absent when a fixed rule fired")
    support: int | None = Field(default=None, ge=0,
                                description="closed training deals the precision was measured on")


class NextAction(BaseModel):
    """A concrete next step the rep can attempt, ranked by its expected change in win probability.

    ``expected_change = shrink · (p_respond · change_if_responds + (1 − p_respond) · change_if_unanswered)``
    where ``p_respond`` is how often customers of deals like this took such an
    attempt up in the same episode (learned from the history's outreach and replies),
    ``change_if_responds`` is the move the response makes to the deal's state (its
    real stage and episode, valued by the company's own win rates per state among
    deals with the same silence and unanswered chase so far),
    ``change_if_unanswered`` is 0 (an attempt nobody answers leaves the customer's
    state as it was), and ``shrink = similar_deals / (similar_deals + 10)``.
    """

    code: str
    text: str = Field(description="e.g. 'Book a discovery meeting with the decision maker'")
    stage: str = Field(description="the stage of the playbook this action belongs to")
    expected_change: float = Field(
        description="expected change in p_win (probability points) if attempted now, counting the chance that "
                    "the customer does not take it up; an estimate from past deals, not a causal guarantee"
    )
    reason: str
    p_respond: float | None = Field(default=None, description="P(the customer takes it up | deals like this now)")
    change_if_responds: float | None = Field(
        default=None, description="points if the customer takes it up: the odds of the state the response moves "
                                  "the deal to (real stage and episode, e.g. a quiet deal active again) over the "
                                  "state it is in now")
    change_if_unanswered: float | None = Field(
        default=None, description="points of the attempt left unanswered: 0, an attempt nobody answers leaves the "
                                  "customer's state as it was (its drop in the win model's re-score is a symptom of "
                                  "deals already in trouble, not an effect)")
    interval_low: float | None = Field(default=None, description="80% interval of the expected change, low end")
    interval_high: float | None = Field(default=None, description="80% interval of the expected change, high end")
    similar_deals: int | None = Field(default=None, description="past deals the response rate rests on")
    response_text: str | None = Field(default=None, description="the outcome that counts as taking it up")


class CloseOutlook(BaseModel):
    """When the deal is likely to close if it is won (the time-to-close model's distribution)."""

    text: str = Field(description="e.g. 'likely to close: Aug–Sep (58% this quarter if won)'")
    likely: str = Field(description="the likely months in words, e.g. 'Aug–Sep'")
    likely_months: list[str] = Field(description="the shortest run of months holding half the close-time mass")
    this_quarter: str
    p_this_quarter_if_won: float = Field(ge=0.0, le=1.0)
    bucket_days: list[float] = Field(description="bucket edges in days after as_of")
    bucket_probabilities: list[float] = Field(description="P(close in each bucket | won); the forecast draws on it")


class ScoreResult(BaseModel):
    """Everything dealscore says about one deal at one time."""

    deal_id: str
    as_of: datetime
    account_id: str | None = None
    owner_id: str | None = None
    team: str | None = None
    amount: float | None = None
    notices: list[str] = Field(
        default_factory=list,
        description="about the input and the model rather than the deal: touchpoints dropped, a model trained "
        "on a different history",
    )
    deal_name: str | None = Field(default=None, description="the deal's name in the CRM (display only)")
    account_name: str | None = Field(default=None, description="the customer's name (display only)")
    owner_name: str | None = Field(default=None, description="the owner's name (display only)")
    currency: str | None = Field(default=None, description="ISO 4217 code of amount and value_at_risk")
    expected_close_date: date | None = Field(default=None, description="the deal's current expected close date")
    p_win: float = Field(ge=0.0, le=1.0, description="calibrated probability of winning")
    grade: Grade
    declared_stage: str | None = None
    inferred_stage: str
    inferred_stage_probability: float = Field(ge=0.0, le=1.0)
    stage_probabilities: dict[str, float] = Field(default_factory=dict)
    stage_mismatch: Mismatch
    mismatch_explanation: str
    stage_typical_p_win: float | None = Field(
        default=None, description="historical win rate of deals in the same declared stage"
    )
    reasons_up: list[Reason] = Field(default_factory=list)
    reasons_down: list[Reason] = Field(default_factory=list)
    base_points: float | None = Field(default=None, description="the model's average score before reasons (pts)")
    other_points: float | None = Field(
        default=None,
        description="points of the factors not shown as reasons; base + reasons + other = 100 × p_win",
    )
    warnings: list[DealWarning] = Field(default_factory=list)
    actions: list[NextAction] = Field(default_factory=list)
    value_at_risk: float | None = Field(
        default=None,
        description="money at risk: amount × max(0, stage_typical_p_win − p_win), never more than the amount",
    )
    priority: float | None = Field(
        default=None,
        description="what orders the at-risk list: value at risk × the urgency of its warnings and score drop",
    )
    risk_level: Literal["high", "medium", "low"] | None = Field(
        default=None, description="high: top decile of priority in the list ranked; medium: next two deciles",
    )
    previous_p_win: float | None = Field(
        default=None, description="the deal's previous score, when supplied (a drop raises value at risk)"
    )
    close_outlook: CloseOutlook | None = Field(
        default=None, description="when it is likely to close if won (absent when the model has no time-to-close part)"
    )
    model_version: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def p_win_display(self) -> str:
        """``p_win`` as shown to people: '37%', '<1%' or '>99%' (never a false 0% or 100%)."""
        return percent_text(self.p_win)
