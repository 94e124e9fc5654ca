"""What the pages show, assembled from the score store and the library.

This is the page's one adapter over the service: it reads the store through
:class:`~dealscore_service.store.ScoreStore` (latest score per open deal,
recent win probabilities, a deal's score history), ranks with the library's
:func:`dealscore.scoring.at_risk`, and applies the key's owner/team limits
through the store query and :meth:`Principal.can_see`. No score is computed
here; everything shown was stored by ``POST /v1/score``.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlencode

from dealscore.scoring import at_risk, value_at_risk
from dealscore.scoring.result import DealWarning, ScoreResult
from dealscore.taxonomy import StageTaxonomy
from dealscore_service.auth import Principal
from dealscore_service.routers.deals import trend_of
from dealscore_service.store import DealFilter, ScoreStore, StoredScore
from dealscore_service.ui.charts import HistoryPoint
from dealscore_service.ui.format import money
from dealscore_service.ui.icons import type_label

Show = Literal["at_risk", "all"]
Order = Literal["asc", "desc"]
SORTS = ("risk", "deal", "account", "owner", "amount", "stage", "inferred", "p_win", "as_of")
PER_PAGE = (25, 50, 100)
HISTORY_LIMIT = 200
SPARK_POINTS = 8
MOVE_POINTS = 3.0  # a win-probability change smaller than this is not a timeline event
MAX_TOUCHPOINTS = 60  # the most recent touchpoints shown on the timeline
#: How a contact role reads after "with" (other configured roles read "the <role>").
ROLE_PHRASES = {"decision_maker": "the decision maker", "champion": "the champion", "influencer": "an influencer",
                "user": "a user", "other": "another contact"}

EmptyReason = Literal["no_scores", "none_visible", "no_open", "no_match", "none_at_risk"]


def _text(params: Mapping[str, str], name: str) -> str | None:
    value = (params.get(name) or "").strip()
    return value[:200] or None


@dataclass(frozen=True)
class ListQuery:
    """The at-risk list's filters, sort and page, parsed leniently from the URL.

    A bad value never breaks the page: it is dropped and ``problems`` says
    which and how to fix it, next to the filter form.
    """

    owner: str | None = None
    team: str | None = None
    stage: str | None = None
    min_amount: float | None = None
    show: Show = "at_risk"
    sort: str = "risk"
    order: Order = "desc"
    page: int = 1
    per: int = PER_PAGE[0]
    problems: tuple[str, ...] = ()

    @classmethod
    def from_params(cls, params: Mapping[str, str], taxonomy: StageTaxonomy) -> ListQuery:
        problems: list[str] = []
        stage = _text(params, "stage")
        if stage is not None:
            canonical = taxonomy.canonical_stage(stage)
            if canonical is None:
                problems.append(f"Unknown stage {stage!r}: pick one of {', '.join(taxonomy.names)}.")
            stage = canonical
        min_amount: float | None = None
        raw_amount = _text(params, "min_amount")
        if raw_amount is not None:
            try:
                min_amount = float(raw_amount.replace(",", "").replace("_", ""))
                if not math.isfinite(min_amount) or min_amount < 0:
                    raise ValueError
            except ValueError:
                problems.append(f"Minimum amount {raw_amount!r} is not a number ≥ 0: type e.g. 50000.")
                min_amount = None
        show: Show = "all" if params.get("show") == "all" else "at_risk"
        sort = params.get("sort") or "risk"
        if sort not in SORTS:
            sort = "risk"
        order: Order = "asc" if params.get("order") == "asc" else "desc"
        try:
            page = max(1, int(params.get("page") or 1))
        except ValueError:
            page = 1
        try:
            per = int(params.get("per") or PER_PAGE[0])
        except ValueError:
            per = PER_PAGE[0]
        if per not in PER_PAGE:
            per = PER_PAGE[0]
        return cls(owner=_text(params, "owner"), team=_text(params, "team"), stage=stage, min_amount=min_amount,
                   show=show, sort=sort, order=order, page=page, per=per, problems=tuple(problems))

    @property
    def filtered(self) -> bool:
        return any(v is not None for v in (self.owner, self.team, self.stage, self.min_amount))

    def params(self, **changes: Any) -> dict[str, str]:
        """The query as URL parameters (defaults left out), with some values changed."""
        q = replace(self, **changes) if changes else self
        out: dict[str, str] = {}
        for name in ("owner", "team", "stage"):
            value = getattr(q, name)
            if value is not None:
                out[name] = value
        if q.min_amount is not None:
            out["min_amount"] = f"{q.min_amount:g}"
        if q.show != "at_risk":
            out["show"] = q.show
        if q.sort != "risk":
            out["sort"] = q.sort
        if q.order != "desc":
            out["order"] = q.order
        if q.page != 1:
            out["page"] = str(q.page)
        if q.per != PER_PAGE[0]:
            out["per"] = str(q.per)
        return out

    def url(self, **changes: Any) -> str:
        """``?…`` for a link to this list with some values changed (sorting, paging)."""
        qs = urlencode(self.params(**changes))
        return f"?{qs}" if qs else "?"

    def suffix(self) -> str:
        """This list's query string for a link back to it (empty when nothing is set)."""
        qs = urlencode(self.params())
        return f"?{qs}" if qs else ""

    def sort_url(self, column: str) -> str:
        """Link for a column header: first click sorts the natural way, the next one reverses."""
        natural: Order = "asc" if column in ("deal", "account", "owner", "p_win") else "desc"
        if self.sort == column:
            order: Order = "asc" if self.order == "desc" else "desc"
        else:
            order = natural
        return self.url(sort=column, order=order, page=1)

    def aria_sort(self, column: str) -> str:
        if self.sort != column:
            return "none"
        return "ascending" if self.order == "asc" else "descending"

    def matches(self, s: StoredScore) -> bool:
        """The store's :class:`DealFilter` semantics, applied to rows already read."""
        if self.owner is not None and s.owner_id != self.owner:
            return False
        if self.team is not None and s.team != self.team:
            return False
        if self.stage is not None and s.declared_stage != self.stage:
            return False
        return not (self.min_amount is not None and (s.amount is None or s.amount < self.min_amount))


