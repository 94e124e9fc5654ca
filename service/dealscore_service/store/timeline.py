"""What the store keeps of a scored request for the deal page's timeline: touchpoints and CRM stage changes.

They are taken from the request's *validated* history, not from the raw JSON,
so the timeline shows exactly what was scored, in the library's canonical
spelling (activity types, directions, roles and stage names as the taxonomy
maps them). Times are naive-UTC ISO strings to the second (dates for the close
date), the product's convention; each deal's entries are oldest first.

Stored form: one JSON object per score and table, *columnar* — one array per
field, all of the same length (``{"occurred_at": [...], "type": [...], ...}``).
This runs on the scoring hot path, and for a deal with 200 touchpoints the
columnar form is half the bytes of a list of objects, several times faster to
encode, and needs no per-row dict at all: each column is converted once, with
numpy, straight from the history's frame. :func:`to_rows` turns it back into the
list of ``{field: value}`` dicts the rest of the code reads.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from dealscore.data.history import DealHistory

#: The fields kept per touchpoint (contract table ``activities``).
TOUCHPOINT_FIELDS = ("occurred_at", "type", "direction", "contact_role", "contact_id")
#: The fields kept per CRM stage change (contract table ``stage_history``).
STAGE_CHANGE_FIELDS = ("changed_at", "stage", "amount", "expected_close_date")
_DATES = frozenset({"expected_close_date"})

Columns = dict[str, list[Any]]


@dataclass(frozen=True)
class DealTimeline:
    """One deal's touchpoints and stage changes in their stored (columnar, JSON-ready) form."""

    touchpoints: Columns
    stage_changes: Columns


def empty(fields: tuple[str, ...]) -> Columns:
    """The stored form of "kept, there were none" (distinct from ``None``: not kept)."""
    return {f: [] for f in fields}


def _plain(v: Any) -> Any:
    """A text cell that is not a plain string: missing (None, NaN, NA) → ``None``, anything else → ``str``."""
    if v is None or v is pd.NA or v != v:
        return None
    return str(v)


def _columns(frame: pd.DataFrame, names: tuple[str, ...]) -> list[list[Any]]:
    """Columns as JSON-ready Python lists; missing values (and a missing optional column) become ``None``.

    One pandas access per column, then numpy (ISO formatting of times) or a
    plain list pass: on one request's 200 touchpoints the per-call overhead of
    pandas is most of the cost, so nothing here goes through it row by row.
    """
    out: list[list[Any]] = []
    for n in names:
        if n not in frame.columns:
            out.append([None] * len(frame))
            continue
        values = frame[n].to_numpy()
        if values.dtype.kind == "M":
            iso = np.datetime_as_string(values, unit="D" if n in _DATES else "s").tolist()
            out.append([None if t == "NaT" else t for t in iso])
        elif values.dtype.kind in "fiub":
            out.append([None if v != v else v for v in values.astype("float64").tolist()])
        else:
            out.append([v if v.__class__ is str else _plain(v) for v in values.tolist()])
    return out


def _split(frame: pd.DataFrame, fields: tuple[str, ...], order_by: str,
           deal_ids: Collection[str] | None, only: str | None = None) -> dict[str, Columns]:
    """Each deal's rows of ``frame`` as columns of ``fields``, oldest first (``only``: the frame holds one deal)."""
    if frame.empty:
        return {}
    if deal_ids is not None:
        frame = frame[frame["deal_id"].isin(list(deal_ids))]
        if frame.empty:
            return {}
    columns = _columns(frame, fields)
    positions: dict[str, range | list[int]]
    if only is not None:
        positions = {only: range(len(frame))}
    else:
        deals = [str(d) for d in frame["deal_id"].to_numpy(dtype=object).tolist()]
        groups: dict[str, list[int]] = {}
        for i, d in enumerate(deals):
            groups.setdefault(d, []).append(i)
        positions = dict(groups)
    key = fields.index(order_by)
    out: dict[str, Columns] = {}
    for deal, idx in positions.items():
        if isinstance(idx, range):
            picked = columns
        elif idx[-1] - idx[0] + 1 == len(idx):  # contiguous (a validated history is sorted by deal)
            picked = [c[idx[0]:idx[-1] + 1] for c in columns]
        else:
            picked = [[c[i] for i in idx] for c in columns]
        times = [t or "" for t in picked[key]]
        if any(a > b for a, b in pairwise(times)):  # ISO strings sort as times
            order = sorted(range(len(times)), key=times.__getitem__)
            picked = [[c[i] for i in order] for c in picked]
        out[deal] = dict(zip(fields, picked, strict=True))
    return out


def deal_timelines(history: DealHistory, deal_ids: Collection[str] | None = None) -> dict[str, DealTimeline]:
    """The touchpoints and stage changes of each deal in ``history`` (or of ``deal_ids`` only, all in it).

    Every requested deal gets an entry, with empty columns when the request had
    no touchpoints or stage changes for it: "kept, there were none" is not the
    same as "not kept".
    """
    if deal_ids is None:
        ids = [str(d) for d in history.deals["deal_id"].tolist()]
        subset = None
    else:
        ids = [str(d) for d in deal_ids]
        subset = None if len(ids) == len(history.deals) else ids
    # one deal scored on its own (the hot path): every row is that deal's, no need to read deal ids
    only = ids[0] if len(ids) == 1 and subset is None else None
    touches = _split(history.activities, TOUCHPOINT_FIELDS, "occurred_at", subset, only)
    stages = _split(history.stage_history, STAGE_CHANGE_FIELDS, "changed_at", subset, only)
    return {d: DealTimeline(touches.get(d) or empty(TOUCHPOINT_FIELDS), stages.get(d) or empty(STAGE_CHANGE_FIELDS))
            for d in ids}


def to_rows(stored: Mapping[str, Any] | None, fields: tuple[str, ...]) -> list[dict[str, Any]] | None:
    """The stored columns as a list of ``{field: value}`` dicts (``None`` stays ``None``: not kept).

    Lenient on purpose: a field the stored object lacks (written by an older or
    newer version) reads as ``None`` rather than breaking the deal page.
    """
    if stored is None:
        return None
    cols = [stored.get(f) if isinstance(stored.get(f), list) else [] for f in fields]
    n = max((len(c) for c in cols), default=0)
    cols = [c if len(c) == n else [*c, *[None] * (n - len(c))] for c in cols]
    return [dict(zip(fields, values, strict=True)) for values in zip(*cols, strict=True)]


__all__ = ["STAGE_CHANGE_FIELDS", "TOUCHPOINT_FIELDS", "DealTimeline", "deal_timelines", "empty", "to_rows"]
