"""The at-risk list: ranked, filtered, sorted and paged rows read from the score store."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from dealscore.scoring import at_risk
from dealscore.scoring.result import DealWarning, ScoreResult
from dealscore.taxonomy import StageTaxonomy
from dealscore_service.auth import Principal
from dealscore_service.store import DealFilter, ScoreStore, StoredScore
from dealscore_service.ui.data.query import ListQuery, Order, stage_order

HISTORY_LIMIT = 200
SPARK_POINTS = 8

EmptyReason = Literal["no_scores", "none_visible", "no_open", "no_match", "none_at_risk"]


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



def _sort_rows(rows: list[DealRow], sort: str, order: Order, taxonomy: StageTaxonomy) -> list[DealRow]:
    """Re-sort a ranked list by a column; rows missing the value stay last either way."""
    if sort == "risk":
        return rows if order == "desc" else list(reversed(rows))
    getters: dict[str, Any] = {
        "deal": lambda r: r.result.deal_id,
        "account": lambda r: r.result.account_id,
        "owner": lambda r: r.result.owner_id,
        "amount": lambda r: r.result.amount,
        "stage": lambda r: None if r.result.declared_stage is None else stage_order(taxonomy,
                                                                                    r.result.declared_stage),
        "inferred": lambda r: stage_order(taxonomy, r.result.inferred_stage),
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
