"""A small history given as Python values (one API request) → a validated :class:`DealHistory`.

The HTTP API receives a deal, its account, a few stage changes and a few hundred
touchpoints as already-typed Python values (pydantic parsed them). The general
path, :func:`~dealscore.data.history.from_frames` + :func:`~dealscore.data.validate.validate_history`,
is vectorised for millions of rows; on a request's few hundred its fixed cost of
pandas and Arrow calls per column is most of the time, and it runs on every score.

:func:`history_from_columns` therefore first tries a direct path: the same
rule functions (:mod:`dealscore.data.rules`) called on the request's small
arrays, names looked up in plain Python, and each clean table built once.
It only ever *accepts*: the moment any value is not one it can
vouch for (text with whitespace at an edge, an unknown stage, a duplicate id,
a date out of range, anything the rules would reject or rewrite in a way it
does not reproduce), it steps aside and the general path runs on the very same
tables, so every error, message and field stays exactly the library's.
Whatever it accepts it returns exactly as the general path would (same
frames, dtypes, order and index); ``tests/data/test_request.py`` checks that
on random histories, valid and invalid. A rule added to
:mod:`dealscore.data.rules` for ``validate_history`` is called by a step of
:func:`_direct` as well (or makes it step aside), and that test's generator is
taught to break it.
"""

from __future__ import annotations

import functools
import itertools
import string
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from dealscore._compat import frame_from_blocks
from dealscore.data import rules
from dealscore.data.history import DealHistory, frame_of_columns, from_frames, parse_cut_at
from dealscore.data.schema import DIRECTIONS, TABLES, Column
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
# the event tables and the time that places each row in its deal's life
_EVENT_TIMES = (("stage_history", "changed_at"), ("activities", "occurred_at"))
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


def _direct(
    typed: dict[str, dict[str, np.ndarray]], tax: StageTaxonomy, cut: pd.Timestamp | None,
) -> DealHistory | None:
    """The clean history when every rule holds for every value, else ``None`` (the general path decides).

    The steps follow ``validate_history``'s and call the same rule functions of
    :mod:`dealscore.data.rules` on the request's arrays; each step returns ``None``
    on the first doubt rather than describing the problem, which is the general
    path's job. ``typed`` is left as given (the general path may need it next).
    """
    loaded = _as_loaded(typed)
    if loaded is None:
        return None
    deal_rows = _key_rows(*(loaded[n] for n in REQUEST_TABLES))
    if deal_rows is None:
        return None
    named = _canonical(loaded, tax)
    if named is None or _breaks_rules(named, deal_rows, cut):
        return None
    return _clean_history(named, cut)


def _as_loaded(typed: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, np.ndarray]] | None:
    """The tables as the loader leaves them (dates floored to midnight), or ``None`` when it would change
    or refuse a value: text with whitespace at an edge, too long or holding a NUL, a number that is not
    finite, a date out of the window, a missing required value."""
    plain: dict[int, set[str]] = {}  # per text cap, the texts found plain
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, cols in typed.items():
        out[name] = loaded = {}
        for col in TABLES[name].columns:
            values, gaps = _loaded_column(col, cols[col.name], plain)
            if values is None or (col.required and gaps and bool(rules.missing(values).any())):
                return None
            loaded[col.name] = values
    return out


def _loaded_column(col: Column, values: np.ndarray, plain: dict[int, set[str]]) -> tuple[np.ndarray | None, bool]:
    """One column as the loader leaves it (``None`` when loading would rewrite or refuse one of its values),
    and whether it may hold a missing value."""
    if col.kind == "str":
        gaps = _plain_text(values, col.max_chars, plain.setdefault(col.max_chars, set()))
        return (None, False) if gaps is None else (values, gaps)
    if col.kind in ("int", "float"):
        return (None if bool(rules.infinite(values).any()) else values), True
    if bool(rules.outside_date_window(values).any()):
        return None, False
    return (values.astype("datetime64[D]").astype("datetime64[ns]") if col.kind == "date" else values), True


def _plain_text(values: np.ndarray, cap: int, seen: set[str]) -> bool | None:
    """Whether some value is ``None``, when every other one is a non-blank ``str`` that no trim would change
    and the loader keeps (at most ``cap`` characters, no NUL); ``None`` when one is not.

    Text found plain is a ``str`` or ``None``, so only a column holding a ``None``
    can break the rule :func:`~dealscore.data.rules.missing`: the rule is asked
    only then (pandas' check costs some 40 ns a value on text, a tenth of a request's
    whole direct path). ``seen`` holds the texts already found plain under this cap: a
    request repeats a handful of types, roles and ids hundreds of times.
    """
    fresh = []
    gaps = False
    for v in values.tolist():
        if v is None:
            gaps = True
            continue
        if v.__class__ is not str or not v:
            return None
        if v in seen:
            continue
        first, last = v[0], v[-1]
        if not (first.isalnum() or first in _PLAIN_EDGE) or not (last.isalnum() or last in _PLAIN_EDGE):
            return None
        seen.add(v)
        fresh.append(v)
    if fresh and (rules.holds_nul("".join(fresh)) or rules.too_long(max(map(len, fresh)), cap)):
        return None
    return gaps


