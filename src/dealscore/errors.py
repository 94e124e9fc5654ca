"""One error root for the whole product.

Every error a user can cause derives from :class:`DealscoreError` and carries the
HTTP status the service should answer with, so the service needs exactly one
exception handler and the CLI exactly one ``except`` clause: neither ever shows
a traceback for bad input.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


class DealscoreError(Exception):
    """Root of all errors dealscore raises on purpose.

    ``http_status`` tells the service which 4xx/5xx to answer; ``detail`` holds
    machine-readable context (table, column, offending ids) for API clients.
    """

    http_status: int = 400

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def __str__(self) -> str:
        return self.message


class ConfigError(DealscoreError):
    """A configuration file (taxonomy, playbook, mapping, settings) is invalid."""

    http_status = 500


class DataValidationError(DealscoreError):
    """A deal history breaks the data contract (DESIGN §3).

    The message always names the table, the column, up to five offending ids and
    how to fix it, because the person reading it is usually a sales-ops analyst
    looking at a CRM export, not the author of the code. The same facts are fields
    for programs: ``table``, ``column``, ``ids`` (labels as the message shows them),
    ``rows`` (the offending rows' positions in the table, 0 = first data row) and
    ``fix``; ``summary`` is the message with its ids but without the fix. A caller
    mapping an error back onto its own input (the service's JSON paths) reads
    ``rows``, never the text.
    """

    http_status = 422

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        column: str | None = None,
        ids: Sequence[Any] = (),
        rows: Sequence[int] = (),
        fix: str | None = None,
        problems: Iterable[DealscoreError] = (),
    ) -> None:
        self.table = table
        self.column = column
        self.ids = [str(i) for i in list(ids)[:5]]
        self.rows = [int(r) for r in list(rows)[:5]]
        self.fix = fix
        self.problems = list(problems)
        text = message
        if ids and "ids" not in message:
            text += f" (e.g. {', '.join(self.ids)})"
        self.summary = text
        if fix:
            text += f". Fix: {fix}"
        super().__init__(text, table=table, column=column, ids=self.ids, fix=fix)


def combined(problems: Sequence[DealscoreError], where: str) -> DealscoreError:
    """One problem as it is, several as one error that lists them all (with the first one's fields).

    A user fixing an export wants the whole list in one run, not one round trip per mistake. Problems that
    are themselves lists (a table's columns) are flattened into the one list.
    """
    flat = [q for p in problems for q in (getattr(p, "problems", None) or [p])]
    if len(flat) == 1:
        return flat[0]
    first = flat[0]
    text = f"{len(flat)} problems in {where}:\n" + "\n".join(f"  - {p}" for p in flat)
    return DataValidationError(text, table=getattr(first, "table", None), column=getattr(first, "column", None),
                               ids=getattr(first, "ids", ()), rows=getattr(first, "rows", ()), fix=None,
                               problems=flat)


class InsufficientDataError(DealscoreError):
    """The history is too thin to learn from; the message says how much more is needed."""

    http_status = 422


class ModelNotReadyError(DealscoreError):
    """No model bundle is loaded (registry down and no local copy)."""

    http_status = 503


class BundleFormatError(ModelNotReadyError):
    """A bundle written in another format version: this installation can neither score nor serve it."""


class NoChampionError(ModelNotReadyError):
    """The registry answered that the model has no champion (none promoted yet, or its alias removed).

    An answer, not an outage: a local copy of an earlier champion must not be served in its place.
    """


class StoreUnavailableError(DealscoreError):
    """The score store cannot be reached; clients should retry later."""

    http_status = 503


class NotFoundError(DealscoreError):
    """A requested deal, model version or resource does not exist."""

    http_status = 404
