"""What makes a URL's query unusable before any value is read: the one rule the API and the web page share.

A parameter given more than once, one the endpoint or page does not take, or one whose name or value is not
UTF-8 text once percent-decoded. The API answers these as 422 field errors (``deps.well_formed_query``), the
pages as sentences above an empty list (``ui.data.query.url_problems``); both read them from
:func:`query_problems`, so the two cannot drift apart (a page that read past one would show an answer other
than the one its URL asks for, and the API would hand the client the unfiltered list for a filtered one).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote_to_bytes

from starlette.datastructures import QueryParams

Kind = Literal["not_utf8", "repeated", "unknown"]


@dataclass(frozen=True)
class QueryProblem:
    """One unusable parameter: which rule it breaks, its name, and its values as given (in order)."""

    kind: Kind
    name: str
    values: tuple[str, ...]


def undecodable_names(query_string: bytes) -> list[str]:
    """The names of the parameters whose name or value is not UTF-8 once percent-decoded (``?owner=%FF``).

    Split as Starlette splits (``&``, then the first ``=``, ``+`` a space), which decodes with
    ``errors="replace"``: ``%FF`` would reach the endpoint as ``"\ufffd"`` and, as an owner filter,
    match no deal, so the client got an empty list where it had sent a mistake.
    """
    bad: list[str] = []
    for part in query_string.split(b"&"):
        name, _, value = part.partition(b"=")
        raw_name, raw_value = (unquote_to_bytes(x.replace(b"+", b" ")) for x in (name, value))
        try:
            raw_name.decode("utf-8")
            raw_value.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(raw_name.decode("utf-8", errors="replace"))
    return bad


def query_problems(query_string: bytes, known: Collection[str] | None) -> list[QueryProblem]:
    """At most one problem per parameter, in the order the URL names them: not UTF-8 first (its value cannot
    be shown as sent), then given more than once, then not one of ``known`` (``None``: any name is known, for
    a request that matched no documented operation)."""
    params = QueryParams(query_string)
    not_utf8 = set(undecodable_names(query_string))
    out: list[QueryProblem] = []
    for name in dict.fromkeys(params):
        values = tuple(str(v) for v in params.getlist(name))
        if name in not_utf8:
            out.append(QueryProblem("not_utf8", name, values))
        elif len(values) > 1:
            out.append(QueryProblem("repeated", name, values))
        elif known is not None and name not in known:
            out.append(QueryProblem("unknown", name, values))
    return out
