"""Request payloads → a validated :class:`~dealscore.data.history.DealHistory`.

The HTTP API does not validate deals its own way: it lays the payload out as
the contract's tables (columns of the values pydantic parsed) and hands them to
:func:`~dealscore.data.request.history_from_columns`, which gives exactly what the
``from_frames`` + ``validate_history`` of every other entry point gives, only
without their fixed per-column cost on a request's few rows. What this module adds is
transport-level: the as-of time (facts must be known by then), the payload's
content hash for idempotency, and mapping the library's errors (table, column,
row ids) back onto JSON paths such as ``deals[2].activities[7].type``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from dealscore.data import rules
from dealscore.data.history import DealHistory
from dealscore.data.request import REQUEST_TABLES, history_from_columns
from dealscore.data.schema import TABLES
from dealscore.errors import DataValidationError
from dealscore.taxonomy import StageTaxonomy
from dealscore.times import naive_utc, shown_apart
from dealscore_service.errors import InvalidPayloadError, field_path
from dealscore_service.schemas import DealPayload, SentTime, unknown_fields

Loc = list[str | int]

# A CRM's clock may run a little ahead of ours: facts (and an outcome's close time) this far past "now" are
# accepted (docs/service.md, "Clock skew and close times").
CLOCK_SKEW = timedelta(minutes=5)



@dataclass(frozen=True)
class ConvertedDeals:
    """The validated history of the request's deals and what the service needs besides."""

    history: DealHistory
    as_of: datetime
    hashes: list[str]
    #: per deal id, what the service did to the payload (touchpoints dropped outside the deal's life)
    notices: dict[str, list[str]] = field(default_factory=dict)


def now_utc() -> datetime:
    return naive_utc(datetime.now(UTC))


