"""The history's tables as checked numpy arrays: the only place features touch pandas input.

Feature code works on int64 nanoseconds and small integer codes, which is what
makes one deal scored now cost microseconds instead of milliseconds. The checks
here are the cheap ones a validated history always passes (names in the
taxonomy, ids that resolve, parsed timestamps); a history that fails them was not
run through :func:`dealscore.data.validate.validate_history`, and the error says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd

from dealscore._compat import column_array, column_names, naive_ns_columns
from dealscore.data.history import DealHistory
from dealscore.errors import DataValidationError
from dealscore.features.timeline import NAT
from dealscore.times import naive_utc

VALIDATE_FIX = "load it with dealscore.data.validate.load_and_validate (or run `dealscore validate DIR`) first"
_NS = np.dtype("datetime64[ns]")
SMALL = 1_000  # up to this many values, lookups run value by value (cheaper than hashing a whole column)


def raw_column(frame: pd.DataFrame, name: str) -> Any:
    """The stored array of one column (ndarray or pandas extension array), without building a Series.

    ``frame[name]`` constructs a Series each time, which costs more than many of the
    features of one deal (see :func:`dealscore._compat.column_array`); repeated
    column names take the public route.
    """
    loc = frame.columns.get_loc(name)
    if isinstance(loc, int):
        return column_array(frame, loc)
    return frame[name].array


def as_ns(values: Any, *, table: str, column: str) -> np.ndarray:
    """A timestamp column as int64 nanoseconds (NaT -> ``NAT``), whatever its datetime unit or zone."""
    raw = values.values if isinstance(values, pd.Series | pd.Index) else values
    if isinstance(raw, pd.arrays.DatetimeArray) and raw.tz is None:
        raw = np.asarray(raw)
    if isinstance(raw, np.ndarray) and raw.dtype.kind == "M":  # the common case, and the cheap one
        return (raw if raw.dtype == _NS else raw.astype(_NS)).view(np.int64)
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return naive_utc(s).to_numpy(dtype=_NS).view(np.int64)
    if len(s) == 0:
        return np.zeros(0, dtype=np.int64)
    if s.isna().all():
        return np.full(len(s), NAT, dtype=np.int64)
    raise DataValidationError(
        f"table {table}, column {column}: holds {s.dtype} values, not parsed timestamps",
        table=table, column=column, fix=VALIDATE_FIX,
    )


def times(frame: pd.DataFrame, name: str, table: str, raw: Any = None) -> np.ndarray:
    """A timestamp column in ns, or all-NaT when the optional column is absent."""
    if raw is None:
        if name not in frame.columns:
            return np.full(len(frame), NAT, dtype=np.int64)
        raw = raw_column(frame, name)
    return as_ns(raw, table=table, column=name)


def column(frame: pd.DataFrame, name: str, kind: str = "str", raw: Any = None) -> np.ndarray:
    """A column as numpy (object for strings, float64 for numbers), all-missing when an optional one is absent."""
    if raw is None:
        if name not in frame.columns:
            return np.full(len(frame), np.nan) if kind == "float" else np.full(len(frame), None, dtype=object)
        raw = raw_column(frame, name)
    if kind == "float":
        if isinstance(raw, np.ndarray) and raw.dtype == np.float64:
            return raw
        return pd.to_numeric(pd.Series(raw), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    if isinstance(raw, np.ndarray) and raw.dtype == object:
        return raw
    return np.asarray(raw.to_numpy(dtype=object) if hasattr(raw, "to_numpy") else raw, dtype=object)


@dataclass(frozen=True)
class Vocab:
    """A fixed vocabulary (names in code order) and its lookup."""

    names: tuple[str, ...]
    lookup: dict[Any, int]

    @classmethod
    def of(cls, names: list[str] | tuple[str, ...]) -> Vocab:
        names = tuple(names)
        return cls(names, {n: i for i, n in enumerate(names)})

    def __len__(self) -> int:
        return len(self.names)

    def codes(self, values: Any) -> tuple[np.ndarray, list[Any]]:
        """Code of each value (-1 for missing or unknown) and the distinct present values that are unknown.

        Few values (one deal scored now) are looked up one by one; many are
        factorized first so the lookup runs once per distinct value.
        """
        lookup = self.lookup
        if len(values) <= SMALL:
            arr = _objects(values)
            # one dict lookup per value beats one vectorised comparison per vocabulary word from two words on
            values_list = arr.tolist()
            codes = np.fromiter(map(lookup.get, values_list, repeat(-1, len(values_list))), dtype=np.int64,
                                count=len(values_list))
            unknown: list[Any] = []
            if (codes < 0).any():
                unknown = list(dict.fromkeys(v for v in arr[codes < 0].tolist() if not _is_missing(v)))
            return codes, unknown
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        lut = np.array([lookup.get(u, -1) for u in uniques] + [-1], dtype=np.int64)
        unknown = [u for u, c in zip(uniques, lut[:-1], strict=True) if c < 0]
        return lut[codes], unknown


def _is_missing(value: Any) -> bool:
    """What :func:`pandas.isna` says of one value, without its per-call cost (None, NaN, NaT, pd.NA)."""
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)


def _objects(values: Any) -> np.ndarray:
    """Values as an object array (no copy when they already are one)."""
    raw = values.values if isinstance(values, pd.Series | pd.Index) else values
    if isinstance(raw, np.ndarray) and raw.dtype == object:
        return raw
    if isinstance(values, pd.Series | pd.Index):
        return values.to_numpy(dtype=object)
    return np.asarray(values, dtype=object)


DIRECTIONS = Vocab.of(["inbound", "outbound"])


def encode(table: Table, name: str, vocab: Vocab, *, required: bool = False) -> np.ndarray:
    """Codes of a column that must stay inside its vocabulary; -1 where missing (or the column is absent)."""
    if not table.has(name):
        return np.full(table.n, -1, dtype=np.int64)
    values = table.labels(name)
    codes, unknown = vocab.codes(values)
    if unknown:
        bad = pd.Series(np.asarray(values, dtype=object)).isin(unknown).to_numpy()
        ids = [str(d) for d in table.strings("deal_id")[bad][:5]]
        raise DataValidationError(
            f"table {table.name}, column {name}: values {sorted(map(str, unknown))[:5]} are not among the "
            f"configured {list(vocab.names)} (rows of deals {ids})",
            table=table.name, column=name, ids=ids, fix=VALIDATE_FIX,
        )
    if required and (codes < 0).any():
        ids = [str(d) for d in table.strings("deal_id")[codes < 0][:5]]
        raise DataValidationError(f"table {table.name}, column {name}: rows without a value (deals {ids})",
                                  table=table.name, column=name, ids=ids, fix=VALIDATE_FIX)
    return codes


@dataclass(frozen=True)
class DealRows:
    """``deals`` (and each deal's account) as arrays, in the history's row order."""

    index: Vocab
    ids: np.ndarray
    created: np.ndarray
    closed: np.ndarray
    won: np.ndarray
    owner: np.ndarray
    account: np.ndarray
    amount: np.ndarray
    expected_close: np.ndarray
    product: np.ndarray
    source: np.ndarray
    industry: np.ndarray
    employees: np.ndarray
    revenue: np.ndarray
    region: np.ndarray
    account_created: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class StageRows:
    """``stage_history`` as arrays (deal code, stage code, times, recorded values)."""

    deal: np.ndarray
    stage: np.ndarray
    changed: np.ndarray
    seen: np.ndarray
    amount: np.ndarray
    expected_close: np.ndarray


@dataclass(frozen=True)
class ActivityRows:
    """``activities`` as arrays; ``seen`` is when a touch had both happened and been recorded."""

    deal: np.ndarray
    type: np.ndarray
    direction: np.ndarray
    role: np.ndarray
    contact: np.ndarray
    occurred: np.ndarray
    seen: np.ndarray
    contact_names: tuple[Any, ...] = ()  # contact id of each contact code (what-if touchpoints reuse them)


def deal_index(deals: pd.DataFrame) -> Vocab:
    """The deal ids as a vocabulary, refusing duplicates (they would make every lookup ambiguous)."""
    if "deal_id" not in deals.columns:
        raise DataValidationError("table deals: missing required column deal_id", table="deals", column="deal_id",
                                  fix=VALIDATE_FIX)
    return _unique_ids(column(deals, "deal_id"))


def _unique_ids(ids: np.ndarray) -> Vocab:
    index = Vocab.of(ids.tolist())
    if len(index.lookup) != len(index.names):
        dup = pd.Series(index.names)
        dup = dup[dup.duplicated()].unique()[:5].tolist()
        raise DataValidationError(
            f"table deals, column deal_id: ids repeat ({dup})", table="deals", column="deal_id", ids=dup,
            fix="give every deal its own deal_id; " + VALIDATE_FIX,
        )
    return index


def deal_codes(index: Vocab, ids: Any, *, table: str) -> np.ndarray:
    """Row of each id in ``deals``; an unknown (or missing) id is a broken foreign key."""
    codes, unknown = index.codes(ids)
    if unknown or (codes < 0).any():
        missing = sorted(map(str, unknown))[:5] or ["<empty deal_id>"]
        raise DataValidationError(
            f"table {table}, column deal_id: {int((codes < 0).sum())} row(s) name deals not in deals ({missing})",
            table=table, column="deal_id", ids=missing, fix="add those deals or remove the rows; " + VALIDATE_FIX,
        )
    return codes


class Table:
    """Typed column access to one table (absent optional columns read as all-missing).

    Column positions are looked up once per table: asking a pandas Index whether it
    holds a name costs more than reading the column itself.
    """

    def __init__(self, frame: pd.DataFrame, name: str) -> None:
        self.frame, self.name, self.n = frame, name, len(frame)
        names = column_names(frame.columns)
        self._pos = {c: i for i, c in enumerate(names)} if len(set(names)) == len(names) else None
        self._stamps = naive_ns_columns(frame) if self._pos is not None else {}

    def has(self, name: str) -> bool:
        return name in self._pos if self._pos is not None else name in self.frame.columns

    def raw(self, name: str) -> Any:
        """The stored array of a present column (see :func:`raw_column`)."""
        if self._pos is not None:
            return column_array(self.frame, self._pos[name])
        return raw_column(self.frame, name)

    def labels(self, name: str) -> Any:
        """A string column for encoding: an object array when small, the stored array when big (pandas
        factorizes its own string storage faster than it converts it to Python objects)."""
        return self.strings(name) if self.n <= SMALL else self.raw(name)

    def strings(self, name: str) -> np.ndarray:
        if not self.has(name):
            return np.full(self.n, None, dtype=object)
        return column(self.frame, name, raw=self.raw(name))

    def floats(self, name: str) -> np.ndarray:
        if not self.has(name):
            return np.full(self.n, np.nan)
        return column(self.frame, name, "float", raw=self.raw(name))

    def times(self, name: str) -> np.ndarray:
        if not self.has(name):
            return np.full(self.n, NAT, dtype=np.int64)
        stamps = self._stamps.get(self._pos[name]) if self._pos is not None else None
        if stamps is not None:
            return stamps.view(np.int64)
        return times(self.frame, name, self.name, raw=self.raw(name))


def read_deals(history: DealHistory) -> DealRows:
    """Deals with their account's profile attached (accounts are static profile data)."""
    d = Table(history.deals, "deals")
    if not d.has("deal_id"):
        raise DataValidationError("table deals: missing required column deal_id", table="deals", column="deal_id",
                                  fix=VALIDATE_FIX)
    index = _unique_ids(d.strings("deal_id"))
    n = d.n
    created = d.times("created_at")
    if (created == NAT).any():
        bad = [index.names[i] for i in np.flatnonzero(created == NAT)[:5]]
        raise DataValidationError("table deals, column created_at: deals without a creation time", table="deals",
                                  column="created_at", ids=bad, fix=VALIDATE_FIX)
    outcome = d.strings("outcome")
    account = d.strings("account_id")
    acc = Table(history.accounts, "accounts")
    pos = np.full(n, -1, dtype=np.int64)
    if acc.n and n:
        pos, _ = Vocab.of(acc.strings("account_id").tolist()).codes(account)
    found = pos >= 0
    at = np.where(found, pos, 0)
    everywhere = bool(found.all())

    def pick(values: np.ndarray, fill: Any) -> np.ndarray:
        if not len(values):
            return np.full(n, fill, dtype=np.float64 if fill is np.nan else object)
        return values[at] if everywhere else np.where(found, values[at], fill)

    return DealRows(
        index=index, ids=np.array(index.names, dtype=object), created=created, closed=d.times("closed_at"),
        won=np.where(outcome == "won", 1.0, np.where(outcome == "lost", 0.0, np.nan)),
        owner=d.strings("owner_id"), account=account, amount=d.floats("amount"),
        expected_close=d.times("expected_close_date"), product=d.strings("product"), source=d.strings("source"),
        industry=pick(acc.strings("industry"), None), employees=pick(acc.floats("employees"), np.nan),
        revenue=pick(acc.floats("annual_revenue"), np.nan), region=pick(acc.strings("region"), None),
        account_created=pick(acc.times("created_at"), NAT).astype(np.int64),
    )


def read_stage_rows(history: DealHistory, index: Vocab, stages: Vocab) -> StageRows:
    """Stage changes with their stage as an order code; ``seen`` = max(changed_at, recorded_at)."""
    sh = Table(history.stage_history, "stage_history")
    changed = sh.times("changed_at")
    _no_missing_time(changed, sh, "changed_at")
    return StageRows(
        deal=deal_codes(index, sh.labels("deal_id"), table="stage_history"),
        stage=encode(sh, "stage", stages, required=True),
        changed=changed, seen=np.maximum(changed, sh.times("recorded_at")),
        amount=sh.floats("amount"), expected_close=sh.times("expected_close_date"),
    )


def read_activity_rows(history: DealHistory, index: Vocab, types: Vocab, roles: Vocab) -> ActivityRows:
    """Touchpoints as codes; ``seen`` = max(occurred_at, recorded_at): counted once it happened and was logged."""
    a = Table(history.activities, "activities")
    occurred = a.times("occurred_at")
    _no_missing_time(occurred, a, "occurred_at")
    names: tuple[Any, ...] = ()
    if a.has("contact_id") and a.n:
        codes, uniques = pd.factorize(a.labels("contact_id"), use_na_sentinel=True)
        contact, names = codes.astype(np.int64), tuple(uniques)
    else:
        contact = np.full(a.n, -1, dtype=np.int64)
    return ActivityRows(
        deal=deal_codes(index, a.labels("deal_id"), table="activities"),
        type=encode(a, "type", types, required=True),
        direction=encode(a, "direction", DIRECTIONS),
        role=encode(a, "contact_role", roles),
        contact=contact, occurred=occurred, seen=np.maximum(occurred, a.times("recorded_at")),
        contact_names=names,
    )


def _no_missing_time(values: np.ndarray, table: Table, col: str) -> None:
    bad = values == NAT
    if bad.any():
        ids = [str(v) for v in table.strings("deal_id")[bad][:5]]
        raise DataValidationError(f"table {table.name}, column {col}: {int(bad.sum())} row(s) have no time",
                                  table=table.name, column=col, ids=ids, fix=VALIDATE_FIX)
