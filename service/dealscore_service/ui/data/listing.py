"""The at-risk list: ranked, filtered, sorted and paged rows read from the score store."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from dealscore.scoring.result import DealWarning, ScoreResult
from dealscore.taxonomy import StageTaxonomy
from dealscore_service.auth import Principal
from dealscore_service.store import DealFilter, ListRequest, ScoreStore, StoredScore
from dealscore_service.ui.data.query import ListQuery, stage_order

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



#: The page's sort columns, by the store's column they sort on ("risk" is the at-risk ranking).
_SORTS = {"risk": "rank", "deal": "deal_id", "account": "account_id", "owner": "owner_id", "amount": "amount",
          "stage": "declared_stage", "inferred": "inferred_stage", "p_win": "p_win", "as_of": "as_of"}


def _stage_order(taxonomy: StageTaxonomy) -> dict[str, int]:
    """Each stage's place in the taxonomy (what the two stage columns sort by)."""
    return {name: stage_order(taxonomy, name) for name in taxonomy.names}


def build_list(store: ScoreStore, principal: Principal, query: ListQuery, taxonomy: StageTaxonomy,
               parsed: ParsedResults | None = None) -> ListPage:
    """The at-risk list for this key: ranked by value at risk, filtered, sorted and paged by the database.

    One query counts and sums every matching open deal; another reads the page's
    rows; only those rows' full results are read and parsed. ``parsed`` is kept
    for callers that pass it; the store now parses only the page's rows.
    """
    del parsed
    filters = DealFilter(owner=query.owner, team=query.team, declared_stage=query.stage,
                         min_amount=query.min_amount)
    req = ListRequest(filters=filters, include_not_at_risk=query.show == "all", sort=_SORTS[query.sort],
                      order=query.order, limit=query.per, offset=(query.page - 1) * query.per,
                      stage_order=_stage_order(taxonomy))
    data = store.list_page(req, principal)
    n_rows = data.open_deals if query.show == "all" else data.at_risk
    pages = max(1, math.ceil(n_rows / query.per))
    page = min(query.page, pages)
    if page != query.page:  # past the last page: show the last one
        data = store.list_page(replace(req, offset=(page - 1) * query.per), principal)
    recent = store.recent_p_wins([i.result.deal_id for i in data.items], n=SPARK_POINTS) if data.items else {}
    shown = [DealRow(i.result, float(i.result.value_at_risk or 0.0) if i.at_risk else 0.0, i.at_risk,
                     recent.get(i.result.deal_id, []), i.as_of) for i in data.items]
    owners, teams = store.filter_choices(principal)
    out = ListPage(
        query=replace(query, page=page), rows=shown, n_rows=n_rows, n_open=data.open_deals, n_at_risk=data.at_risk,
        pipeline_value=data.pipeline_value, value_at_risk=data.value_at_risk,
        page=page, pages=pages, owners=owners, teams=teams,
    )
    if not owners and not teams:  # no open deal visible to this key at all, whatever the filters
        out.scored_deals = store.count()
        if out.scored_deals == 0:
            out.empty = "no_scores"
        elif principal.limited:
            out.empty = "none_visible"
        else:
            out.empty = "no_open"
    elif data.open_deals == 0:
        out.empty = "no_match"
    elif n_rows == 0:
        out.empty = "none_at_risk"
    return out
