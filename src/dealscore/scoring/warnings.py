"""Risk patterns a sales manager looks for, each with its evidence and threshold.

Every rule reads the deal's features (the same columns the model saw) and,
where history can say what is normal, a threshold learned from won deals of the
same declared stage (:mod:`dealscore.scoring.norms`). Rules are array
expressions so that one deal and a whole pipeline go through the same code.

The stage a rule checks against is the **declared** stage: the warnings speak
to what the rep has recorded ("in proposal, yet pricing was never discussed").
When the CRM gives no stage the inferred one is used instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from dealscore.scoring.columns import Columns
from dealscore.scoring.norms import StageNorms
from dealscore.scoring.result import DealWarning
from dealscore.taxonomy import StageTaxonomy

SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}

#: Stable warning codes, in the order they are listed when of equal severity.
WARNING_CODES = (
    "stage_ahead_of_evidence",
    "stalled_in_stage",
    "gone_quiet",
    "ghosting",
    "no_decision_maker",
    "single_threaded",
    "pricing_not_discussed",
    "close_date_passed",
    "close_date_pushed",
)


@dataclass(frozen=True)
class WarningRules:
    """Fixed thresholds for the rules history cannot calibrate (documented in docs/scoring.md)."""

    #: outbound touches in a row without a customer reply that count as ghosting
    unanswered_touches: int = 3
    #: ... in the earliest stage, where outreach without reply is the normal state
    unanswered_touches_first_stage: int = 5
    #: contacts below which a deal from discovery on is single-threaded
    min_contacts: int = 2
    #: pushes of the expected close date that make a pattern
    close_date_pushes: int = 2
    #: days past the close date after which "passed" becomes high severity
    close_date_overdue_high: int = 30
    #: how many times the learned limit a quiet/stalled deal must exceed to be high severity
    high_ratio: float = 2.0
    #: a silence counts as unusual beyond this many times the 90th-percentile gap between touchpoints
    #: of won deals (silence *so far* at a random moment runs longer than a typical completed gap)
    quiet_factor: float = 2.0


def _stage_order_by_role(taxonomy: StageTaxonomy, name: str, touchpoint: str) -> int | None:
    """0-based order of the stage named ``name``, else of the first stage whose evidence is ``touchpoint``."""
    for i, s in enumerate(taxonomy.stages):
        if s.name == name:
            return i
    for i, s in enumerate(taxonomy.stages):
        if touchpoint in s.key_touchpoints:
            return i
    return None


def _days(x: float) -> str:
    n = round(x)
    return "1 day" if n == 1 else f"{n} days"


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def detect_warnings(
    cols: Columns,
    norms: StageNorms,
    taxonomy: StageTaxonomy,
    *,
    inferred_stage: Sequence[str | None] | None = None,
    mismatch_verdict: Sequence[str] | None = None,
    mismatch_text: Sequence[str] | None = None,
    rules: WarningRules | None = None,
    touchpoints: bool = True,
) -> list[list[DealWarning]]:
    """The warnings of every row of a feature frame, most severe first.

    ``touchpoints=False`` says the CRM records no touchpoints at all (an export of
    deals and stages only): the rules that read touchpoints would then flag every
    deal, so only the stage and close-date rules run.
    """
    r = rules or WarningRules()
    n = cols.n
    out: list[list[DealWarning]] = [[] for _ in range(n)]
    declared = cols.text("declared_stage")
    stage = np.array(
        [d if d is not None else (inferred_stage[i] if inferred_stage is not None else None) for i, d in
         enumerate(declared)],
        dtype=object,
    )
    index = {s: i for i, s in enumerate(taxonomy.names)}
    order = np.array([index.get(s, -1) if s is not None else -1 for s in stage])
    discovery = _stage_order_by_role(taxonomy, "discovery", "decision_maker")
    proposal = _stage_order_by_role(taxonomy, "proposal", "proposal")

    def add(i: int, w: DealWarning) -> None:
        out[i].append(w)

    # stage ahead of evidence (from the stage model's verdict)
    if mismatch_verdict is not None and mismatch_text is not None:
        for i in np.flatnonzero(np.asarray(mismatch_verdict, dtype=object) == "ahead_of_evidence"):
            add(i, DealWarning(
                code="stage_ahead_of_evidence", title="Stage ahead of the evidence",
                evidence=str(mismatch_text[i]).capitalize(),
                threshold="the stage model gives at least 50% to an earlier real stage", severity="high",
            ))

    # stalled in stage: longer than won deals needed
    days_in_stage = cols.num("days_in_stage")
    stall = {s: norms.stall_days(s) for s in set(stage)}
    limit = np.array([stall[s].value for s in stage], dtype=float)
    for i in np.flatnonzero(days_in_stage > limit):
        nm = stall[stage[i]]
        med = norms.median_days(stage[i])
        typical = f"; won deals needed a median of {_days(med)}" if med else ""
        add(i, DealWarning(
            code="stalled_in_stage", title=f"Stalled in {stage[i]}",
            evidence=f"{_days(days_in_stage[i])} in {stage[i]}{typical}",
            threshold=f"more than {_days(nm.value)} ({nm.source('90th percentile of days in stage', stage[i])})",
            severity="high" if days_in_stage[i] > r.high_ratio * limit[i] else "medium",
        ))

    if touchpoints:
        _touchpoint_rules(cols, norms, taxonomy, stage, order, discovery, proposal, r, add)
    _close_date_rules(cols, r, add)

    rank = {c: j for j, c in enumerate(WARNING_CODES)}
    for ws in out:
        if len(ws) > 1:
            ws.sort(key=lambda w: (SEVERITY_ORDER[w.severity], rank.get(w.code, 99)))
    return out


def _touchpoint_rules(cols: Columns, norms: StageNorms, taxonomy: StageTaxonomy, stage: np.ndarray,
                      order: np.ndarray, discovery: int | None, proposal: int | None, r: WarningRules,
                      add: Callable[[int, DealWarning], None]) -> None:
    """Rules that read the touchpoints: silence, ghosting, stakeholders, pricing."""
    age = cols.num("deal_age_days")
    # gone quiet: no touchpoint for longer than usual for this stage
    since_touch = cols.num("days_since_last_touch")
    quiet = np.where(np.isnan(since_touch), age, since_touch)
    gap = {s: norms.gap_days(s) for s in set(stage)}
    gap_limit = r.quiet_factor * np.array([gap[s].value for s in stage], dtype=float)
    times = "twice" if r.quiet_factor == 2 else f"{r.quiet_factor:g}×"
    for i in np.flatnonzero(quiet > gap_limit):
        nm = gap[stage[i]]
        ev = (f"No touchpoint in {_days(quiet[i])}" if not np.isnan(since_touch[i])
              else f"No touchpoint since the deal was opened {_days(quiet[i])} ago")
        add(i, DealWarning(
            code="gone_quiet", title="Gone quiet", evidence=ev,
            threshold=f"more than {_days(gap_limit[i])} without a touchpoint: {times} the "
            f"{nm.source('90th percentile gap between touchpoints', stage[i])}",
            severity="high" if quiet[i] > r.high_ratio * gap_limit[i] else "medium",
        ))

    # ghosting: outreach without replies, and the customer silent for longer than usual
    unanswered = np.nan_to_num(cols.num("n_outbound_unanswered"), nan=0.0)
    since_reply = cols.num("days_since_last_inbound")
    silent = np.where(np.isnan(since_reply), age, since_reply)
    need = np.where(order <= 0, r.unanswered_touches_first_stage, r.unanswered_touches)
    for i in np.flatnonzero((unanswered >= need) & ~(silent <= gap_limit)):
        k = int(unanswered[i])
        last = ("the customer has never replied" if np.isnan(since_reply[i])
                else f"the customer last replied {_days(since_reply[i])} ago")
        add(i, DealWarning(
            code="ghosting", title="Outreach without replies",
            evidence=f"{k} outbound touches since the last customer reply; {last}",
            threshold=f"{int(need[i])} or more unanswered outbound touches in a row (default) and no reply for "
            f"more than {_days(gap_limit[i])} ({times} the usual gap, learned as for gone quiet)",
            severity="high" if k >= 2 * need[i] else "medium",
        ))

    # no decision maker by discovery or later
    dm = np.nan_to_num(cols.num("decision_maker_engaged"), nan=0.0)
    if discovery is not None:
        for i in np.flatnonzero((order >= discovery) & (dm < 1)):
            add(i, DealWarning(
                code="no_decision_maker", title="No decision maker engaged",
                evidence=f"in {stage[i]} and no touchpoint with a decision maker yet",
                threshold=f"a decision maker should be engaged from {taxonomy.names[discovery]} on",
                severity="high" if proposal is not None and order[i] >= proposal else "medium",
            ))

    # single-threaded
    contacts = cols.num("n_contacts")
    if discovery is not None:
        for i in np.flatnonzero((order >= discovery) & (np.nan_to_num(contacts, nan=0.0) < r.min_contacts)):
            c = int(np.nan_to_num(contacts[i], nan=0.0))
            who = "no named contact" if c == 0 else "only one contact"
            add(i, DealWarning(
                code="single_threaded", title="Single-threaded",
                evidence=f"{who} involved in {stage[i]}",
                threshold=f"at least {r.min_contacts} contacts from {taxonomy.names[discovery]} on",
                severity="medium",
            ))

    # pricing never discussed by the proposal stage
    pricing = np.nan_to_num(cols.num("pricing_discussed"), nan=0.0)
    if proposal is not None:
        for i in np.flatnonzero((order >= proposal) & (pricing < 1)):
            add(i, DealWarning(
                code="pricing_not_discussed", title="Pricing never discussed",
                evidence=f"in {stage[i]} but no proposal, contract or pricing touchpoint is logged",
                threshold=f"pricing should be on the table from {taxonomy.names[proposal]} on",
                severity="medium",
            ))



def _close_date_rules(cols: Columns, r: WarningRules, add: Callable[[int, DealWarning], None]) -> None:
    """Rules on the expected close date known at scoring time."""
    to_close = cols.num("days_to_expected_close")
    for i in np.flatnonzero(to_close < 0):
        add(i, DealWarning(
            code="close_date_passed", title="Close date passed",
            evidence=f"the expected close date passed {_days(-to_close[i])} ago and the deal is still open",
            threshold="any open deal past its expected close date",
            severity="high" if -to_close[i] > r.close_date_overdue_high else "medium",
        ))
    pushes = np.nan_to_num(cols.num("close_date_pushes"), nan=0.0)
    for i in np.flatnonzero(pushes >= r.close_date_pushes):
        k = int(pushes[i])
        add(i, DealWarning(
            code="close_date_pushed", title="Close date pushed",
            evidence=f"the expected close date was pushed {_times(k)}",
            threshold=f"{r.close_date_pushes} or more pushes (default)",
            severity="high" if k >= 2 * r.close_date_pushes else "medium",
        ))

