"""One deal's page: its latest score, history chart and timeline of touchpoints, stage changes and moves."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from dealscore.scoring import value_at_risk
from dealscore.scoring.result import ScoreResult
from dealscore.taxonomy import StageTaxonomy
from dealscore.times import naive_utc
from dealscore_service.auth import Principal
from dealscore_service.store import ScoreStore, StoredScore
from dealscore_service.trend import trend_of
from dealscore_service.ui.charts import HistoryPoint
from dealscore_service.ui.data.query import stage_order
from dealscore_service.ui.format import money, pct
from dealscore_service.ui.icons import type_label

HISTORY_LIMIT = 200
MOVE_POINTS = 3.0  # a win-probability change smaller than this is not a timeline event
MAX_TOUCHPOINTS = 60  # the most recent touchpoints shown on the timeline
#: The timeline opens on the last few weeks before its newest event; "show all" opens the rest.
RECENT_DAYS = 28
#: How a contact role reads after "with" (other configured roles read "the <role>").
ROLE_PHRASES = {"decision_maker": "the decision maker", "champion": "the champion", "influencer": "an influencer",
                "user": "a user", "other": "another contact"}


@dataclass(frozen=True)
class TimelineEvent:
    """One entry of the deal's timeline: a touchpoint, a CRM stage change, or what changed between two scores.

    ``channel`` (the activity type) and ``direction`` are set for touchpoints,
    so the page can draw the type's icon and mark inbound ones; ``text`` always
    says everything in words.
    """

    when: datetime
    kind: Literal["scored", "stage", "evidence", "up", "down", "warning", "cleared", "closed", "touch"]
    text: str
    detail: str | None = None
    channel: str | None = None
    direction: str | None = None


@dataclass(frozen=True)
class TouchSummary:
    """The touchpoints of the latest score in one line: how many of each type, inbound share, last inbound."""

    total: int
    by_type: list[tuple[str, int]]
    inbound: int
    last_inbound: datetime | None


@dataclass
class DealView:
    """Everything the deal page shows."""

    deal_id: str
    latest: ScoreResult
    stored: StoredScore
    is_open: bool
    value_at_risk: float
    trend: str
    trend_change: float | None
    history: list[HistoryPoint]
    scores: list[StoredScore]
    events: list[TimelineEvent]
    reasons_scale: float
    stage_rows: list[tuple[str, float, bool]] = field(default_factory=list)
    touchpoints_kept: bool = False
    touchpoints_hidden: int = 0
    stage_changes_kept: bool = False
    touch_summary: TouchSummary | None = None
    all_touchpoints: bool = False
    #: events older than the last :data:`RECENT_DAYS` days, left out until "show all"
    events_hidden: int = 0
    recent_days: int = RECENT_DAYS
    #: a closed deal's recorded outcome ("won" / "lost") and close time, from its stored state
    outcome: str | None = None
    closed_at: datetime | None = None


def timeline(scores: list[StoredScore]) -> list[TimelineEvent]:
    """The deal's story as dealscore saw it, newest score first (a score's own events in reading order).

    Each stored score is a dated look at the deal; what changed from one to the
    next (CRM stage, the stage the evidence points to, a move of the win
    probability, warnings raised or cleared) becomes an event.
    """
    groups: list[list[TimelineEvent]] = []
    prev: StoredScore | None = None
    prev_warnings: dict[str, str] = {}
    for s in scores:
        warnings = {str(w.get("code")): str(w.get("title") or w.get("code")) for w in s.result.get("warnings") or []}
        evidence = {str(w.get("code")): str(w.get("evidence") or "") for w in s.result.get("warnings") or []}
        events: list[TimelineEvent] = []
        if prev is None:
            events.append(TimelineEvent(
                s.as_of, "scored", f"First scored: {pct(s.p_win)} (grade {s.grade})",
                f"CRM stage {s.declared_stage or 'unknown'}; evidence points to {s.inferred_stage}"))
        else:
            if s.declared_stage != prev.declared_stage:
                events.append(TimelineEvent(
                    s.as_of, "stage", f"CRM stage moved from {prev.declared_stage or 'none'} to "
                                      f"{s.declared_stage or 'none'}"))
            if s.inferred_stage != prev.inferred_stage:
                events.append(TimelineEvent(
                    s.as_of, "evidence", f"Evidence now points to {s.inferred_stage} (was {prev.inferred_stage})"))
            change = (s.p_win - prev.p_win) * 100
            if abs(change) >= MOVE_POINTS:
                events.append(TimelineEvent(
                    s.as_of, "up" if change > 0 else "down",
                    f"Win probability {'rose' if change > 0 else 'fell'} from {pct(prev.p_win)} to {pct(s.p_win)}",
                    f"{'+' if change > 0 else '−'}{abs(change):.0f} pts, grade {prev.grade} → {s.grade}"))
        for code, title in warnings.items():
            if code not in prev_warnings:
                events.append(TimelineEvent(s.as_of, "warning", f"Warning: {title}", evidence.get(code) or None))
        for code, title in prev_warnings.items():
            if code not in warnings:
                events.append(TimelineEvent(s.as_of, "cleared", f"No longer: {title}"))
        if prev is not None and prev.is_open and not s.is_open:
            events.append(TimelineEvent(s.as_of, "closed", "Deal closed"))
        groups.append(events)
        prev, prev_warnings = s, warnings
    return [e for group in reversed(groups) for e in group]


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return naive_utc(value)
    try:
        return _when(datetime.fromisoformat(str(value)))
    except ValueError:
        return None


def touchpoint_events(stored: Any, limit: int | None = MAX_TOUCHPOINTS) -> tuple[list[TimelineEvent], int, bool]:
    """The deal's touchpoints as last sent, newest first, when the store keeps them.

    Read from ``StoredScore.touchpoints``: the payload's ``activities``
    (``occurred_at``, ``type``, ``direction``, ``contact_role``, ``contact_id``)
    as they were scored. Returns the newest ``limit`` events (all with ``None``),
    how many older ones were left out, and whether the score kept touchpoints
    at all.
    """
    raw = getattr(stored, "touchpoints", None)
    if raw is None:
        return [], 0, False
    events = []
    for a in raw:
        when = _when(a.get("occurred_at"))
        if when is None:
            continue
        kind = str(a.get("type") or "touchpoint")
        direction = a.get("direction")
        label = type_label(kind)
        text = f"{str(direction).capitalize()} {label.lower()}" if direction else label
        role = a.get("contact_role")
        if role:
            text += f" with {ROLE_PHRASES.get(str(role), 'the ' + str(role).replace('_', ' '))}"
        events.append(TimelineEvent(when, "touch", text, a.get("contact_id") and f"contact {a['contact_id']}",
                                    channel=kind, direction=str(direction) if direction else None))
    events.sort(key=lambda e: e.when, reverse=True)
    if limit is None:
        return events, 0, True
    return events[:limit], max(0, len(events) - limit), True


def touch_summary(stored: Any) -> TouchSummary | None:
    """Counts over all the latest score's touchpoints (not only those shown), or ``None`` when not kept."""
    raw = getattr(stored, "touchpoints", None)
    if raw is None:
        return None
    counts: dict[str, int] = {}
    inbound = 0
    last_inbound: datetime | None = None
    for a in raw:
        kind = str(a.get("type") or "touchpoint")
        counts[kind] = counts.get(kind, 0) + 1
        if a.get("direction") == "inbound":
            inbound += 1
            when = _when(a.get("occurred_at"))
            if when is not None and (last_inbound is None or when > last_inbound):
                last_inbound = when
    by_type = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return TouchSummary(len(raw), by_type, inbound, last_inbound)


