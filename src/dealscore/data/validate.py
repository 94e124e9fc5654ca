"""Business rules of the data contract (DESIGN §3) and the load report.

Each rule is stated once, in :mod:`dealscore.data.rules` (or, for names, in the
taxonomy); this module applies them to a whole history and says what breaks them.
Each rule either fails with a message naming table, column, up to five ids and
the fix, or (for events outside a deal's life, when configured to) drops the rows
and counts them in the report. Nothing is dropped silently.
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from dealscore.data import rules
from dealscore.data.history import DealHistory, load_history
from dealscore.data.history.load import naming_files_read, shadowed_files
from dealscore.data.schema import DIRECTIONS, OUTCOMES, TABLES
from dealscore.errors import DataValidationError
from dealscore.taxonomy import StageTaxonomy, default_taxonomy

OutOfLifePolicy = Literal["drop", "fail"]


@dataclass
class LoadReport:
    """What was loaded, what was dropped and why: printed by ``dealscore validate``."""

    rows: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    first_event: pd.Timestamp | None = None
    last_event: pd.Timestamp | None = None
    cut_at: pd.Timestamp | None = None
    open_deals: int = 0
    won_deals: int = 0
    lost_deals: int = 0
    stages_seen: dict[str, int] = field(default_factory=dict)
    activity_types_seen: dict[str, int] = field(default_factory=dict)
    # per ``dropped`` key: (table, why, first ids), what the drop warnings are written from
    drops: dict[str, tuple[str, str, list[str]]] = field(default_factory=dict, repr=False)
    # rows kept but worth a word, per kind: (how many, what they hold, first ids); warnings are written from it
    notes: dict[str, tuple[int, str, list[str]]] = field(default_factory=dict, repr=False)

    @classmethod
    def merge(cls, parts: list[LoadReport], taxonomy: StageTaxonomy | None = None) -> LoadReport:
        """One report for a history validated in parts (a partitioned history, partition by partition).

        Counts add up, times take the extremes, drop warnings are written once per
        kind from the summed counts (ids from the first parts), and the warnings about
        an empty table are judged on the whole history, so the result reads as the
        report of validating the history in one piece. Parts must share the data cut.
        """
        tax = taxonomy or cached_default_taxonomy()
        out = cls()
        for part in parts:
            for name, n in part.rows.items():
                out.rows[name] = out.rows.get(name, 0) + n
            for key, n in part.dropped.items():
                out.dropped[key] = out.dropped.get(key, 0) + n
                table, why, ids = part.drops[key]
                seen = out.drops.get(key, (table, why, []))[2]
                out.drops[key] = (table, why, list(dict.fromkeys([*seen, *ids]))[:5])
            for key, (n, what, ids) in part.notes.items():
                total, _, seen = out.notes.get(key, (0, what, []))
                out.notes[key] = (total + n, what, list(dict.fromkeys([*seen, *ids]))[:5])
            out.open_deals += part.open_deals
            out.won_deals += part.won_deals
            out.lost_deals += part.lost_deals
            for src, dst in ((part.stages_seen, out.stages_seen), (part.activity_types_seen, out.activity_types_seen)):
                for k, n in src.items():
                    dst[k] = dst.get(k, 0) + n
        firsts = [p.first_event for p in parts if p.first_event is not None and not pd.isna(p.first_event)]
        lasts = [p.last_event for p in parts if p.last_event is not None and not pd.isna(p.last_event)]
        out.first_event = min(firsts) if firsts else None
        out.last_event = max(lasts) if lasts else None
        cuts = [p.cut_at for p in parts if p.cut_at is not None]
        out.cut_at = max(cuts) if cuts else None
        order = {n: i for i, n in enumerate(tax.names)}
        out.stages_seen = dict(sorted(out.stages_seen.items(), key=lambda kv: order.get(kv[0], 99)))
        out.activity_types_seen = dict(sorted(out.activity_types_seen.items(), key=lambda kv: -kv[1]))
        _finish_warnings(out)
        return out

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (timestamps as ISO strings)."""
        def iso(t: pd.Timestamp | None) -> str | None:
            return None if t is None or pd.isna(t) else t.isoformat()

        return {
            "rows": self.rows, "dropped": self.dropped, "warnings": self.warnings,
            "first_event": iso(self.first_event), "last_event": iso(self.last_event),
            "cut_at": iso(self.cut_at), "open_deals": self.open_deals,
            "won_deals": self.won_deals, "lost_deals": self.lost_deals,
            "stages_seen": self.stages_seen, "activity_types_seen": self.activity_types_seen,
        }