@dataclass(frozen=True)
class DealRow:
    """One line of the at-risk list."""

    result: ScoreResult
    value_at_risk: float
    at_risk: bool
    recent: list[float]
    as_of: datetime

    @property
    def top_warning(self) -> DealWarning | None:
        return self.result.warnings[0] if self.result.warnings else None

    @property
    def mismatch(self) -> bool:
        return self.result.stage_mismatch in ("ahead_of_evidence", "behind_evidence")


@dataclass
class ListPage:
    """The at-risk list: one page of rows, totals over every matching deal, filter choices."""

    query: ListQuery
    rows: list[DealRow]
    n_rows: int
    n_open: int
    n_at_risk: int
    pipeline_value: float
    value_at_risk: float
    page: int
    pages: int
    owners: list[str]
    teams: list[str]
    empty: EmptyReason | None = None
    scored_deals: int = 0

    @property
    def first(self) -> int:
        return 0 if not self.rows else (self.page - 1) * self.query.per + 1

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1 if self.rows else 0


class ParsedResults:
    """Stored scores parsed into :class:`ScoreResult`, remembered by row id.

    A stored score never changes, and validating a few thousand results on every
    view of the list costs more than reading them; this keeps the most recent
    ``size`` of them.
    """

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._items: OrderedDict[int, ScoreResult] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, stored: StoredScore) -> ScoreResult:
        with self._lock:
            hit = self._items.get(stored.id)
            if hit is not None:
                self._items.move_to_end(stored.id)
                return hit
        parsed = stored.score_result()
        with self._lock:
            self._items[stored.id] = parsed
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return parsed


def _stage_order(taxonomy: StageTaxonomy, stage: str | None) -> int:
    if stage is None:
        return 10_000
    try:
        return taxonomy.order_of(stage)
    except Exception:  # a stage the current taxonomy no longer knows sorts last
        return 9_999


def _sort_rows(rows: list[DealRow], sort: str, order: Order, taxonomy: StageTaxonomy) -> list[DealRow]:
    """Re-sort a ranked list by a column; rows missing the value stay last either way."""
    if sort == "risk":
        return rows if order == "desc" else list(reversed(rows))
    getters: dict[str, Any] = {
        "deal": lambda r: r.result.deal_id,
        "account": lambda r: r.result.account_id,
        "owner": lambda r: r.result.owner_id,
        "amount": lambda r: r.result.amount,
        "stage": lambda r: None if r.result.declared_stage is None else _stage_order(taxonomy,
                                                                                    r.result.declared_stage),
        "inferred": lambda r: _stage_order(taxonomy, r.result.inferred_stage),
        "p_win": lambda r: r.result.p_win,
        "as_of": lambda r: r.as_of,
    }
    get = getters[sort]
    present = [r for r in rows if get(r) is not None]
    missing = [r for r in rows if get(r) is None]
    present.sort(key=lambda r: (get(r), r.result.deal_id), reverse=order == "desc")
    return present + missing


