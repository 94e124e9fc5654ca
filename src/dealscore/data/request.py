"""A small history given as Python values (one API request) → a validated :class:`DealHistory`.

The HTTP API receives a deal, its account, a few stage changes and a few hundred
touchpoints as already-typed Python values (pydantic parsed them). The general
path, :func:`~dealscore.data.history.from_frames` + :func:`~dealscore.data.validate.validate_history`,
is vectorised for millions of rows; on a request's few hundred its fixed cost of
pandas and Arrow calls per column is most of the time, and it runs on every score.

:func:`history_from_columns` therefore first tries a direct path: the same
contract rules checked value by value in plain Python, and each clean table
built once. It only ever *accepts*: the moment any value is not one it can
vouch for (text with whitespace at an edge, an unknown stage, a duplicate id,
a date out of range, anything the rules would reject or rewrite in a way it
does not reproduce), it steps aside and the general path runs on the very same
tables, so every error, message and field stays exactly the library's.
Whatever it accepts it returns exactly as the general path would (same
frames, dtypes, order and index); ``tests/data/test_request.py`` checks that
on random histories, valid and invalid. A rule added to ``validate_history``
must be added to :func:`_direct` as well (or make it step aside), or that
test's generator taught to break it.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from dealscore._compat import frame_from_blocks
from dealscore.data.history import DealHistory, frame_of_columns, from_frames, parse_cut_at
from dealscore.data.schema import DIRECTIONS, TABLES
from dealscore.data.validate import OutOfLifePolicy, cached_default_taxonomy, taxonomy_vocabulary, validate_history
from dealscore.taxonomy import StageTaxonomy

#: One table as columns of Python values: ``{column: [value, ...]}``, all of one length.
Columns = Mapping[str, Sequence[Any]]

#: The tables a request carries (``stage_truth`` never comes with one).
REQUEST_TABLES = ("accounts", "deals", "stage_history", "activities")

_NAT = np.datetime64("NaT", "ns")
_NAT_INT = np.iinfo(np.int64).min  # NaT's integer
_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
# microseconds since the epoch that nanoseconds in int64 can hold (about 1678-2261)
_NS_RANGE = (np.iinfo(np.int64).min // 1000 + 1, np.iinfo(np.int64).max // 1000)
_EARLIEST = np.datetime64("1900-01-01", "ns")
_LATEST = np.datetime64("2200-01-01", "ns")
# characters that no whitespace trim removes: a text starting and ending with one is already trimmed
_PLAIN_EDGE = frozenset(string.punctuation)
# rows above which sorting them by (deal, time) is cheaper in NumPy than in Python
_SMALL_SORT = 1000


def typed_columns(table: str, columns: Columns) -> dict[str, np.ndarray]:
    """A table's contract columns as NumPy arrays of their kind; columns not given are all missing.

    Text stays Python objects (``None`` for missing), numbers become float64
    (NaN for missing), times and dates ``datetime64[ns]`` (NaT for missing).
    """
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"table {table}: columns of different lengths {sorted(lengths)}")
    n = lengths.pop() if lengths else 0
    out: dict[str, np.ndarray] = {}
    for col in TABLES[table].columns:
        values = columns.get(col.name)
        if col.kind in ("timestamp", "date"):
            out[col.name] = np.full(n, _NAT) if values is None else _times(values)
        elif col.kind in ("int", "float"):
            out[col.name] = np.full(n, np.nan) if values is None else np.array(
                [np.nan if v is None else v for v in values], dtype="float64")
        else:
            arr = np.empty(n, dtype=object)
            arr[:] = [None] * n if values is None else list(values)
            out[col.name] = arr
    return out


def _times(values: Sequence[Any]) -> np.ndarray:
    """Times and dates (``None`` for missing) as ``datetime64[ns]``, one NumPy conversion for the column.

    Values with a zone keep NumPy's own per-value conversion (and its warning):
    the API sends naive UTC, and this must not change what anyone else gets.
    """
    if any(getattr(v, "tzinfo", None) is not None for v in values):
        return np.array([_NAT if v is None else np.datetime64(v, "ns") for v in values], dtype="datetime64[ns]")
    if all(v is None or v.__class__ is datetime for v in values):
        # NumPy converts a datetime object in microseconds each; integer arithmetic is several times faster
        micros = [_NAT_INT if v is None else (v - _EPOCH) // _MICROSECOND for v in values]
        if all(_NS_RANGE[0] <= m < _NS_RANGE[1] for m in micros if m != _NAT_INT):
            ns = np.array(micros, dtype=np.int64)
            ns[ns != _NAT_INT] *= 1000
            return ns.view("datetime64[ns]")
    return np.array(values, dtype="datetime64[ns]")


def frames_from_columns(tables: Mapping[str, Columns]) -> dict[str, pd.DataFrame]:
    """The tables as typed DataFrames, every contract column present, in contract order.

    Typed (rather than text for ``from_frames`` to parse) because the loader then
    passes the columns through untouched.
    """
    out = {}
    for name, columns in tables.items():
        typed = typed_columns(name, columns)
        n = len(next(iter(typed.values()))) if typed else 0
        out[name] = frame_of_columns(dict(typed), n)
    return out


def history_from_columns(
    tables: Mapping[str, Columns], *, taxonomy: StageTaxonomy | None = None,
    cut_at: pd.Timestamp | datetime | None = None, on_out_of_life: OutOfLifePolicy = "fail",
) -> DealHistory:
    """The validated history of a few deals given as columns of Python values.

    Exactly ``validate_history(from_frames(frames_from_columns(tables), cut_at=cut_at), ...)[0]``
    (same frames, same errors), only without its fixed cost when the values are
    already clean. No load report: with ``on_out_of_life="fail"`` (the API's
    policy) a request has nothing dropped to report.
    """
    tax = taxonomy or cached_default_taxonomy()
    typed = {name: typed_columns(name, tables[name]) for name in REQUEST_TABLES if name in tables}
    cut = parse_cut_at(cut_at)
    if set(tables) == set(REQUEST_TABLES):
        direct = _direct(typed, tax, cut)
        if direct is not None:
            return direct
    frames = {name: frame_of_columns(dict(cols), len(cols[TABLES[name].columns[0].name]))
              for name, cols in typed.items()}
    for name, cols in tables.items():  # stage_truth, or a misnamed table for from_frames to refuse
        if name not in typed:
            frames[name] = frames_from_columns({name: cols})[name] if name in TABLES else pd.DataFrame(dict(cols))
    history = from_frames(frames, cut_at=cut)
    return validate_history(history, tax, on_out_of_life=on_out_of_life)[0]


def _plain_text(values: np.ndarray, required: bool, seen: set[str]) -> bool:
    """Every value is ``None`` (when allowed) or a non-blank ``str`` that no trim would change.

    ``seen`` holds the texts already found plain: a request repeats a handful of
    types, roles and ids hundreds of times.
    """
    for v in values.tolist():
        if v is None:
            if required:
                return False
            continue
        if v.__class__ is not str:
            return False
        if v in seen:
            continue
        if not v:
            return False
        first, last = v[0], v[-1]
        if not (first.isalnum() or first in _PLAIN_EDGE) or not (last.isalnum() or last in _PLAIN_EDGE):
            return False
        seen.add(v)
    return True


def _direct(
    typed: dict[str, dict[str, np.ndarray]], tax: StageTaxonomy, cut: pd.Timestamp | None,
) -> DealHistory | None:
    """The clean history when every rule holds for every value, else ``None`` (the general path decides).

    The checks follow ``validate_history`` rule by rule; each returns ``None`` on
    the first doubt rather than describing the problem, which is the general path's job.
    ``typed`` is left as given (the general path may need it next).
    """
    typed = {name: dict(cols) for name, cols in typed.items()}
    # ---- loading: text already trimmed and non-blank, times within the plausible window
    plain: set[str] = set()
    for name, cols in typed.items():
        for col in TABLES[name].columns:
            values = cols[col.name]
            if col.kind == "str":
                if not _plain_text(values, col.required, plain):
                    return None
            elif col.kind in ("timestamp", "date"):
                present = values[~np.isnat(values)]
                if len(present) and (present.min() < _EARLIEST or present.max() >= _LATEST):
                    return None
                if col.kind == "date":
                    cols[col.name] = values.astype("datetime64[D]").astype("datetime64[ns]")
                if col.required and len(present) != len(values):
                    return None
    accounts, deals, stages, acts = (typed[n] for n in REQUEST_TABLES)
    if len(accounts["account_id"]) == 0 or len(deals["deal_id"]) == 0:
        return None
    # ---- unique ids and foreign keys
    account_ids = accounts["account_id"].tolist()
    deal_ids = deals["deal_id"].tolist()
    activity_ids = [a for a in acts["activity_id"].tolist() if a is not None]
    if len(set(account_ids)) != len(account_ids) or len(set(deal_ids)) != len(deal_ids) \
            or len(set(activity_ids)) != len(activity_ids):
        return None
    known_accounts = set(account_ids)
    if any(a not in known_accounts for a in deals["account_id"].tolist()):
        return None
    deal_row = {d: i for i, d in enumerate(deal_ids)}
    stage_deals, act_deals = stages["deal_id"].tolist(), acts["deal_id"].tolist()
    if any(d not in deal_row for d in stage_deals) or any(d not in deal_row for d in act_deals):
        return None
    # ---- canonical names (a spelling the taxonomy does not know, or an outcome used as a stage)
    vocab = taxonomy_vocabulary(tax)
    canonical: dict[str, str] = {}
    stage_names = []
    for v in stages["stage"].tolist():
        key = v.lower()
        if key in vocab.closing or (c := vocab.stages.get(key)) is None:
            return None
        stage_names.append(c)
    types = []
    for v in acts["type"].tolist():
        c = canonical.get(v)
        if c is None:
            c = tax.canonical_activity(v)
            if c is None:
                return None
            canonical[v] = c
        types.append(c)
    directions = _lowered(acts["direction"], frozenset(DIRECTIONS))
    roles = _lowered(acts["contact_role"], vocab.roles)
    if directions is None or roles is None:
        return None
    outcomes = []
    for v in deals["outcome"].tolist():
        if v is None:
            outcomes.append(None)
        elif (c := vocab.outcomes.get(v.lower())) is None:
            return None
        else:
            outcomes.append(c)
    # ---- outcomes, amounts, the data cut and each event inside its deal's life
    created, closed = deals["created_at"], deals["closed_at"]
    is_closed = ~np.isnat(closed)
    if any(c != (o is not None) for c, o in zip(is_closed.tolist(), outcomes, strict=True)):
        return None
    if bool((closed[is_closed] < created[is_closed]).any()):
        return None
    if bool((deals["amount"] < 0).any()) or bool((stages["amount"] < 0).any()):
        return None
    changed, occurred = stages["changed_at"], acts["occurred_at"]
    if cut is not None:
        limit = cut.to_datetime64()
        if any(bool((t[~np.isnat(t)] > limit).any()) for t in (created, closed, changed, occurred)):
            return None
    for deal_col, when in ((stage_deals, changed), (act_deals, occurred)):
        rows = np.array([deal_row[d] for d in deal_col], dtype=np.intp)
        if bool((when < created[rows]).any()) or bool((when > closed[rows]).any()):  # NaT compares False
            return None
    # ---- the clean tables: canonical names, events in (deal, time) order, file order on ties
    stages = {**stages, "stage": _objects(stage_names)}
    acts = {**acts, "type": _objects(types), "direction": directions, "contact_role": roles}
    deals = {**deals, "outcome": _objects(outcomes)}
    return DealHistory(
        accounts=_table(accounts, len(account_ids)),
        deals=_table(deals, len(deal_ids)),
        stage_history=_table(_ordered(stages, stage_deals, changed), len(stage_deals)),
        activities=_table(_ordered(acts, act_deals, occurred), len(act_deals)),
        stage_truth=None,
        cut_at=cut,
        meta={},
    )


def _table(columns: dict[str, np.ndarray], n: int) -> pd.DataFrame:
    """A clean table from its typed columns: one block per dtype, no inference.

    A third of what ``pd.DataFrame`` of the columns costs (it wraps, checks and
    groups every column again), which on a request is most of the direct path.
    The blocks are fresh arrays, so the frame shares no memory with the caller.
    """
    positions: dict[np.dtype, list[int]] = {}
    values = list(columns.values())
    for i, v in enumerate(values):
        positions.setdefault(v.dtype, []).append(i)
    blocks = [(np.array([values[i] for i in idx]).reshape(len(idx), n), np.array(idx, dtype=np.intp))
              for idx in positions.values()]
    return frame_from_blocks(blocks, pd.RangeIndex(n), _labels(tuple(columns)))


@functools.lru_cache(maxsize=32)
def _labels(names: tuple[str, ...]) -> pd.Index:
    """Column labels, made once per table layout (an Index is immutable, so frames may share it)."""
    return pd.Index(list(names))


def _objects(values: list[Any]) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


def _lowered(values: np.ndarray, allowed: frozenset[str]) -> np.ndarray | None:
    """Lower-cased spellings (missing stays ``None``), or ``None`` when one is not allowed."""
    out = []
    for v in values.tolist():
        if v is None:
            out.append(None)
            continue
        key = v.lower()
        if key not in allowed:
            return None
        out.append(key)
    return _objects(out)


def _ordered(cols: dict[str, np.ndarray], deal_ids: list[str], when: np.ndarray) -> dict[str, np.ndarray]:
    """The rows sorted by deal id, then time, ties in the order given (a stable sort).

    A batch's thousands of rows sort in NumPy (deal ids ranked by ``np.unique``,
    then one stable ``lexsort``); one deal's few hundred in plain Python, where
    NumPy's per-call cost would be most of the time.
    """
    if len(deal_ids) > _SMALL_SORT:
        _, deal_rank = np.unique(np.asarray(deal_ids, dtype=object), return_inverse=True)
        idx = np.lexsort((when.view("int64"), deal_rank.ravel()))
        if bool((idx == np.arange(len(idx))).all()):
            return cols
    else:
        times = when.view("int64").tolist()
        order = sorted(range(len(deal_ids)), key=lambda i: (deal_ids[i], times[i]))
        if order == list(range(len(order))):
            return cols
        idx = np.array(order, dtype=np.intp)
    return {name: values[idx] for name, values in cols.items()}


__all__ = ["REQUEST_TABLES", "Columns", "frames_from_columns", "history_from_columns", "typed_columns"]