class _Columns:
    """The history's columns as NumPy arrays, each fetched once, with the rules' rewrites on top.

    Every rule reads the same few columns; pulling each out of its DataFrame once
    and working on arrays keeps the cost of a one-deal request in microseconds
    while a million-row table costs what the vectorised work costs. Columns the
    rules rewrite (canonical names) are held here until the clean frames are built.
    """

    def __init__(self, h: DealHistory) -> None:
        self.h = h
        self.series: dict[tuple[str, str], pd.Series] = {}
        self.values: dict[tuple[str, str], np.ndarray] = {}
        self.rewritten: dict[str, dict[str, np.ndarray]] = {}

    def column(self, table: str, col: str) -> pd.Series:
        """The column as given."""
        key = (table, col)
        if key not in self.series:
            frame = self.h.table(table)
            assert frame is not None
            self.series[key] = frame[col]
        return self.series[key]

    def __call__(self, table: str, col: str) -> np.ndarray:
        """The column's current values (after any rewrite)."""
        key = (table, col)
        if key not in self.values:
            s = self.column(table, col)
            # a datetime Series' ndarray without the copy ``to_numpy`` makes
            self.values[key] = np.asarray(s.array) if s.dtype.kind == "M" else s.to_numpy()
        return self.values[key]

    def has(self, table: str, col: str) -> bool:
        frame = self.h.table(table)
        return frame is not None and col in frame

    def rewrite(self, table: str, col: str, values: np.ndarray) -> None:
        self(table, col)  # the original stays reachable through ``column``
        self.values[(table, col)] = values
        self.rewritten.setdefault(table, {})[col] = values


class _Problems:
    """Collects every rule violation so the user sees them all in one run."""

    def __init__(self, cols: _Columns) -> None:
        self.cols = cols
        self.items: list[DataValidationError] = []

    def add(self, table: str, column: str, mask: np.ndarray, what: str, fix: str) -> None:
        if not bool(mask.any()):
            return
        ids, rows = _offenders(self.cols, table, mask)
        self.items.append(
            DataValidationError(
                f"table {table}, column {column}: {int(mask.sum())} row(s) {what} (ids: {', '.join(ids)})",
                table=table, column=column, ids=ids, rows=rows, fix=fix,
            )
        )

    def raise_if_any(self) -> None:
        if not self.items:
            return
        if len(self.items) == 1:
            raise self.items[0]
        first = self.items[0]
        text = f"{len(self.items)} problems in the deal history:\n" + "\n".join(f"  - {p}" for p in self.items)
        raise DataValidationError(
            text, table=first.table, column=first.column, ids=first.ids, rows=first.rows, problems=self.items
        )


def _ids(cols: _Columns, table: str, mask: np.ndarray) -> list[str]:
    """Up to five distinct ids of offending rows (row numbers where a table has no id)."""
    return _offenders(cols, table, mask)[0]


def _offenders(cols: _Columns, table: str, mask: np.ndarray) -> tuple[list[str], list[int]]:
    """Up to five distinct ids of offending rows (row numbers where a table has no id), and the positions of up
    to five of their rows (an id named twice, as a repeated one is, has both its rows named).

    Row numbers count file lines (header = line 1) as long as the table was not
    re-sorted, which holds for every rule: the sort happens after all checks.
    """
    frame = cols.h.table(table)
    assert frame is not None
    id_col = TABLES[table].id_column
    ids = cols(table, id_col) if id_col and cols.has(table, id_col) else None
    deals = cols(table, "deal_id") if cols.has(table, "deal_id") else None
    found: dict[str, list[int]] = {}  # up to five ids, each with its rows (a repeated id has several)
    # a bounded head keeps this cheap even when a million rows share one bad id
    for r in np.flatnonzero(mask)[:500]:
        row = int(frame.index[r])
        if ids is not None and not pd.isna(ids[r]):
            label = str(ids[r])
        elif deals is not None and not pd.isna(deals[r]):
            label = f"row {row + 2} (deal {deals[r]})"
        else:
            label = f"row {row + 2}"
        if label in found or len(found) < 5:
            found.setdefault(label, []).append(row)
    # five rows at most: each id's first, then each one's second (the other line of a repeated id), and so on,
    # so that no id loses its rows to another's many repeats
    by_rank = [row for tier in zip_longest(*found.values()) for row in tier if row is not None]
    return list(found), sorted(by_rank[:5])


