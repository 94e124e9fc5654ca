"""The at-risk list's query state: filters, sort and page parsed leniently from the URL."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import urlencode

from dealscore.taxonomy import StageTaxonomy
from dealscore_service.store import StoredScore

Show = Literal["at_risk", "all"]
Order = Literal["asc", "desc"]
SORTS = ("risk", "deal", "account", "owner", "amount", "stage", "inferred", "p_win", "as_of")
PER_PAGE = (25, 50, 100)
#: The highest page number the URL may ask for. Any page past the last shows the last one; this bound only
#: keeps the row offset, (page - 1) × per, within what a database integer holds (SQLite: 2^63 - 1).
MAX_PAGE = 1_000_000


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
        raw_show = _text(params, "show")
        show: Show = "all" if raw_show == "all" else "at_risk"
        if raw_show not in (None, "all", "at_risk"):
            problems.append(f"Show {raw_show!r} is not known: use show=all for every open deal, or leave it out.")
        sort = _text(params, "sort") or "risk"
        if sort not in SORTS:
            problems.append(f"Sort {sort!r} is not a column: use one of {', '.join(SORTS)}.")
            sort = "risk"
        raw_order = _text(params, "order")
        order: Order = "asc" if raw_order == "asc" else "desc"
        if raw_order not in (None, "asc", "desc"):
            problems.append(f"Order {raw_order!r} is not asc or desc: sorted {order}ending.")
        page = 1
        raw_page = _text(params, "page")
        if raw_page is not None:
            try:
                # past the last page shows the last one (:func:`build_list`); MAX_PAGE keeps the offset finite
                page = min(int(raw_page), MAX_PAGE)
                if page < 1:
                    raise ValueError
            except ValueError:
                problems.append(f"Page {raw_page!r} is not a page number: showing page 1.")
                page = 1
        per = PER_PAGE[0]
        raw_per = _text(params, "per")
        if raw_per is not None:
            if raw_per in {str(n) for n in PER_PAGE}:
                per = int(raw_per)
            else:
                problems.append(f"{raw_per!r} deals a page is not offered: pick {', '.join(map(str, PER_PAGE))}.")
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



def stage_order(taxonomy: StageTaxonomy, stage: str | None) -> int:
    """Where a stage sorts: taxonomy order, unknown stages next to last and no stage last."""
    if stage is None:
        return 10_000
    try:
        return taxonomy.order_of(stage)
    except Exception:  # a stage the current taxonomy no longer knows sorts last
        return 9_999

