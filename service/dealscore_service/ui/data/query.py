"""The at-risk list's query state: filters, sort and page parsed from the URL, and what in it cannot be used."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from dealscore.taxonomy import StageTaxonomy
from dealscore_service.query_rules import query_problems
from dealscore_service.schemas import MAX_QUERY_TEXT, currency_code
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
    return value or None


def url_problems(query_string: bytes, known: Sequence[str], what: str = "The page",
                 unbounded: Sequence[str] = ()) -> list[tuple[str, str, str]]:
    """What makes a page's URL unusable before its values are read, as (parameter, value as given, message): the
    API's rule (:func:`~dealscore_service.query_rules.query_problems`: given more than once, not UTF-8 text, not
    one the page takes) said in sentences, and a value longer than :data:`MAX_QUERY_TEXT` (the API's query
    limit) except in ``unbounded`` (a link the page built itself, such as the deal page's ``back``, which holds
    a whole filtered list's URL). A page that read past them would show an answer other than the one the URL
    asks for."""
    out: list[tuple[str, str, str]] = []
    for p in query_problems(query_string, known):
        if p.kind == "not_utf8":
            out.append((p.name, "", f"The parameter {p.name!r} is not UTF-8 text once percent-decoded: encode it as "
                                    "UTF-8 (é is %C3%A9, not %E9)."))
        elif p.kind == "repeated":
            shown = ", ".join(map(repr, p.values[:3])) + (", …" if len(p.values) > 3 else "")
            out.append((p.name, p.values[-1][:MAX_QUERY_TEXT],
                        f"The parameter {p.name!r} is given {len(p.values)} times ({shown}): give it once."))
        else:
            out.append((p.name, p.values[0][:MAX_QUERY_TEXT],
                        f"{what} has no parameter {p.name!r}: it takes {', '.join(known)}."))
    refused = {name for name, _, _ in out}
    for name, value in QueryParams(query_string).items():
        if name not in refused and name not in unbounded and len(value.strip()) > MAX_QUERY_TEXT:
            out.append((name, value[:MAX_QUERY_TEXT], f"The {name} given is longer than {MAX_QUERY_TEXT} characters."))
    return out


def read_currency(raw: str | None) -> tuple[str | None, str | None]:
    """A page's ``currency`` value (stripped; ``None``: not given) as (code, None), or (None, what is wrong)."""
    if raw is None:
        return None, None
    code = currency_code(raw)
    if code is None:
        return None, f"Currency {raw!r} is not an ISO 4217 currency code: pick e.g. EUR."
    return code, None


#: The URL parameters the list reads. Any other is refused like a bad value: a filter the list does not have
#: (``min_p_win=0.3``) would otherwise be ignored, and the unfiltered list pass for a filtered one.
PARAMS = ("owner", "team", "stage", "min_amount", "currency", "show", "sort", "order", "page", "per")


@dataclass(frozen=True)
class ListQuery:
    """The at-risk list's filters, sort and page, parsed from the URL.

    A value the list cannot use is not replaced by a default here: ``problems``
    says what is wrong with it and how to fix it, ``rejected`` keeps it as given
    (for the form), and the page lists nothing for such a query (a 422, as the
    API answers), since any list it showed would not be the one asked for. The
    parsed fields keep only the values that could be used.
    """

    owner: str | None = None
    team: str | None = None
    stage: str | None = None
    min_amount: float | None = None
    #: ISO 4217 code, upper case (the store keeps the payloads' codes so)
    currency: str | None = None
    show: Show = "at_risk"
    sort: str = "risk"
    order: Order = "desc"
    page: int = 1
    per: int = PER_PAGE[0]
    problems: tuple[str, ...] = ()
    #: (URL parameter, value as given) of each value in ``problems``
    rejected: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_params(cls, params: bytes | Mapping[str, str], taxonomy: StageTaxonomy) -> ListQuery:
        """``params``: the URL's raw query string (only it shows a value that is not UTF-8), or one value per
        parameter (a link built in code)."""
        raw = params if isinstance(params, bytes) else urlencode(dict(params)).encode()
        # (parameter, value as given, what is wrong); a parameter refused here is not read below
        refused = url_problems(raw, PARAMS, what="The list")
        params = {k: v for k, v in QueryParams(raw).items() if k not in {n for n, _, _ in refused}}
        stage = _text(params, "stage")
        if stage is not None:
            canonical = taxonomy.canonical_stage(stage)
            if canonical is None:
                refused.append(("stage", stage, f"Unknown stage {stage!r}: pick one of {', '.join(taxonomy.names)}."))
            stage = canonical
        min_amount: float | None = None
        raw_amount = _text(params, "min_amount")
        if raw_amount is not None:
            try:
                min_amount = float(raw_amount.replace(",", "").replace("_", ""))
                if not math.isfinite(min_amount) or min_amount < 0:
                    raise ValueError
            except ValueError:
                refused.append(("min_amount", raw_amount,
                                f"Minimum amount {raw_amount!r} is not a number ≥ 0: type e.g. 50000."))
                min_amount = None
        raw_currency = _text(params, "currency")
        currency, problem = read_currency(raw_currency)
        if problem is not None:
            refused.append(("currency", raw_currency or "", problem))
        raw_show = _text(params, "show")
        show: Show = "all" if raw_show == "all" else "at_risk"
        if raw_show not in (None, "all", "at_risk"):
            refused.append(("show", raw_show,
                            f"Show {raw_show!r} is not known: use show=all for every open deal, or leave it out."))
        sort = _text(params, "sort") or "risk"
        if sort not in SORTS:
            refused.append(("sort", sort, f"Sort {sort!r} is not a column: use one of {', '.join(SORTS)}."))
            sort = "risk"
        raw_order = _text(params, "order")
        order: Order = "asc" if raw_order == "asc" else "desc"
        if raw_order not in (None, "asc", "desc"):
            refused.append(("order", raw_order, f"Order {raw_order!r} is not asc or desc."))
        page = 1
        raw_page = _text(params, "page")
        if raw_page is not None:
            try:
                # past the last page shows the last one (:func:`build_list`); MAX_PAGE keeps the offset finite
                page = min(int(raw_page), MAX_PAGE)
                if page < 1:
                    raise ValueError
            except ValueError:
                refused.append(("page", raw_page, f"Page {raw_page!r} is not a page number (1, 2, 3 …)."))
                page = 1
        per = PER_PAGE[0]
        raw_per = _text(params, "per")
        if raw_per is not None:
            if raw_per in {str(n) for n in PER_PAGE}:
                per = int(raw_per)
            else:
                refused.append(("per", raw_per,
                                f"{raw_per!r} deals a page is not offered: pick {', '.join(map(str, PER_PAGE))}."))
        return cls(owner=_text(params, "owner"), team=_text(params, "team"), stage=stage, min_amount=min_amount,
                   currency=currency, show=show, sort=sort, order=order, page=page, per=per,
                   problems=tuple(m for _, _, m in refused), rejected=tuple((n, g) for n, g, _ in refused))

    def given(self, name: str) -> str | None:
        """The value of URL parameter ``name`` as given, when it was refused."""
        return next((g for n, g in self.rejected if n == name), None)

    def shown(self, name: str) -> str | None:
        """What the filter form shows for parameter ``name``: the value as given when it was refused (so that
        the form says what was asked), else the value used (``None``: the default)."""
        given = self.given(name)
        return given if given is not None else self.params().get(name)

    @property
    def filtered(self) -> bool:
        return any(v is not None for v in (self.owner, self.team, self.stage, self.min_amount, self.currency))

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
        if q.currency is not None:
            out["currency"] = q.currency
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