def _not_empty(h: DealHistory, p: _Problems) -> None:
    """Deals and accounts must hold rows: a header-only export means the export failed."""
    for name in ("accounts", "deals"):
        frame = h.table(name)
        if frame is not None and len(frame) == 0:
            col = TABLES[name].id_column or ""
            p.items.append(DataValidationError(
                f"table {name}, column {col}: the table has no rows (only a header)",
                table=name, column=col,
                fix=f"re-export {name} with its rows; a history needs at least one deal and its account",
            ))


def _required_values(h: DealHistory, cols: _Columns, p: _Problems) -> None:
    for name in h.tables():
        for col in TABLES[name].required_columns:
            p.add(name, col, rules.missing(cols(name, col)), "have no value",
                  f"fill in {col} for every row of {name} or remove those rows")


def _unique_ids(cols: _Columns, p: _Problems) -> None:
    for name in ("accounts", "deals", "activities"):
        col = TABLES[name].id_column
        if col is None or not cols.has(name, col):
            continue
        p.add(name, col, rules.duplicated(cols(name, col)), "repeat an id that must be unique",
              f"give every {name} row its own {col}, or remove the duplicated rows")


def _deal_positions(h: DealHistory, cols: _Columns) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Each deal's first row, and each event row's deal as a position among the distinct deal ids.

    Position -1 means the deal is unknown. Hashing millions of deal ids is the
    costliest step of validation, so it is done once per table and shared by the
    foreign-key and the out-of-life rules.
    """
    codes, uniques = pd.factorize(cols("deals", "deal_id"))  # distinct ids in order of first row
    known = np.flatnonzero(codes >= 0)
    _, first = np.unique(codes[known], return_index=True)
    pos: dict[str, np.ndarray] = {}
    for name in ("stage_history", "activities", "stage_truth"):
        if h.table(name) is not None:
            pos[name] = _positions(uniques, cols(name, "deal_id"))
    return known[first], pos


def _positions(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each value among ``keys`` (distinct, none missing), -1 when absent or missing.

    One hash pass over both: the keys come first, so their codes are their positions.
    """
    codes, _ = pd.factorize(np.concatenate([np.asarray(keys, dtype=object), np.asarray(values, dtype=object)]))
    where = codes[len(keys):]
    return np.where(where < len(keys), where, -1)


def _foreign_keys(cols: _Columns, pos: dict[str, np.ndarray], p: _Problems) -> None:
    accounts = pd.unique(cols("accounts", "account_id"))
    account_id = cols("deals", "account_id")
    unknown = rules.unknown_key(_positions(accounts[~rules.missing(accounts)], account_id), account_id)
    p.add("deals", "account_id", unknown,
          f"name an account that is not in accounts {_distinct(account_id, unknown)}",
          "add those accounts to accounts or correct account_id")
    for name, where in pos.items():
        deal_id = cols(name, "deal_id")
        unknown = rules.unknown_key(where, deal_id)
        p.add(name, "deal_id", unknown,
              f"name a deal that is not in deals {_distinct(deal_id, unknown)}",
              "add those deals to deals or remove the rows")


def _distinct(values: np.ndarray, mask: np.ndarray) -> list[str]:
    """Up to five distinct offending values, for messages where the row id is not the culprit."""
    if not bool(mask.any()):
        return []
    return [str(v) for v in pd.unique(values[mask][:500])[:5]]


def _per_value(values: np.ndarray, *fns: Callable[[str], object]) -> list[np.ndarray]:
    """Apply each ``fn`` to each distinct value once (missing stays None): fast on millions of
    rows that hold a handful of spellings, such as activity types."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    out = []
    for fn in fns:
        mapped = np.array([fn(str(u)) for u in uniques] + [None], dtype=object)
        out.append(mapped[codes])  # code -1 picks the trailing None
    return out


def _lower(v: str) -> str | None:
    """Stripped lower-case text, None when blank."""
    return v.strip().lower() or None


def _seen(values: np.ndarray, mask: np.ndarray) -> list[str]:
    """The first five offending spellings in sorted order, for the message."""
    return sorted({str(v) for v in values[mask]})[:5]


@dataclass(frozen=True)
class _Vocabulary:
    """A taxonomy's spellings as lookups, built once per taxonomy object."""

    stages: dict[str, str]
    closing: frozenset[str]
    outcomes: dict[str, str]
    roles: frozenset[str]
    directions: dict[str, str]
    role_spellings: dict[str, str]