def build_list(store: ScoreStore, principal: Principal, query: ListQuery, taxonomy: StageTaxonomy,
               parsed: ParsedResults | None = None) -> ListPage:
    """The at-risk list for this key: ranked by value at risk, filtered, sorted and paged.

    One store read gives every open deal the key may see (the filter choices
    come from it too); filters then narrow it with the store's own semantics.
    Only the rows shown are parsed into full results beyond that.
    """
    visible = store.latest_open_scores(DealFilter(), principal)
    owners = sorted({s.owner_id for s in visible if s.owner_id})
    teams = sorted({s.team for s in visible if s.team})
    matching = [s for s in visible if query.matches(s)]
    results = [parsed.get(s) for s in matching] if parsed is not None else [s.score_result() for s in matching]
    as_of = {s.deal_id: s.as_of for s in matching}
    ranked = at_risk(results)
    rows = [DealRow(r, float(r.value_at_risk or 0.0), True, [], as_of[r.deal_id]) for r in ranked]
    if query.show == "all":
        risky = {r.deal_id for r in ranked}
        rest = sorted((r for r in results if r.deal_id not in risky), key=lambda r: (-(r.amount or 0.0), r.deal_id))
        rows += [DealRow(r, 0.0, False, [], as_of[r.deal_id]) for r in rest]
    rows = _sort_rows(rows, query.sort, query.order, taxonomy)
    pages = max(1, math.ceil(len(rows) / query.per))
    page = min(query.page, pages)
    shown = rows[(page - 1) * query.per: page * query.per]
    recent = store.recent_p_wins([r.result.deal_id for r in shown], n=SPARK_POINTS) if shown else {}
    shown = [replace(r, recent=recent.get(r.result.deal_id, [])) for r in shown]
    out = ListPage(
        query=replace(query, page=page), rows=shown, n_rows=len(rows), n_open=len(results), n_at_risk=len(ranked),
        pipeline_value=float(sum(r.amount or 0.0 for r in results)),
        value_at_risk=float(sum(r.value_at_risk or 0.0 for r in ranked)),
        page=page, pages=pages, owners=owners, teams=teams,
    )
    if not visible:
        out.scored_deals = store.count()
        if out.scored_deals == 0:
            out.empty = "no_scores"
        elif principal.limited:
            out.empty = "none_visible"
        else:
            out.empty = "no_open"
    elif not results:
        out.empty = "no_match"
    elif not rows:
        out.empty = "none_at_risk"
    return out


# --------------------------------------------------------------------------- deal detail


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


def _pct(p: float) -> str:
    return f"{100 * p:.0f}%"


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
                s.as_of, "scored", f"First scored: {_pct(s.p_win)} (grade {s.grade})",
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
                    f"Win probability {'rose' if change > 0 else 'fell'} from {_pct(prev.p_win)} to {_pct(s.p_win)}",
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
        return value.replace(tzinfo=None) if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)
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
            back = taxonomy is not None and _stage_order(taxonomy, new_stage) < _stage_order(taxonomy, stage)
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
    """
    scores = store.deal_scores(deal_id, limit=HISTORY_LIMIT, with_timeline=True)
    if not scores or not principal.can_see(scores[-1].owner_id, scores[-1].team):
        return None
    last = scores[-1]
    latest = last.score_result()
    # the same inputs the list ranks with, so both pages show the same value at risk
    var = value_at_risk(latest.amount, latest.p_win, latest.stage_typical_p_win)
    trend, change = trend_of(scores)
    history = [
        HistoryPoint(s.as_of, s.p_win, f"{s.as_of:%d %b %Y}: {_pct(s.p_win)} (grade {s.grade}), "
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
    if stage_changes:
        # the CRM's own dated changes replace "the stage differed from the previous score"
        scored = [e for e in scored if e.kind != "stage"]
    # stable sort: a score's own events keep their reading order
    events = sorted([*scored, *stage_changes, *touches], key=lambda e: e.when, reverse=True)
    return DealView(
        deal_id=deal_id, latest=latest, stored=last, is_open=last.is_open, value_at_risk=var, trend=trend,
        trend_change=change, history=history, scores=scores, events=events, reasons_scale=scale,
        stage_rows=stage_rows, touchpoints_kept=kept, touchpoints_hidden=hidden, stage_changes_kept=stages_kept,
        touch_summary=touch_summary(last), all_touchpoints=all_touchpoints,
    )