def _key_rows(
    accounts: dict[str, np.ndarray], deals: dict[str, np.ndarray], stages: dict[str, np.ndarray],
    acts: dict[str, np.ndarray],
) -> dict[str, np.ndarray] | None:
    """Each event row's deal (its row in ``deals``) per event table, or ``None`` when a key rule breaks:
    a table without rows, an id given twice, an account or deal that its table does not hold."""
    account_ids, deal_ids = accounts["account_id"], deals["deal_id"]
    if len(account_ids) == 0 or len(deal_ids) == 0:
        return None
    if any(bool(rules.duplicated(ids).any()) for ids in (account_ids, deal_ids, acts["activity_id"])):
        return None
    rows = {"deals": _positions(account_ids, deals["account_id"]),
            "stage_history": _positions(deal_ids, stages["deal_id"]),
            "activities": _positions(deal_ids, acts["deal_id"])}
    refs = {"deals": deals["account_id"], "stage_history": stages["deal_id"], "activities": acts["deal_id"]}
    if any(bool(rules.unknown_key(rows[n], refs[n]).any()) for n in rows):
        return None
    del rows["deals"]
    return rows


def _positions(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each value among ``keys`` (distinct), -1 when it is not one: a dict, for a request's few keys."""
    where = {k: i for i, k in enumerate(keys.tolist())}
    return np.fromiter(map(where.get, values.tolist(), itertools.repeat(-1)), dtype=np.intp, count=len(values))


def _canonical(
    tables: dict[str, dict[str, np.ndarray]], tax: StageTaxonomy,
) -> dict[str, dict[str, np.ndarray]] | None:
    """The tables with canonical stage names, activity types, directions, roles and outcomes, or ``None``
    when a spelling is one the taxonomy does not know (or one only an alias would map: the general path's)."""
    vocab = taxonomy_vocabulary(tax)
    stages, acts, deals = tables["stage_history"], tables["activities"], tables["deals"]
    names = {
        ("stage_history", "stage"): _mapped(stages["stage"], lambda k: None if k in vocab.closing
                                            else vocab.stages.get(k)),
        ("activities", "type"): _mapped(acts["type"], tax.canonical_activity, lower=False),
        ("activities", "direction"): _mapped(acts["direction"], lambda k: k if k in DIRECTIONS else None),
        ("activities", "contact_role"): _mapped(acts["contact_role"], lambda k: k if k in vocab.roles else None),
        ("deals", "outcome"): _mapped(deals["outcome"], vocab.outcomes.get),
    }
    if any(v is None for v in names.values()):
        return None
    out = {name: dict(cols) for name, cols in tables.items()}
    for (table, col), values in names.items():
        out[table][col] = values
    return out


def _mapped(values: np.ndarray, canonical: Callable[[str], str | None], *, lower: bool = True) -> np.ndarray | None:
    """Each value's canonical name (missing stays ``None``), or ``None`` when one has none.

    ``canonical`` is asked once per distinct spelling (lower-cased first unless
    ``lower`` is false): a request repeats a handful of them hundreds of times.
    """
    given = values.tolist()
    names = {v: canonical(v.lower() if lower else v) for v in set(given) if v is not None}
    if None in names.values():
        return None
    if all(k == v for k, v in names.items()):
        return values  # already canonical (what the service sends): nothing to rewrite
    names[None] = None
    return _objects(list(map(names.__getitem__, given)))


def _breaks_rules(tables: dict[str, dict[str, np.ndarray]], deal_rows: dict[str, np.ndarray],
                  cut: pd.Timestamp | None) -> bool:
    """Whether a value rule breaks: outcome set exactly when closed, close after creation, amounts
    neither negative nor beyond the largest, nothing after the data cut, each event inside its deal's life."""
    deals = tables["deals"]
    created, closed, outcome = deals["created_at"], deals["closed_at"], deals["outcome"]
    broken = [rules.closed_without_outcome(closed, outcome), rules.outcome_while_open(closed, outcome),
              rules.closed_before_created(created, closed),
              rules.negative(deals["amount"]), rules.negative(tables["stage_history"]["amount"]),
              rules.too_large(deals["amount"]), rules.too_large(tables["stage_history"]["amount"]),
              rules.too_large(tables["accounts"]["annual_revenue"])]
    events = {name: tables[name][col] for name, col in _EVENT_TIMES}
    if cut is not None:
        limit = cut.to_datetime64()
        broken += [rules.after_cut(t, limit) for t in (created, closed, *events.values())]
    for name, when in events.items():
        rows = deal_rows[name]
        broken += rules.outside_life(when, created[rows], closed[rows])
    return any(bool(mask.any()) for mask in broken)


def _clean_history(tables: dict[str, dict[str, np.ndarray]], cut: pd.Timestamp | None) -> DealHistory:
    """The clean tables as a history: events in (deal, time) order, file order on ties."""
    stages, acts = tables["stage_history"], tables["activities"]
    return DealHistory(
        accounts=_table(tables["accounts"]),
        deals=_table(tables["deals"]),
        stage_history=_table(_ordered(stages, stages["deal_id"].tolist(), stages["changed_at"])),
        activities=_table(_ordered(acts, acts["deal_id"].tolist(), acts["occurred_at"])),
        stage_truth=None,
        cut_at=cut,
        meta={},
    )


def _table(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """A clean table from its typed columns: one block per dtype, no inference.

    A third of what ``pd.DataFrame`` of the columns costs (it wraps, checks and
    groups every column again), which on a request is most of the direct path.
    The blocks are fresh arrays, so the frame shares no memory with the caller.
    """
    positions: dict[np.dtype, list[int]] = {}
    values = list(columns.values())
    n = len(values[0])
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