def in_the_future(t: datetime, now: datetime) -> str | None:
    """Why ``t`` (naive UTC) cannot be a time something happened or was known: later than ``now`` plus
    :data:`CLOCK_SKEW` (``None`` when it is not). One rule for a close time, a payload's ``as_of`` and a
    forecast's, so that each allows the same skew and says so alike."""
    if t <= now + CLOCK_SKEW:
        return None
    minutes = int(CLOCK_SKEW.total_seconds() // 60)
    shown, clock = shown_apart(t, now)
    return (f"{shown} is in the future (the server's clock says {clock} UTC; up to {minutes} minutes ahead are "
            "allowed for clock skew)")


def close_time_problems(closed_at: datetime, created_at: datetime | None, now: datetime) -> list[dict[str, Any]]:
    """What is wrong with an outcome's ``closed_at`` (naive UTC), as field errors at ``closed_at``.

    A deal closes after it was created (``created_at`` as stored with its latest score; ``None``, written before
    the store kept it: not checked) and not after now plus :data:`CLOCK_SKEW`. A close time out of those bounds
    is a mistake in the CRM's data or the integration (a swapped date, an expected close date sent for an actual
    one, a lost time zone); kept, it would date the outcome wrongly in monitoring and retraining.
    """
    loc: Loc = ["body", "closed_at"]
    if created_at is not None and closed_at < created_at:
        return [_field_error(
            loc, f"{closed_at.isoformat()} is before the deal was created ({created_at.isoformat()}, the created_at "
                 "of its latest score)",
            "send when the deal closed, at or after its created_at; if the stored created_at is wrong, score the "
            "deal with the right one first (POST /v1/score)")]
    future = in_the_future(closed_at, now)
    if future is not None:
        return [_field_error(
            loc, future,
            "send when the deal closed, not its expected close date; record the outcome once the deal has closed")]
    return []


def payload_hash(deal: DealPayload, as_of: datetime | None, today: datetime) -> str:
    """Content hash of one deal's payload and the time it is scored for.

    An explicit ``as_of`` is part of the content. Without one the deal is scored
    "now", and re-sending it the same (UTC) day is a replay of the same request,
    while the next day's nightly run is a new score: time passing changes the
    score even when the deal does not (a deal going quiet).

    The content is the parsed payload serialised by pydantic (in Rust, a third of
    the cost of ``model_dump`` + ``json.dumps``): times are normalised to UTC and
    fields come in the schema's order, which holds no free-form mapping, so the
    same deal sent with other key order, spacing or time offsets hashes the same.
    Unknown fields are left out at every level (:func:`unknown_fields`): they are
    ignored, and pydantic keeps them in the order sent, so neither their order nor
    their values make a new score.
    """
    when = as_of.isoformat() if as_of is not None else f"day:{today.date().isoformat()}"
    exclude: dict[str | int, Any] = {"as_of": True, "out_of_life": True}
    for loc, names in unknown_fields(deal):
        node = exclude
        for part in loc:
            node = node.setdefault(part, {})
        node.update(dict.fromkeys(names, True))
    digest = hashlib.sha256(deal.model_dump_json(exclude=exclude).encode("utf-8"))
    digest.update(b"\nas_of:" + when.encode("ascii"))
    return digest.hexdigest()


def _field_error(loc: Loc, message: str, fix: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"loc": loc, "path": field_path(loc), "message": message}
    if fix:
        out["fix"] = fix
    return out


def _checks(deal: DealPayload, prefix: Loc, as_of: datetime, *, now: bool = False) -> list[dict[str, Any]]:
    """Nothing may be dated after ``as_of``; only open deals are scored; the account must be the deal's.

    ``now``: ``as_of`` was omitted (the deal is scored now), so a later time is in the future, and the fix is
    about the time itself, not about ``as_of``.
    """
    problems: list[dict[str, Any]] = []
    if now:
        later_fix = ("send the time the fact happened, not a planned one; check its time zone (a time without an "
                     "offset is UTC)")
    else:
        later_fix = "send only facts known at as_of, or omit as_of to score the deal now"
    known = "now" if now else "as_of"

    def after(loc: Loc, t: datetime | None) -> None:
        if t is not None and t > as_of:
            problems.append(_field_error(loc, f"{t.isoformat()} is after {known} {as_of.isoformat()}", later_fix))

    after([*prefix, "created_at"], deal.created_at)
    after([*prefix, "closed_at"], deal.closed_at)
    if deal.closed_at is not None and rules.closed_by(deal.closed_at, as_of):
        problems.append(_field_error(
            [*prefix, "closed_at"],
            f"deal {deal.deal_id!r} closed ({deal.outcome or 'no outcome'}) at {deal.closed_at.isoformat()}; "
            f"{rules.ONLY_OPEN}",
            "send deals while they are open (closed_at and outcome empty), or pass an as_of before the close"))
    for i, sc in enumerate(deal.stage_history):
        after([*prefix, "stage_history", i, "changed_at"], sc.changed_at)
        after([*prefix, "stage_history", i, "recorded_at"], sc.recorded_at)
    for i, act in enumerate(deal.activities):
        after([*prefix, "activities", i, "occurred_at"], act.occurred_at)
        after([*prefix, "activities", i, "recorded_at"], act.recorded_at)
    if deal.account.account_id is not None and deal.account.account_id != deal.account_id:
        problems.append(_field_error(
            [*prefix, "account", "account_id"],
            f"account.account_id {deal.account.account_id!r} differs from the deal's account_id {deal.account_id!r}",
            "send the deal's own account, or leave account.account_id empty"))
    return problems


def _zone_mix(deals: Sequence[DealPayload], batch: bool, request_times: Sequence[SentTime]) -> list[dict[str, Any]]:
    """The data contract's zone rule over the request's timestamps, as sent (one request is one history).

    All with an offset, or all without one (then taken as UTC): a time without a
    zone among times with one cannot be placed in time. The CLI refuses the same
    mix in a CSV column or across a folder's columns (``dealscore.data.rules.zone_mix``).
    The request's ``as_of`` is one of its times (a deal's own, or the batch's in
    ``request_times``): it is compared with every fact sent.
    """
    sent = [(["body"], t) for t in request_times]
    sent += [(["body", "deals", i] if batch else ["body"], t) for i, d in enumerate(deals) for t in d._sent_times]
    if not sent:
        return []
    naive = rules.zone_mix(np.fromiter((t[2] for _, t in sent), dtype=bool, count=len(sent)))
    if not naive.any():
        return []
    zoned = len(sent) - int(naive.sum())
    return [_field_error(
        [*prefix, *loc], f"{text!r} has no time zone while {zoned} other timestamp(s) of the request carry one",
        "send every timestamp with its offset (e.g. 2025-03-12T14:30:00Z or +01:00), or all without one "
        "(then all are taken as UTC)")
        for (prefix, (loc, text, _)), bad in zip(sent, naive, strict=True) if bad]


class _Frames:
    """The contract tables being built, as columns of the payload's values, with the JSON location of every row."""

    def __init__(self) -> None:
        self.columns: dict[str, dict[str, list[Any]]] = {
            name: {col.name: [] for col in TABLES[name].columns} for name in REQUEST_TABLES
        }
        # per table, runs of rows: (the JSON location, how many rows; None = one row at that location itself).
        # Kept as runs, not one location per touchpoint: they are read only to report an error.
        self.runs: dict[str, list[tuple[Loc, int | None]]] = {k: [] for k in REQUEST_TABLES}
        self.account_seen: dict[str, tuple[dict[str, Any], Loc]] = {}

    def add(self, deal: DealPayload, prefix: Loc, drop: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
        """Lay one deal out as table rows; returns its problems and, with ``drop``, what was dropped.

        ``drop`` leaves out stage changes and touchpoints dated before the deal was
        created (the rows that otherwise fail the deal), each named in a notice.
        """
        problems: list[dict[str, Any]] = []
        notices: list[str] = []
        account = deal.account.model_dump()
        account["account_id"] = deal.account_id
        seen = self.account_seen.get(deal.account_id)
        if seen is None:
            self.account_seen[deal.account_id] = (account, [*prefix, "account"])
            self._append("accounts", account)
            self.runs["accounts"].append(([*prefix, "account"], None))
        elif seen[0] != account:
            problems.append(_field_error(
                [*prefix, "account"],
                f"account {deal.account_id!r} differs from the one sent at {field_path(seen[1])}",
                "send the same profile for deals of the same account"))
        self._append("deals", {name: getattr(deal, name) for name in self.columns["deals"]})
        self.runs["deals"].append((prefix, None))
        # attribute reads, column by column: a model_dump per touchpoint would cost more than the rest
        for table, items, when in (("stage_history", deal.stage_history, "changed_at"),
                                   ("activities", deal.activities, "occurred_at")):
            kept = list(range(len(items)))
            if drop:
                kept = [i for i, item in enumerate(items) if getattr(item, when) >= deal.created_at]
                for i in sorted(set(range(len(items))) - set(kept)):
                    notices.append(
                        f"dropped {field_path([*prefix, table, i])}: {when} "
                        f"{getattr(items[i], when).isoformat()} is before the deal was created "
                        f"({deal.created_at.isoformat()})")
                items = [items[i] for i in kept]
            for name, values in self.columns[table].items():
                values.extend([deal.deal_id] * len(items) if name == "deal_id"
                              else [getattr(item, name) for item in items])
            if len(kept) == len(items) and kept == list(range(len(kept))):
                self.runs[table].append(([*prefix, table], len(items)))
            else:  # rows left out: each kept row keeps its own index in the payload
                self.runs[table].extend(([*prefix, table, i], None) for i in kept)
        return problems, notices

    def _append(self, table: str, row: dict[str, Any]) -> None:
        for name, values in self.columns[table].items():
            values.append(row.get(name))

    def locs(self, table: str) -> list[Loc]:
        """The JSON location of every row of ``table``, in row order."""
        out: list[Loc] = []
        for base, n in self.runs[table]:
            out.extend([base] if n is None else ([*base, i] for i in range(n)))
        return out

    def locate(self, table: str | None, column: str | None, rows: Sequence[int], ids: Sequence[str]) -> list[Loc]:
        """JSON locations of the rows a library error names: by their positions (the error's ``rows``
        field, which the tables keep in payload order), else by id for an error that has no positions."""
        if table is None or table not in self.runs:
            return []
        locs = self.locs(table)
        id_column = {"accounts": "account_id", "deals": "deal_id", "activities": "activity_id"}.get(table)
        out: list[Loc] = [locs[r] for r in rows if 0 <= r < len(locs)]
        for raw in [] if rows else ids:
            if id_column:
                for value, loc in zip(self.columns[table][id_column], locs, strict=True):
                    if value == raw:
                        out.append(loc)
                        break
        suffix: Loc = [column] if column else []
        return [[*loc, *suffix] for loc in out]


#: The library's fixes speak to someone holding a CSV file and the CLI; an API client sends JSON.
_API_FIXES: dict[tuple[str, str], str] = {
    ("stage_history", "stage"): "send one of the stage names (or an alias) of the server's taxonomy: {stages}; "
    "a deal's outcome goes in outcome and closed_at, not in stage_history",
    ("activities", "type"): "send one of the activity types (or an alias) of the server's taxonomy: {types}",
    ("activities", "direction"): "send inbound or outbound (aliases such as 'in'/'out' are accepted), "
    "or leave direction out",
    ("activities", "contact_role"): "send one of {roles} (aliases such as 'Economic Buyer' are accepted), "
    "or leave contact_role out",
    ("activities", "occurred_at"): "send touchpoints dated inside the deal's life, or send out_of_life: \"drop\" "
    "to score without them (they are listed in the result's notices)",
    ("stage_history", "changed_at"): "send stage changes dated inside the deal's life, or send out_of_life: "
    "\"drop\" to score without them (they are listed in the result's notices)",
}
# "(ids: row 5 (deal D1), X2)" in a library message: the service names the rows by their JSON path instead
_IDS = re.compile(r"\s*\(ids: .*\)\s*$")


def _api_fix(p: DataValidationError, taxonomy: StageTaxonomy | None) -> str | None:
    template = _API_FIXES.get((p.table or "", p.column or ""))
    if template is None:
        return p.fix
    tax = taxonomy
    return template.format(stages=list(tax.names) if tax else "see GET /v1/model",
                           types=list(tax.activity_types) if tax else "see GET /v1/model",
                           roles=list(tax.contact_roles) if tax else "see GET /v1/model")


def _library_fields(
    exc: DataValidationError, frames: _Frames, taxonomy: StageTaxonomy | None,
) -> list[dict[str, Any]]:
    """Each library problem as field errors at the JSON paths of the rows it names (one numbering: the path's)."""
    fields: list[dict[str, Any]] = []
    for p in exc.problems or [exc]:
        if not isinstance(p, DataValidationError):
            continue
        locs = frames.locate(p.table, p.column, p.rows, p.ids)
        message = p.summary
        if locs:
            message = _IDS.sub("", message)
            message = message.replace(f"table {p.table}, column {p.column}: ", "")
        else:
            locs = [["body", p.table or "deal", *([p.column] if p.column else [])]]
        fix = _api_fix(p, taxonomy)
        fields.extend(_field_error(loc, message, fix) for loc in locs)
    return fields


def _invalid(fields: list[dict[str, Any]]) -> InvalidPayloadError:
    """One 422 naming every problem found, each at its field path."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for f in fields:
        key = (f["path"], f["message"])
        if key not in seen:
            seen.add(key)
            unique.append(f)
    summary = "; ".join(f"{p['path']}: {p['message']}" for p in unique[:5])
    more = f" (and {len(unique) - 5} more)" if len(unique) > 5 else ""
    return InvalidPayloadError(f"the deal payload is invalid: {summary}{more}", fields=unique,
                               fix=unique[0].get("fix"))


def to_history(
    deals: Sequence[DealPayload], *, as_of: datetime | None, taxonomy: StageTaxonomy | None,
    batch: bool, now: datetime | None = None, out_of_life: str = "fail", request_times: Sequence[SentTime] = (),
) -> ConvertedDeals:
    """Validate the request's deals through the library and return their clean history.

    ``batch`` decides the JSON paths (``deals[i]....`` vs the body itself). Without
    ``as_of`` the deals are scored now, allowing a few minutes of client clock skew.
    ``request_times`` are the request's timestamps outside its deals, as sent (a
    batch's ``as_of``), for the zone rule.
    """
    now = now or now_utc()
    effective = as_of
    if effective is None:
        latest = max((_latest_fact(d) for d in deals), default=now)
        effective = max(now, latest) if latest <= now + CLOCK_SKEW else now
    frames = _Frames()
    problems: list[dict[str, Any]] = _zone_mix(deals, batch, request_times) + _future_as_of(as_of, now)
    notices: dict[str, list[str]] = {}
    for i, deal in enumerate(deals):
        prefix: Loc = ["body", "deals", i] if batch else ["body"]
        problems.extend(_checks(deal, prefix, effective, now=as_of is None))
        found, dropped = frames.add(deal, prefix, drop=out_of_life == "drop")
        problems.extend(found)
        noted = [*dropped, *_close_date_notice(deal)]
        if noted:
            notices[deal.deal_id] = noted
    try:
        # with problems already found, the contract's rules still run (without the as-of cut, which the
        # checks above named field by field), so one 422 lists every independent mistake
        clean = history_from_columns(frames.columns, taxonomy=taxonomy,
                                     cut_at=None if problems else pd.Timestamp(effective), on_out_of_life="fail")
    except DataValidationError as exc:
        raise _invalid(problems + _library_fields(exc, frames, taxonomy)) from exc
    if problems:
        raise _invalid(problems)
    hashes = [payload_hash(d, as_of, now) for d in deals]
    return ConvertedDeals(history=clean, as_of=effective, hashes=hashes, notices=notices)


def _close_date_notice(deal: DealPayload) -> list[str]:
    """A notice when the expected close day is before the day the deal was created
    (:func:`dealscore.data.rules.close_date_before_created`): scored as sent, but said, since the deal then
    reads as overdue from its first day; the CLI's load report warns of the same rows."""
    day = deal.expected_close_date
    if day is None or not rules.close_date_before_created(np.array([deal.created_at], dtype="datetime64[ns]"),
                                                          np.array([day], dtype="datetime64[ns]"))[0]:
        return []
    return [f"expected_close_date {day.isoformat()} is before the day the deal was created "
            f"({deal.created_at.date().isoformat()}); scored as sent, so the deal reads as overdue: check the date"]


def _future_as_of(as_of: datetime | None, now: datetime) -> list[dict[str, Any]]:
    """An explicit ``as_of`` later than now (plus :data:`CLOCK_SKEW`) as a field error at ``as_of``.

    Scored "as of" next year, a deal's score would be the newest of its history until then: every later
    score would be a back-fill that cannot move it, and the forecast, which starts from the newest open
    score, would start in that year. Nothing in a payload can be known at a time that has not come.
    """
    future = None if as_of is None else in_the_future(as_of, now)
    if future is None:
        return []
    return [_field_error(["body", "as_of"], future,
                         "omit as_of to score the deal now, or send the past time the payload describes")]


def _latest_fact(deal: DealPayload) -> datetime:
    """The latest time at which something in the payload became known."""
    times = [deal.created_at]
    times += [t for sc in deal.stage_history for t in (sc.changed_at, sc.recorded_at) if t is not None]
    times += [t for a in deal.activities for t in (a.occurred_at, a.recorded_at) if t is not None]
    return max(times)