def _close_date(value: Any) -> str | None:
    when = _when(value) if value else None
    return None if when is None else f"{when:%d %b %Y}"


def stage_change_events(stored: Any, taxonomy: StageTaxonomy | None = None) -> tuple[list[TimelineEvent], bool]:
    """The CRM's own stage changes as last sent (dated when they happened), newest first, and whether kept.

    Read from ``StoredScore.stage_changes`` (``changed_at``, ``stage``,
    ``amount``, ``expected_close_date``). A change that keeps the stage but
    moves the amount or the close date is an event too: a slipping close date
    is what managers look for.
    """
    raw = getattr(stored, "stage_changes", None)
    if raw is None:
        return [], False
    dated = sorted(((w, c) for c in raw if (w := _when(c.get("changed_at"))) is not None), key=lambda x: x[0])
    events: list[TimelineEvent] = []
    # a change that leaves the amount or close date empty keeps the last known one (the CRM did not clear it)
    stage: str | None = None
    amount: float | None = None
    close: str | None = None
    for when, c in dated:
        new_stage = str(c.get("stage") or "unknown")
        new_amount = c.get("amount") if c.get("amount") is not None else amount
        new_close = _close_date(c.get("expected_close_date")) or close
        details: list[str] = []
        if new_amount is not None and new_amount != amount:
            details.append(f"amount {money(amount)} → {money(new_amount)}" if amount is not None
                           else f"amount {money(new_amount)}")
        if new_close is not None and new_close != close:
            details.append(f"expected close {close} → {new_close}" if close is not None
                           else f"expected close {new_close}")
        if stage is None:
            text = f"CRM stage set to {new_stage}"
        elif new_stage != stage:
            back = taxonomy is not None and stage_order(taxonomy, new_stage) < stage_order(taxonomy, stage)
            text = f"CRM stage moved {'back ' if back else ''}from {stage} to {new_stage}"
        elif details:
            text = f"CRM deal updated (stage still {new_stage})"
        else:
            text = ""
        if text:
            events.append(TimelineEvent(when, "stage", text, "; ".join(details) or None, channel="stage"))
        stage, amount, close = new_stage, new_amount, new_close
    events.reverse()
    return events, True