_VOCABULARIES: dict[int, tuple[weakref.ref[StageTaxonomy], _Vocabulary]] = {}


def taxonomy_vocabulary(tax: StageTaxonomy) -> _Vocabulary:
    """The lookups of a taxonomy, cached by object: a service validates every request with the same one."""
    hit = _VOCABULARIES.get(id(tax))
    if hit is not None and hit[0]() is tax:
        return hit[1]
    outcomes = {a: "won" for a in tax.closed_won_aliases} | {a: "lost" for a in tax.closed_lost_aliases}
    vocab = _Vocabulary(
        stages=tax.stage_lookup(),
        closing=frozenset(tax.closed_won_aliases) | frozenset(tax.closed_lost_aliases),
        outcomes=outcomes | {o: o for o in OUTCOMES},
        roles=frozenset(tax.contact_roles),
        directions=tax.direction_lookup(),
        role_spellings=tax.role_lookup(),
    )
    key = id(tax)
    # the entry goes with its taxonomy, so a later object at the same address starts afresh;
    # a taxonomy type without weak references is simply not cached
    with contextlib.suppress(TypeError):
        _VOCABULARIES[key] = (weakref.ref(tax, lambda _: _VOCABULARIES.pop(key, None)), vocab)
    return vocab


def _canonical_names(h: DealHistory, cols: _Columns, tax: StageTaxonomy, p: _Problems) -> None:
    """Map stage names, outcomes, activity types, directions and roles onto canonical spellings.

    The taxonomy's aliases are how a user maps their CRM's names onto ours, so the
    check is "is this spelling configured", and the result holds canonical names only.
    """
    vocab = taxonomy_vocabulary(tax)
    for name in ("stage_history", "stage_truth"):
        if h.table(name) is None:
            continue
        stage = cols(name, "stage")
        mapped, is_outcome = _per_value(
            stage, lambda v: vocab.stages.get(k) if (k := _lower(v)) is not None else None,
            lambda v: _lower(v) in vocab.closing,
        )
        is_outcome = is_outcome.astype(bool)  # missing (None) is not an outcome
        unknown = ~pd.isna(stage) & pd.isna(mapped) & ~is_outcome
        p.add(name, "stage", unknown, f"use stage names not in the taxonomy {_seen(stage, unknown)}",
              f"use one of {tax.names} or map your CRM's names onto them with aliases in the taxonomy YAML "
              "(dealscore validate --taxonomy my_taxonomy.yaml)")
        p.add(name, "stage", is_outcome, f"use an outcome {_seen(stage, is_outcome)} as a stage",
              "a deal's outcome belongs in deals.outcome and deals.closed_at; remove the closing rows from "
              f"{name} (the csv importer does this for you)")
        cols.rewrite(name, "stage", np.where(pd.isna(mapped), stage, mapped).astype(object))

    kind = cols("activities", "type")
    (mapped_types,) = _per_value(kind, tax.canonical_activity)
    unknown = ~pd.isna(kind) & pd.isna(mapped_types)
    p.add("activities", "type", unknown, f"use activity types not configured {_seen(kind, unknown)}",
          f"use one of {list(tax.activity_types)} or add the type (or an alias) to the taxonomy YAML")
    cols.rewrite("activities", "type", np.where(unknown, kind, mapped_types).astype(object))
    direction, bad = _per_value(cols("activities", "direction"), lambda v: _alias(v, vocab.directions),
                                lambda v: _outside(v, vocab.directions))
    p.add("activities", "direction", bad.astype(bool),
          f"have a direction other than {list(DIRECTIONS)} or an alias of one",
          "use inbound or outbound (or an alias under direction_aliases in the taxonomy), or leave it empty")
    cols.rewrite("activities", "direction", direction)
    role, bad = _per_value(cols("activities", "contact_role"), lambda v: _alias(v, vocab.role_spellings),
                           lambda v: _outside(v, vocab.role_spellings))
    p.add("activities", "contact_role", bad.astype(bool),
          f"have a contact_role outside {list(tax.contact_roles)}", "use one of the configured roles or leave it empty")
    cols.rewrite("activities", "contact_role", role)

    outcome, canonical = _per_value(
        cols("deals", "outcome"), _lower,
        lambda v: vocab.outcomes.get(k) if (k := _lower(v)) is not None else None,
    )
    bad = ~pd.isna(outcome) & pd.isna(canonical)
    p.add("deals", "outcome", bad, f"have an outcome other than {list(OUTCOMES)}",
          "use 'won' or 'lost', or leave it empty while the deal is open")
    cols.rewrite("deals", "outcome", np.where(pd.isna(canonical), outcome, canonical).astype(object))


