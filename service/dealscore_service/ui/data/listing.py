"""The at-risk list: ranked, filtered, sorted and paged rows read from the score store."""

from __future__ import annotations

import difflib
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from dealscore.scoring.result import DealWarning, ScoreResult
from dealscore.taxonomy import StageTaxonomy
from dealscore_service.auth import Principal
from dealscore_service.schemas import mixes_currencies
from dealscore_service.store import CurrencyTotals, DealFilter, ListRequest, ScoreStore, StoredScore
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
    #: the owner filter's choices: (owner id, the name rows show for them)
    owners: list[tuple[str, str]]
    teams: list[str]
    empty: EmptyReason | None = None
    #: every stored score, of any team: tells "nothing scored yet" from "none of yours"; the page never
    #: shows it to a limited key (it would count other teams' scores)
    scored_deals: int = 0
    #: an owner or team in the URL that no visible deal has: (filter, value given, closest existing
    #: (value, label)s)
    unknown_filters: list[tuple[str, str, list[tuple[str, str]]]] = field(default_factory=list)
    #: why some scores may not fit (a model trained on other data), and how many matching deals say so
    data_notice: str | None = None
    data_notice_deals: int = 0
    #: the totals per currency, largest pipeline first (one entry when the deals share a currency or give none)
    by_currency: list[CurrencyTotals] = field(default_factory=list)
    #: the currency filter's choices: the codes of the open deals the key sees, offered when there are several
    currencies: list[str] = field(default_factory=list)

    @property
    def mixed_currencies(self) -> bool:
        """The matching deals are in more than one currency: the page shows a total per currency, never their sum."""
        return mixes_currencies([t.currency for t in self.by_currency])

    @property
    def currency(self) -> str | None:
        """The one currency of every matching deal, if they share one."""
        return self.by_currency[0].currency if len(self.by_currency) == 1 else None

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



def closest(given: str, known: list[str], n: int = 3) -> list[str]:
    """The existing values a person most likely meant: same letters in another case first, then similar ones."""
    folded = given.casefold().replace("+", " ").strip()
    exact = [k for k in known if k.casefold() == folded]
    contains = [k for k in known if folded and folded in k.casefold() and k not in exact]
    similar = difflib.get_close_matches(folded, [k.casefold() for k in known], n=n, cutoff=0.4)
    by_fold = {k.casefold(): k for k in known}
    out: list[str] = []
    for k in [*exact, *contains, *(by_fold[s] for s in similar)]:
        if k not in out:
            out.append(k)
    return out[:n]


#: The page's sort columns, by the store's column they sort on ("risk" is the at-risk ranking). The deal,
#: account and owner columns sort by the text they show: the name, or the id where there is none.
_SORTS = {"risk": "rank", "deal": "deal_name", "account": "account_name", "owner": "owner_name", "amount": "amount",
          "stage": "declared_stage", "inferred": "inferred_stage", "p_win": "p_win", "as_of": "as_of"}


def _stage_order(taxonomy: StageTaxonomy) -> dict[str, int]:
    """Each stage's place in the taxonomy (what the two stage columns sort by)."""
    return {name: stage_order(taxonomy, name) for name in taxonomy.names}


def currency_choices(found: Sequence[str | None], asked: str | None = None) -> list[str]:
    """The currency filter's choices: the codes ``found`` (:meth:`ScoreStore.open_currencies`: those of the open
    deals the key sees), when they are in more than one currency (deals scored without one count as another) or
    one was asked for; else none (no menu to show)."""
    if not mixes_currencies(found) and asked is None:
        return []
    return sorted(c for c in found if c is not None)


def build_list(store: ScoreStore, principal: Principal, query: ListQuery, taxonomy: StageTaxonomy,
               parsed: ParsedResults | None = None) -> ListPage:
    """The at-risk list for this key: ranked by value at risk, filtered, sorted and paged by the database.

    One query counts and sums every matching open deal; another reads the page's
    rows; only those rows' full results are read and parsed. ``parsed`` is kept
    for callers that pass it; the store now parses only the page's rows.
    """
    del parsed
    filters = DealFilter(owner=query.owner, team=query.team, declared_stage=query.stage,
                         min_amount=query.min_amount, currency=query.currency)
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
        page=page, pages=pages, owners=owners, teams=teams, by_currency=list(data.by_currency),
        # unfiltered, the list's own totals are the key's: no second read of them
        currencies=currency_choices([t.currency for t in data.by_currency] if filters == DealFilter()
                                    else store.open_currencies(principal), query.currency),
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
    # an owner is looked for by id and by name, and offered by name
    owner_ids = {label: oid for oid, label in reversed(owners)} | {oid: oid for oid, _ in owners}
    owner_labels = dict(owners)
    if query.owner is not None and query.owner not in owner_labels:
        near = [owner_ids[v] for v in closest(query.owner, list(owner_ids), n=6)]
        out.unknown_filters.append(("owner", query.owner, [(o, owner_labels[o]) for o in dict.fromkeys(near)][:3]))
    if query.team is not None and query.team not in teams:
        out.unknown_filters.append(("team", query.team, [(t, t) for t in closest(query.team, teams)]))
    noted = [n for row in shown for n in row.result.notices if "trained on a different history" in n]
    if noted:
        out.data_notice, out.data_notice_deals = noted[0], len(noted)
    return out