def build_deal(store: ScoreStore, principal: Principal, deal_id: str, taxonomy: StageTaxonomy, *,
               all_touchpoints: bool = False) -> DealView | None:
    """The deal page, or ``None`` when the deal has no scores or the key may not see it.

    Both cases look the same to the caller (a 404), so a limited key cannot
    learn that another team's deal exists. The timeline shows the latest
    score's touchpoints (the newest :data:`MAX_TOUCHPOINTS`, or all of them)
    and CRM stage changes among what changed from score to score.

    Who may see the deal and whether it is open are read from the deal's stored
    state (table ``deals``), as the API reads them: an outcome recorded with
    ``POST /v1/deals/{id}/outcome`` closes the deal there, not in its score rows,
    which keep the state they were scored in.
    """
    state = store.deal_states([deal_id]).get(deal_id)
    if state is None or not principal.can_see(state.owner_id, state.team):
        return None
    scores = store.deal_scores(deal_id, limit=HISTORY_LIMIT, with_timeline=True)
    if not scores:
        return None
    last = scores[-1]
    latest = last.score_result()
    # the same inputs the list ranks with, so both pages show the same value at risk; a closed deal has
    # nothing left at risk (its outcome is known, and the page shows that instead)
    var = value_at_risk(latest.amount, latest.p_win, latest.stage_typical_p_win) if state.is_open else 0.0
    trend, change = trend_of(scores)
    history = [
        HistoryPoint(s.as_of, s.p_win, f"{s.as_of:%d %b %Y}: {pct(s.p_win)} (grade {s.grade}), "
                                       f"CRM stage {s.declared_stage or 'unknown'}, evidence {s.inferred_stage}")
        for s in scores
    ]
    reasons = [*latest.reasons_up, *latest.reasons_down]
    scale = max([abs(r.points) for r in reasons] or [1.0])
    probs = latest.stage_probabilities or {}
    names = [n for n in taxonomy.names if n in probs] + [n for n in probs if n not in taxonomy.names]
    stage_rows = [(n, float(probs[n]), n == latest.inferred_stage) for n in names]
    touches, hidden, kept = touchpoint_events(last, limit=None if all_touchpoints else MAX_TOUCHPOINTS)
    stage_changes, stages_kept = stage_change_events(last, taxonomy)
    scored = timeline(scores)
    if not state.is_open and not any(e.kind == "closed" for e in scored):
        outcome = f"{state.outcome} " if state.outcome else ""
        scored.append(TimelineEvent(state.closed_at or last.as_of, "closed", "Deal closed",
                                    f"{outcome}on {state.closed_at:%d %b %Y}" if state.closed_at else state.outcome))
    if stage_changes:
        # the CRM's own dated changes replace "the stage differed from the previous score"
        scored = [e for e in scored if e.kind != "stage"]
    # stable sort: a score's own events keep their reading order
    events = sorted([*scored, *stage_changes, *touches], key=lambda e: e.when, reverse=True)
    older = 0
    if events and not all_touchpoints:
        since = events[0].when - timedelta(days=RECENT_DAYS)
        recent = [e for e in events if e.when >= since]
        older = len(events) - len(recent) + hidden
        events = recent
    return DealView(
        deal_id=deal_id, latest=latest, stored=last, is_open=state.is_open, outcome=state.outcome,
        closed_at=state.closed_at, value_at_risk=var, trend=trend,
        trend_change=change, history=history, scores=scores, events=events, reasons_scale=scale,
        stage_rows=stage_rows, touchpoints_kept=kept, touchpoints_hidden=hidden, stage_changes_kept=stages_kept,
        touch_summary=touch_summary(last), all_touchpoints=all_touchpoints, events_hidden=older,
    )