def _alias(v: str, spellings: dict[str, str]) -> str | None:
    """The canonical value of a spelling (its lower-case self when no alias names it)."""
    key = _lower(v)
    return None if key is None else spellings.get(key, key)


def _outside(v: str, allowed: Collection[str]) -> bool:
    """A spelling given (not blank) that is not one of ``allowed`` once lower-cased."""
    key = _lower(v)
    return key is not None and key not in allowed


def _outcomes(cols: _Columns, p: _Problems) -> None:
    """Outcome set iff closed, close after creation, amounts neither negative nor beyond the largest."""
    outcome, closed, created = cols("deals", "outcome"), cols("deals", "closed_at"), cols("deals", "created_at")
    p.add("deals", "outcome", rules.closed_without_outcome(closed, outcome),
          "are closed (closed_at set) but have no outcome", "set outcome to won or lost for closed deals")
    p.add("deals", "closed_at", rules.outcome_while_open(closed, outcome),
          "have an outcome but no closed_at", "set closed_at for closed deals, or clear outcome while open")
    p.add("deals", "closed_at", rules.closed_before_created(created, closed),
          "closed before they were created", "check created_at and closed_at of those deals")
    for name in ("deals", "stage_history"):
        p.add(name, "amount", rules.negative(cols(name, "amount")), "have a negative amount",
              "amounts must be zero or more")
    for name, col in (("deals", "amount"), ("stage_history", "amount"), ("accounts", "annual_revenue")):
        p.add(name, col, rules.too_large(cols(name, col)), f"are above {rules.HIGHEST_AMOUNT_TEXT}, the largest "
              "amount accepted", "correct the values (a corrupt cell, or an amount in the wrong unit), or leave "
              "them empty when unknown")


def _before_cut(h: DealHistory, cols: _Columns, p: _Problems) -> None:
    """Nothing can have happened after the export was taken: such rows mean cut_at is wrong."""
    if h.cut_at is None:
        return
    cut = h.cut_at
    limit = pd.Timestamp(cut).to_datetime64()
    fix = "set cut_at in history.yaml to when the export was taken, or correct the dates"
    for name, col in (("deals", "created_at"), ("deals", "closed_at"), ("stage_history", "changed_at"),
                      ("activities", "occurred_at")):
        p.add(name, col, rules.after_cut(cols(name, col), limit), f"are dated after the data cut {cut}", fix)


def _out_of_life(
    cols: _Columns, first_rows: np.ndarray, pos: dict[str, np.ndarray], policy: OutOfLifePolicy, p: _Problems,
    report: LoadReport,
) -> dict[str, np.ndarray]:
    """Events before a deal was created or after it closed: drop with a count, or fail.

    An event exactly at creation or at close is inside the deal's life. Returns the
    positions of the rows kept in each event table.
    """
    # a trailing NaT row lets position -1 (unknown deal, already an error) look up "no date"
    created_at = np.append(_ns(cols("deals", "created_at"))[first_rows], np.datetime64("NaT"))
    closed_at = np.append(_ns(cols("deals", "closed_at"))[first_rows], np.datetime64("NaT"))
    kept: dict[str, np.ndarray] = {}
    for name, col in (("stage_history", "changed_at"), ("activities", "occurred_at")):
        when = _ns(cols(name, col))
        created, closed = created_at[pos[name]], closed_at[pos[name]]
        before, after = rules.outside_life(when, created, closed)  # unknown dates are never out of life
        for mask, what in ((before, "before the deal was created"), (after, "after the deal closed")):
            if not mask.any():
                continue
            if policy == "fail":
                p.add(name, col, mask, f"are dated {what}",
                      "correct the dates, or validate without --fail-out-of-life (on_out_of_life='drop') "
                      "to drop them with a count")
            else:
                key = f"{name}: {col} {what}"
                report.dropped[key] = int(mask.sum())
                report.drops[key] = (name, f"dated {what}", _ids(cols, name, mask))
        out = before | after
        kept[name] = np.flatnonzero(~out) if policy == "drop" and out.any() else np.arange(len(when))
    return kept


