"""The history's tables as checked numpy arrays: the only place features touch pandas input.

Feature code works on int64 nanoseconds and small integer codes, which is what
makes one deal scored now cost microseconds instead of milliseconds. The checks
here are the cheap ones a validated history always passes (names in the
taxonomy, ids that resolve, parsed timestamps); a history that fails them was not
run through :func:`dealscore.data.validate.validate_history`, and the error says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dealscore.data.history import DealHistory
from dealscore.errors import DataValidationError
from dealscore.features.timeline import NAT

VALIDATE_FIX = "load it with dealscore.data.validate.load_and_validate (or run `dealscore validate DIR`) first"
SMALL = 512  # below this many values a dict lookup beats building a hash table
_NS = np.dtype("datetime64[ns]")


def as_ns(values: Any, *, table: str, column: str) -> np.ndarray:
    """A timestamp column as int64 nanoseconds (NaT -> ``NAT``), whatever its datetime unit or zone."""
    if values is None:
        return np.zeros(0, dtype=np.int64)
    raw = values.values if isinstance(values, pd.Series | pd.Index) else values
    if isinstance(raw, np.ndarray) and raw.dtype.kind == "M":  # the common case, and the cheap one
        return (raw if raw.dtype == _NS else raw.astype(_NS)).view(np.int64)
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    elif s.dtype.kind != "M":
        if len(s) == 0:
            return np.zeros(0, dtype=np.int64)
        if s.isna().all():
            return np.full(len(s), NAT, dtype=np.int64)
        raise DataValidationError(
            f"table {table}, column {column}: holds {s.dtype} values, not parsed timestamps",
            table=table, column=column, fix=VALIDATE_FIX,
        )
    return s.to_numpy(dtype=_NS).view(np.int64)


def column(frame: pd.DataFrame, name: str, kind: str = "str") -> np.ndarray:
    """A column as numpy (object for strings, float64 for numbers), all-missing when an optional one is absent."""
    if name not in frame.columns:
        return np.full(len(frame), np.nan) if kind == "float" else np.full(len(frame), None, dtype=object)
    s = frame[name]
    raw = s.values
    if kind == "float":
        if isinstance(raw, np.ndarray) and raw.dtype == np.float64:
            return raw
        return pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    if isinstance(raw, np.ndarray) and raw.dtype == object:
        return raw
    return s.to_numpy(dtype=object)


def encode(values: np.ndarray, vocabulary: pd.Index, lookup: dict[Any, int]) -> np.ndarray:
    """Integer codes of values in a vocabulary (-1 for missing or unknown)."""
    if len(values) < SMALL:
        return np.fromiter((lookup.get(v, -1) for v in values), dtype=np.int64, count=len(values))
    return vocabulary.get_indexer(values).astype(np.int64)


def check_known(codes: np.ndarray, values: np.ndarray, frame: pd.DataFrame, *, table: str, column: str,
                allowed: list[str]) -> None:
    """Fail when a present value is outside its vocabulary (an unvalidated history)."""
    bad = codes < 0
    if not bad.any():
        return
    bad &= ~pd.isna(values)
    if not bad.any():
        return
    seen = sorted({str(v) for v in values[bad]})[:5]
    ids = [str(d) for d in frame["deal_id"].to_numpy()[bad][:5]] if "deal_id" in frame else []
    raise DataValidationError(
        f"table {table}, column {column}: values {seen} are not among the configured {allowed} "
        f"(rows of deals {ids})",
        table=table, column=column, ids=ids, fix=VALIDATE_FIX,
    )


@dataclass(frozen=True)
class Vocab:
    """A fixed vocabulary with both lookups :func:`encode` needs."""

    names: tuple[str, ...]
    index: pd.Index
    lookup: dict[Any, int]

    @classmethod
    def of(cls, names: list[str] | tuple[str, ...]) -> Vocab:
        names = tuple(names)
        return cls(names, pd.Index(list(names), dtype=object), {n: i for i, n in enumerate(names)})


@dataclass(frozen=True)
class DealRows:
    """``deals`` (and each deal's account) as arrays, in the history's row order."""

    index: pd.Index
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


def deal_index(deals: pd.DataFrame) -> pd.Index:
    """The deal ids as an index, refusing duplicates (they would make every lookup ambiguous)."""
    if "deal_id" not in deals.columns:
        raise DataValidationError("table deals: missing required column deal_id", table="deals", column="deal_id",
                                  fix=VALIDATE_FIX)
    index = pd.Index(column(deals, "deal_id"), dtype=object)
    if not index.is_unique:
        dup = index[index.duplicated()].unique()[:5].tolist()
        raise DataValidationError(
            f"table deals, column deal_id: ids repeat ({dup})", table="deals", column="deal_id", ids=dup,
            fix="give every deal its own deal_id; " + VALIDATE_FIX,
        )
    return index


def deal_codes(index: pd.Index, ids: np.ndarray, *, table: str) -> np.ndarray:
    """Row of each id in ``deals``; an unknown id is a broken foreign key."""
    if len(index) == 1 and len(ids) < SMALL:
        only = index[0]
        codes = np.where(ids == only, 0, -1).astype(np.int64)
    else:
        codes = index.get_indexer(ids).astype(np.int64)
    if (codes < 0).any():
        missing = sorted({str(v) for v in ids[codes < 0]})[:5]
        raise DataValidationError(
            f"table {table}, column deal_id: {int((codes < 0).sum())} row(s) name deals not in deals ({missing})",
            table=table, column="deal_id", ids=missing, fix="add those deals or remove the rows; " + VALIDATE_FIX,
        )
    return codes


def read_deals(history: DealHistory, index: pd.Index) -> DealRows:
    """Deals with their account's profile attached (accounts are static profile data)."""
    d = history.deals
    n = len(d)
    created = as_ns(d["created_at"], table="deals", column="created_at")
    if (created == NAT).any():
        bad = index[created == NAT][:5].tolist()
        raise DataValidationError("table deals, column created_at: deals without a creation time", table="deals",
                                  column="created_at", ids=bad, fix=VALIDATE_FIX)
    closed = as_ns(d["closed_at"], table="deals", column="closed_at") if "closed_at" in d else np.full(n, NAT)
    outcome = column(d, "outcome")
    won = np.where(outcome == "won", 1.0, np.where(outcome == "lost", 0.0, np.nan))
    account = column(d, "account_id")
    acc = history.accounts
    if len(acc) and n:
        acc_ids = column(acc, "account_id")
        if len(acc_ids) == 1 and n < SMALL:
            pos = np.where(account == acc_ids[0], 0, -1)
        else:
            acc_index = pd.Index(acc_ids, dtype=object)
            if not acc_index.is_unique:
                acc_index = acc_index.drop_duplicates()
            pos = acc_index.get_indexer(account)
    else:
        pos = np.full(n, -1)

    def acc_col(name: str, kind: str = "str") -> np.ndarray:
        values = column(acc, name, kind)
        if kind == "float":
            return np.where(pos >= 0, values[np.maximum(pos, 0)] if len(values) else np.nan, np.nan)
        out = np.full(n, None, dtype=object)
        if len(values):
            out[pos >= 0] = values[pos[pos >= 0]]
        return out

    if "created_at" in acc and len(acc):
        acc_created = as_ns(acc["created_at"], table="accounts", column="created_at")
        account_created = np.where(pos >= 0, acc_created[np.maximum(pos, 0)], NAT)
    else:
        account_created = np.full(n, NAT, dtype=np.int64)
    ecd = (as_ns(d["expected_close_date"], table="deals", column="expected_close_date")
           if "expected_close_date" in d else np.full(n, NAT, dtype=np.int64))
    return DealRows(
        index=index, ids=index.to_numpy(), created=created, closed=closed, won=won,
        owner=column(d, "owner_id"), account=account, amount=column(d, "amount", "float"),
        expected_close=ecd, product=column(d, "product"), source=column(d, "source"),
        industry=acc_col("industry"), employees=acc_col("employees", "float"),
        revenue=acc_col("annual_revenue", "float"), region=acc_col("region"), account_created=account_created,
    )


def read_stage_rows(history: DealHistory, index: pd.Index, stages: Vocab) -> StageRows:
    """Stage changes with their stage as an order code; ``seen`` = max(changed_at, recorded_at)."""
    sh = history.stage_history
    deal = deal_codes(index, column(sh, "deal_id"), table="stage_history")
    names = column(sh, "stage")
    stage = encode(names, stages.index, stages.lookup)
    check_known(stage, names, sh, table="stage_history", column="stage", allowed=list(stages.names))
    if (stage < 0).any():
        raise DataValidationError("table stage_history, column stage: rows without a stage", table="stage_history",
                                  column="stage", fix=VALIDATE_FIX)
    changed = as_ns(sh["changed_at"], table="stage_history", column="changed_at")
    _no_missing_time(changed, sh, "stage_history", "changed_at")
    recorded = as_ns(sh["recorded_at"], table="stage_history", column="recorded_at") if "recorded_at" in sh else None
    seen = changed if recorded is None else np.maximum(changed, recorded)
    ecd = (as_ns(sh["expected_close_date"], table="stage_history", column="expected_close_date")
           if "expected_close_date" in sh else np.full(len(sh), NAT, dtype=np.int64))
    return StageRows(deal=deal, stage=stage, changed=changed, seen=seen, amount=column(sh, "amount", "float"),
                     expected_close=ecd)


def read_activity_rows(history: DealHistory, index: pd.Index, types: Vocab, roles: Vocab) -> ActivityRows:
    """Touchpoints as codes; ``seen`` = max(occurred_at, recorded_at): a touch counts once it happened and was logged."""
    a = history.activities
    deal = deal_codes(index, column(a, "deal_id"), table="activities")
    type_names = column(a, "type")
    type_code = encode(type_names, types.index, types.lookup)
    check_known(type_code, type_names, a, table="activities", column="type", allowed=list(types.names))
    if (type_code < 0).any():
        raise DataValidationError("table activities, column type: rows without a type", table="activities",
                                  column="type", fix=VALIDATE_FIX)
    direction_names = column(a, "direction")
    direction = encode(direction_names, DIRECTIONS.index, DIRECTIONS.lookup)
    check_known(direction, direction_names, a, table="activities", column="direction", allowed=list(DIRECTIONS.names))
    role_names = column(a, "contact_role")
    role = encode(role_names, roles.index, roles.lookup)
    check_known(role, role_names, a, table="activities", column="contact_role", allowed=list(roles.names))
    contact_ids = column(a, "contact_id")
    if len(contact_ids):
        contact, _ = pd.factorize(contact_ids, use_na_sentinel=True)
        contact = contact.astype(np.int64)
    else:
        contact = np.zeros(0, dtype=np.int64)
    occurred = as_ns(a["occurred_at"], table="activities", column="occurred_at")
    _no_missing_time(occurred, a, "activities", "occurred_at")
    recorded = as_ns(a["recorded_at"], table="activities", column="recorded_at") if "recorded_at" in a else None
    seen = occurred if recorded is None else np.maximum(occurred, recorded)
    return ActivityRows(deal=deal, type=type_code, direction=direction, role=role, contact=contact,
                        occurred=occurred, seen=seen)


def _no_missing_time(times: np.ndarray, frame: pd.DataFrame, table: str, col: str) -> None:
    bad = times == NAT
    if bad.any():
        ids = [str(v) for v in frame["deal_id"].to_numpy()[bad][:5]]
        raise DataValidationError(f"table {table}, column {col}: {int(bad.sum())} row(s) have no time",
                                  table=table, column=col, ids=ids, fix=VALIDATE_FIX)


DIRECTIONS = Vocab.of(["inbound", "outbound"])