def _ns(values: np.ndarray) -> np.ndarray:
    return values.astype("datetime64[ns]", copy=False)


def _sorted(cols: _Columns, name: str, time_col: str, rows: np.ndarray) -> np.ndarray:
    """``rows`` in (deal_id, time) order, ties kept in file order: ``sort_values(kind="stable")``."""
    deal_codes, _ = pd.factorize(cols(name, "deal_id")[rows], sort=True)
    when = _ns(cols(name, time_col))[rows].view("int64")
    return rows[np.lexsort((when, deal_codes))]


def _clean_frame(cols: _Columns, table: str, rows: np.ndarray | None) -> pd.DataFrame:
    """A table with the rules' rewritten columns and, when given, only ``rows`` in that order, re-indexed.

    A rewritten column whose values did not change (names already canonical) is
    left as it was: setting a column costs more than comparing its values.
    """
    frame = cols.h.table(table)
    assert frame is not None
    if rows is not None and isinstance(frame.index, pd.RangeIndex) and frame.index.equals(pd.RangeIndex(len(rows))) \
            and bool(np.array_equal(rows, np.arange(len(rows)))):
        rows = None  # every row kept, already in order, already numbered from 0: nothing to take
    if rows is None:
        out = frame.copy(deep=False)  # copy-on-write: the caller's frame never changes
    else:
        out = frame.take(rows)
        out.index = pd.RangeIndex(len(rows))
    for col, values in cols.rewritten.get(table, {}).items():
        current = cols.column(table, col)
        new, old = (values, current.to_numpy()) if rows is None else (values[rows], current.to_numpy()[rows])
        if current.dtype == object and np.array_equal(old, new):
            continue
        out[col] = pd.Series(new, index=out.index, dtype=object)
    return out


def _extreme(values: np.ndarray, pick: Callable[[np.ndarray], np.datetime64]) -> pd.Timestamp:
    """Earliest or latest of a timestamp column, NaT when it holds none (as ``Series.min``/``max``)."""
    v = _ns(values)
    v = v[~np.isnat(v)]
    return pd.Timestamp(pick(v)) if len(v) else pd.NaT  # type: ignore[return-value]


def _counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values and their counts, most frequent first, ties in order of appearance
    (``Series.value_counts``)."""
    codes, uniques = pd.factorize(values)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    order = np.argsort(-counts, kind="stable")
    return uniques[order], counts[order]


@functools.cache
def cached_default_taxonomy() -> StageTaxonomy:
    return default_taxonomy()


def validate_history(
    history: DealHistory,
    taxonomy: StageTaxonomy | None = None,
    *,
    on_out_of_life: OutOfLifePolicy = "drop",
) -> tuple[DealHistory, LoadReport]:
    """Enforce the contract; return the clean history (canonical names) and its load report.

    Raises :class:`DataValidationError` listing every violation found. With
    ``on_out_of_life="drop"`` events outside a deal's life are dropped and counted
    in ``report.dropped``; with ``"fail"`` they are violations like any other.
    """
    if on_out_of_life not in ("drop", "fail"):
        raise ValueError(f"on_out_of_life must be 'drop' or 'fail', not {on_out_of_life!r}")
    tax = taxonomy or cached_default_taxonomy()
    report = LoadReport(rows={k: len(v) for k, v in history.tables().items()})
    cols = _Columns(history)
    p = _Problems(cols)
    _not_empty(history, p)
    _required_values(history, cols, p)
    _unique_ids(cols, p)
    first_rows, pos = _deal_positions(history, cols)
    _foreign_keys(cols, pos, p)
    _canonical_names(history, cols, tax, p)
    _outcomes(cols, p)
    _before_cut(history, cols, p)
    p.raise_if_any()
    kept = _out_of_life(cols, first_rows, pos, on_out_of_life, p, report)
    p.raise_if_any()
    sh_rows = _sorted(cols, "stage_history", "changed_at", kept["stage_history"])
    act_rows = _sorted(cols, "activities", "occurred_at", kept["activities"])
    h = history.replace(
        deals=_clean_frame(cols, "deals", None),
        stage_history=_clean_frame(cols, "stage_history", sh_rows),
        activities=_clean_frame(cols, "activities", act_rows),
        stage_truth=None if history.stage_truth is None else _clean_frame(cols, "stage_truth", None),
    )

    created = cols("deals", "created_at")
    times = [_extreme(created, np.min), _extreme(cols("deals", "closed_at"), np.max),
             _extreme(cols("stage_history", "changed_at")[sh_rows], np.max),
             _extreme(cols("activities", "occurred_at")[act_rows], np.max)]
    valid = [t for t in times if not pd.isna(t)]
    report.first_event = _extreme(created, np.min) if len(created) else None
    report.last_event = max(valid) if valid else None
    report.cut_at = h.data_cut
    outcome = cols("deals", "outcome")
    report.open_deals = int(pd.isna(outcome).sum())
    report.won_deals = int((outcome == "won").sum())
    report.lost_deals = int((outcome == "lost").sum())
    order = {n: i for i, n in enumerate(tax.names)}
    stages, counts = _counts(cols("stage_history", "stage")[sh_rows])
    seen = dict(zip(stages, counts, strict=True))
    report.stages_seen = {k: int(seen[k]) for k in sorted(seen, key=lambda s: order.get(s, 99))}
    types, counts = _counts(cols("activities", "type")[act_rows])
    report.activity_types_seen = {str(k): int(v) for k, v in zip(types, counts, strict=True)}
    codes = cols("deals", "currency") if cols.has("deals", "currency") else np.array([], dtype=object)
    given = ~rules.missing(codes)
    unknown = np.zeros(len(codes), dtype=bool)
    if given.any():
        found, where = np.unique(codes[given].astype(str), return_inverse=True)
        unknown[given] = ~np.array([rules.is_currency(c) for c in found], dtype=bool)[where]
    if unknown.any():
        report.notes["currency_unknown"] = (
            int(unknown.sum()), f"deal(s) with a currency that is not a current ISO 4217 code "
            f"{sorted({str(c) for c in codes[unknown]})[:5]}, kept: each such code is a currency of its own in "
            "the totals (a withdrawn code such as HRK is the CRM's history; a typo is worth fixing)",
            _ids(cols, "deals", unknown))
    early = (rules.close_date_before_created(created, cols("deals", "expected_close_date"))
             if cols.has("deals", "expected_close_date") else np.zeros(0, dtype=bool))
    if early.any():
        report.notes["close_date_before_created"] = (
            int(early.sum()), "deal(s) with an expected_close_date before the day they were created, kept: their "
            "days to the expected close read as overdue (check the dates in the CRM)",
            _ids(cols, "deals", early))
    _finish_warnings(report)
    return h, report


def _finish_warnings(report: LoadReport) -> None:
    """The report's warnings from its counts: each kind of dropped row, then empty event tables."""
    for key, n in report.dropped.items():
        table, why, ids = report.drops[key]
        report.warnings.append(f"dropped {n} {table} row(s) {why} (ids: {', '.join(ids)})")
    for n, what, ids in report.notes.values():
        report.warnings.append(f"{n} {what} (ids: {', '.join(ids)})")
    if report.rows.get("activities", 0) == 0:
        report.warnings.append(
            "no activities: touchpoint features will be empty and stages cannot be inferred from evidence"
        )
    if report.rows.get("stage_history", 0) == 0:
        report.warnings.append("no stage history: declared-stage features will be empty")


def load_and_validate(
    folder: str | Path, taxonomy: StageTaxonomy | None = None, *, on_out_of_life: OutOfLifePolicy = "drop"
) -> tuple[DealHistory, LoadReport]:
    """Load a history folder and enforce the contract in one call (what every command does first).

    A table read from Parquet while a CSV of the same table lies beside it is
    named in the report's warnings and in any error about that table.
    """
    path = Path(folder)
    history = load_history(path)
    with naming_files_read(path):
        clean, report = validate_history(history, taxonomy, on_out_of_life=on_out_of_life)
    for name, (read, ignored) in shadowed_files(path).items():
        report.warnings.append(f"table {name} was read from {read.name}; {ignored.name} beside it was not read "
                               "(remove the file you do not mean)")
    return clean, report
