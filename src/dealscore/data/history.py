"""`DealHistory`: the tables of one company's CRM history, loaded and typed.

Loading only parses and types the tables (and says exactly where it cannot);
the business rules live in :mod:`dealscore.data.validate`. Everything is kept in
UTC without a time-zone attribute so that every later comparison is between
like values.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from dealscore.data.schema import TABLES, Table
from dealscore.errors import DataValidationError

META_FILE = "history.yaml"


@dataclass(frozen=True)
class DealHistory:
    """The contract's tables as typed DataFrames, plus the data cut time.

    ``cut_at`` is when the export was taken: nothing in the history is later, and
    open deals are scored as of it. When unknown it is the latest timestamp seen.
    """

    accounts: pd.DataFrame
    deals: pd.DataFrame
    stage_history: pd.DataFrame
    activities: pd.DataFrame
    stage_truth: pd.DataFrame | None = None
    cut_at: pd.Timestamp | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def table(self, name: str) -> pd.DataFrame | None:
        """A table by its contract name."""
        return getattr(self, name)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The present tables by name, in contract order."""
        out = {name: getattr(self, name) for name in TABLES}
        return {k: v for k, v in out.items() if v is not None}

    def replace(self, **changes: Any) -> DealHistory:
        """A copy with some tables or fields replaced."""
        return replace(self, **changes)

    @property
    def data_cut(self) -> pd.Timestamp:
        """The export time: ``cut_at`` when known, else the latest timestamp in the history."""
        if self.cut_at is not None:
            return self.cut_at
        candidates = [
            self.deals["created_at"].max(),
            self.deals["closed_at"].max() if "closed_at" in self.deals else pd.NaT,
            self.stage_history["changed_at"].max() if len(self.stage_history) else pd.NaT,
            self.activities["occurred_at"].max() if len(self.activities) else pd.NaT,
        ]
        for tbl, col in (("stage_history", "recorded_at"), ("activities", "recorded_at")):
            frame = getattr(self, tbl)
            if col in frame and len(frame):
                candidates.append(frame[col].max())
        valid = [c for c in candidates if not pd.isna(c)]
        return max(valid) if valid else pd.Timestamp("1970-01-01")

    def for_deals(self, deal_ids: list[str] | pd.Index) -> DealHistory:
        """The sub-history of some deals (their accounts are all kept for profile lookups)."""
        ids = pd.Index(deal_ids)
        return self.replace(
            deals=self.deals[self.deals["deal_id"].isin(ids)],
            stage_history=self.stage_history[self.stage_history["deal_id"].isin(ids)],
            activities=self.activities[self.activities["deal_id"].isin(ids)],
            stage_truth=None
            if self.stage_truth is None
            else self.stage_truth[self.stage_truth["deal_id"].isin(ids)],
        )

    def as_known_at(self, as_of: pd.Timestamp | str) -> DealHistory:
        """What an export taken at ``as_of`` would have held.

        Events count from when they were *recorded* (``recorded_at`` when given).
        Deals not yet created vanish; deals closed later are open again. Columns of
        ``deals`` that hold current values cannot be rolled back: ``expected_close_date``
        is cleared (take it from ``stage_history``), ``amount`` is kept under the
        documented assumption that the amount is known from creation. This is the
        reference the point-in-time tests compare features against.
        """
        t = pd.Timestamp(as_of)
        deals = self.deals[self.deals["created_at"] <= t].copy()
        later = deals["closed_at"].notna() & (deals["closed_at"] > t)
        deals.loc[later, "closed_at"] = pd.NaT
        if "outcome" in deals:
            deals.loc[later, "outcome"] = None
        deals.loc[:, "expected_close_date"] = pd.NaT
        known = deals["deal_id"]
        sh = self.stage_history
        sh = sh[_known_time(sh, "changed_at") <= t]
        acts = self.activities
        acts = acts[_known_time(acts, "occurred_at") <= t]
        truth = self.stage_truth
        if truth is not None:
            truth = truth[truth["as_of"] <= t]
        return self.replace(
            deals=deals,
            stage_history=sh[sh["deal_id"].isin(known)],
            activities=acts[acts["deal_id"].isin(known)],
            stage_truth=truth,
            cut_at=t,
        )


def _known_time(frame: pd.DataFrame, event_col: str) -> pd.Series:
    """When a fact became known: the later of ``recorded_at`` and the event time.

    Usually ``recorded_at`` is the later one (a call logged days after it happened).
    CRMs also record events *ahead* of time (a meeting scheduled for next week);
    such an event is not a fact before it has occurred, so the later time wins.
    """
    if "recorded_at" in frame:
        rec = frame["recorded_at"]
        event = frame[event_col]
        return rec.where(rec.notna() & (rec > event), event)
    return frame[event_col]


# --------------------------------------------------------------------------- loading

# A timestamp that carries its own zone: a time part followed by Z or a +hh:mm offset.
_ZONE_SUFFIX = r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$"
# Dates outside this window are placeholders (9999-12-31, 0001-01-01) or typos, never CRM facts.
_EARLIEST = pd.Timestamp("1900-01-01")
_LATEST = pd.Timestamp("2200-01-01")


def _read_table(folder: Path, table: Table) -> pd.DataFrame | None:
    """Read ``<table>.parquet`` or ``<table>.csv`` from a folder, with clear errors.

    CSV cells are read as text (only empty cells are missing, so a region "NA" stays
    "NA") and typed later by :func:`coerce_table`, which can then name the rows it
    cannot type. A UTF-8 byte-order mark and blanks around header names are dropped
    because spreadsheet exports add them.
    """
    pq, csv = folder / f"{table.name}.parquet", folder / f"{table.name}.csv"
    if pq.is_file():
        try:
            frame = pd.read_parquet(pq)
        except Exception as exc:  # pyarrow raises many types for a bad file
            raise DataValidationError(
                f"table {table.name}: cannot read {pq}: {exc}", table=table.name,
                fix="re-export the file as Parquet or CSV",
            ) from exc
    elif csv.is_file():
        try:
            frame = pd.read_csv(csv, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")
        except pd.errors.EmptyDataError as exc:
            raise DataValidationError(
                f"table {table.name}: file {csv} is empty (not even a header row)",
                table=table.name,
                fix=f"export it with a header row naming the columns {table.required_columns}",
            ) from exc
        except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
            raise DataValidationError(
                f"table {table.name}: {csv} is not a readable CSV file: {exc}", table=table.name,
                fix="save it as UTF-8 CSV with a comma separator and a header row",
            ) from exc
    elif table.required:
        raise DataValidationError(
            f"table {table.name}: no file {csv.name} or {pq.name} in {folder}",
            table=table.name,
            fix=f"add {csv.name} with at least the columns {table.required_columns}",
        )
    else:
        return None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


class _Typing:
    """The columns of one table being typed, by position (row 0 = file line 2).

    Errors name rows by the ids as already cleaned (the id columns come first in
    every contract table), falling back to the values as given for columns not
    typed yet, so a message reads the same whatever was typed before it.
    """

    def __init__(self, frame: pd.DataFrame, table: Table) -> None:
        self.frame = frame
        self.table = table
        self.typed: dict[str, np.ndarray] = {}

    def values(self, name: str) -> np.ndarray | None:
        if name in self.typed:
            return self.typed[name]
        return self.frame[name].to_numpy() if name in self.frame else None

    def row_ids(self, mask: np.ndarray) -> list[str]:
        """Human ids for offending rows: the id column where there is one, else 'row N (deal X)'.

        Row numbers are file line numbers (header = line 1) for a frame read from CSV.
        """
        ids = self.values(self.table.id_column) if self.table.id_column else None
        deals = self.values("deal_id")
        out: list[str] = []
        for r in np.flatnonzero(mask)[:5]:
            if ids is not None and not pd.isna(ids[r]):
                out.append(str(ids[r]))
            elif deals is not None and not pd.isna(deals[r]):
                out.append(f"row {r + 2} (deal {deals[r]})")
            else:
                out.append(f"row {r + 2}")
        return out

    def error(self, col: str, mask: np.ndarray, what: str, fix: str,
              values: Sequence[object] | None = None) -> DataValidationError:
        ids = self.row_ids(mask)
        examples = "" if values is None else f" such as {', '.join(repr(str(v)) for v in values[mask][:3])}"
        return DataValidationError(
            f"table {self.table.name}, column {col}: {int(mask.sum())} value(s) {what}{examples} "
            f"(ids: {', '.join(ids)})",
            table=self.table.name, column=col, ids=ids, fix=fix,
        )


# Arrow scalars made once: converting "" and None on every call costs more than the kernels
_BLANK = pa.scalar("", pa.large_string())
_NO_TEXT = pa.scalar(None, pa.large_string())


# a text column in Arrow, and its values when they were Python strings already
_ArrowText = tuple[pa.Array | pa.ChunkedArray, np.ndarray | None]


def _arrow_text(s: pd.Series) -> _ArrowText:
    """A column as Arrow text, and its values when they were Python strings (None for missing).

    Text arrives as pandas' Arrow-backed strings (CSV, or frames built from str
    values) or as Python objects; anything else (numbers in an id column) is turned
    into text the way ``astype("string")`` does.
    """
    if isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow":
        arrow, raw = pa.array(s.array), None
    else:
        arrow = raw = None
        if s.dtype == object:
            raw = s.to_numpy()
            if pd.api.types.infer_dtype(raw, skipna=True) in ("string", "empty"):
                try:
                    arrow = pa.array(raw, type=pa.large_string(), from_pandas=True)
                except (pa.ArrowInvalid, pa.ArrowTypeError):  # a missing-value marker Arrow does not know
                    arrow = None
        if arrow is None:
            arrow, raw = pa.array(s.astype("string").array), None
    if arrow.type != pa.large_string():
        arrow = arrow.cast(pa.large_string())
    return arrow, raw


# Text columns are trimmed together up to this many cells: a one-row table pays Arrow's
# per-call overhead once, while big tables go column by column and reuse their memory.
_TEXT_BATCH_CELLS = 65_536


def _texts(columns: list[pd.Series]) -> list[tuple[np.ndarray, bool]]:
    """Contract string columns: stripped text, None for missing or blank, as object arrays.

    Every text column goes through Arrow's whitespace trim (the one pandas' string
    dtype applies): the same kernel serves one row and millions. Also says, per
    column, whether it already held exactly these values.
    """
    out: list[tuple[np.ndarray, bool]] = []
    batch: list[_ArrowText] = []
    for i, s in enumerate(columns):
        batch.append(_arrow_text(s))
        if i == len(columns) - 1 or (len(batch) + 1) * len(s) > _TEXT_BATCH_CELLS:
            out.extend(_trimmed(batch, len(s)))
            batch = []
    return out


def _trimmed(batch: list[_ArrowText], n: int) -> list[tuple[np.ndarray, bool]]:
    """One Arrow pass over a few text columns of ``n`` rows each."""
    # pieces, not nested chunked arrays: pyarrow copies value by value when handed those
    chunks = [c for a, _ in batch for c in (a.chunks if isinstance(a, pa.ChunkedArray) else [a])]
    trimmed = pc.utf8_trim_whitespace(pa.chunked_array(chunks, type=pa.large_string()))
    cleaned = pc.if_else(pc.equal(trimmed, _BLANK), _NO_TEXT, trimmed)
    flat = np.asarray(cleaned.to_numpy(), dtype=object)
    out = []
    for i, (_, raw) in enumerate(batch):
        values = flat[i * n:(i + 1) * n]
        out.append((values, raw is not None and bool(np.array_equal(raw, values))))
    return out


def _number(t: _Typing, col: str) -> tuple[np.ndarray, bool]:
    """A numeric column as float64; text that is not a number is refused by id.

    Also says whether the column already held exactly these values.
    """
    src = t.frame[col]
    if isinstance(src.dtype, np.dtype) and src.dtype.kind in "iuf":
        # already numbers: nothing to parse, nothing can be bad
        return src.to_numpy(dtype="float64"), src.dtype == np.float64
    src = src.reset_index(drop=True)
    if src.dtype == object or pd.api.types.is_string_dtype(src):
        text = src.astype("string").str.strip()
        src = text.mask(text == "")
    num = pd.to_numeric(src, errors="coerce")
    bad = (src.notna() & num.isna()).to_numpy()
    if bad.any():
        ids = t.row_ids(bad)
        examples = ", ".join(repr(str(v)) for v in src[bad].head(3))
        raise DataValidationError(
            f"table {t.table.name}, column {col}: {int(bad.sum())} value(s) are not numbers "
            f"such as {examples} (ids: {', '.join(ids)})",
            table=t.table.name, column=col, ids=ids,
            fix="use plain numbers without currency symbols or thousands separators",
        )
    return num.astype("float64").to_numpy(), False


def _parse_mixed_zones(t: _Typing, col: str, as_str: pd.Series, present: pd.Series) -> pd.Series:
    """Slow path for a column whose values do not share one zone.

    Different offsets (a summer and a winter time) are fine: all go to UTC. Values
    without any zone among values with one cannot be placed in time: refused by id.
    """
    zoned = as_str.str.contains(_ZONE_SUFFIX, regex=True, na=False).astype(bool)
    naive = (present & ~zoned).to_numpy()
    if bool(naive.any()):
        raise t.error(
            col, naive, f"have no time zone while {int(zoned.sum())} other(s) in the column do",
            values=as_str.to_numpy(),
            fix="export every timestamp either with an explicit offset (e.g. +00:00) or all without one",
        )
    try:
        return pd.to_datetime(as_str, errors="coerce", format="ISO8601", utc=True)
    except (ValueError, TypeError, OverflowError) as exc:  # pragma: no cover - pandas edge cases
        raise DataValidationError(
            f"table {t.table.name}, column {col}: timestamps cannot be parsed ({exc})",
            table=t.table.name, column=col,
            fix="use ISO 8601 timestamps such as 2024-03-31T14:05:00, all with or all without an offset",
        ) from exc


def _parse_text_times(t: _Typing, col: str, raw: pd.Series) -> pd.Series:
    """Parse timestamps given as text (a CSV export); unparseable values are refused by id."""
    as_str = raw.reset_index(drop=True).astype("string").str.strip()
    as_str = as_str.mask(as_str == "")
    present = as_str.notna()
    try:
        # fast path: one vectorised parse; it refuses a column mixing zones
        parsed = pd.to_datetime(as_str, errors="coerce", format="ISO8601")
    except (ValueError, TypeError):
        parsed = _parse_mixed_zones(t, col, as_str, present)
    bad = (present & parsed.isna()).to_numpy()
    if bad.any():
        raise t.error(
            col, bad, "are not dates", values=as_str.to_numpy(),
            fix="use ISO 8601 dates such as 2024-03-31 or 2024-03-31T14:05:00 "
            "(or import with a mapping file that names your date format)",
        )
    return parsed


@functools.cache
def _bounds(dtype: np.dtype) -> tuple[np.datetime64, np.datetime64]:
    """The plausible-date window in a column's own unit: a year-9999 placeholder in seconds must
    not overflow on its way to nanoseconds before it is refused."""
    return _EARLIEST.to_datetime64().astype(dtype), _LATEST.to_datetime64().astype(dtype)


def _parse_times(t: _Typing, col: str, kind: str) -> tuple[np.ndarray, bool | None, bool]:
    """Parse a timestamp/date column to naive UTC ``datetime64[ns]``; report bad rows by id.

    Returns the parsed column, whether its values carried a zone (``None`` when
    the column is empty), so the caller can check zones across the whole history,
    and whether the column already held exactly these values.
    Values with an offset are converted to UTC; a column mixing values with and
    without a zone is refused, because the naive ones cannot be placed in time.
    A column that already holds naive timestamps (an API payload, Parquet) is only
    range-checked: parsing is for text.
    """
    raw = t.frame[col]
    parsed: pd.Series | np.ndarray = raw
    if not pd.api.types.is_datetime64_any_dtype(raw):
        parsed = _parse_text_times(t, col, raw)
    aware: bool | None = None
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
        aware = True
    if isinstance(parsed.dtype, np.dtype):
        values = np.asarray(parsed.array) if isinstance(parsed, pd.Series) else parsed
        if aware is None and not np.isnat(values).all():
            aware = False
        lo, hi = _bounds(values.dtype)
        out_of_range = (values < lo) | (values >= hi)  # NaT compares False
    else:  # an Arrow timestamp column: let pandas compare it
        assert isinstance(parsed, pd.Series)
        if aware is None and bool(parsed.notna().any()):
            aware = False
        out_of_range = (parsed.notna() & ((parsed < _EARLIEST) | (parsed >= _LATEST))).to_numpy()
        values = parsed
    if out_of_range.any():
        raise t.error(
            col, out_of_range, f"lie outside {_EARLIEST.year}-{_LATEST.year - 1}",
            values=pd.Series(values).astype(str).to_numpy(),
            fix="replace placeholder dates (such as 9999-12-31) by an empty cell and correct typos",
        )
    if isinstance(values, pd.Series):
        values = values.astype("datetime64[ns]").to_numpy()
    unchanged = raw.dtype == np.dtype("datetime64[ns]")
    values = values.astype("datetime64[ns]", copy=False)
    if kind == "date":
        day = values.astype("datetime64[D]").astype("datetime64[ns]")  # floor to midnight; NaT stays NaT
        unchanged = unchanged and bool(np.array_equal(day.view("int64"), values.view("int64")))
        values = day
    return values, aware, unchanged


def _absent(kind: str, n: int) -> np.ndarray:
    """An optional column the table does not have: all missing, in the column's type."""
    if kind == "str":
        return np.full(n, None, dtype=object)
    if kind in ("int", "float"):
        return np.full(n, np.nan)
    return np.full(n, np.datetime64("NaT", "ns"))


def _frame(columns: dict[str, np.ndarray | pd.Series], n: int) -> pd.DataFrame:
    """A DataFrame built once from typed columns that belong to it alone.

    No per-column insertion, no string inference, and no copying or stacking of
    the columns into blocks: a column of a million-row table is not moved again.
    """
    index = pd.RangeIndex(n)
    data = {
        # only object arrays need wrapping: pandas would otherwise turn them into its string dtype
        name: pd.Series(v, index=index, dtype=object, copy=False)
        if isinstance(v, np.ndarray) and v.dtype == object else v
        for name, v in columns.items()
    }
    return pd.DataFrame(data, index=index, copy=False)


def coerce_table(frame: pd.DataFrame, table: Table) -> tuple[pd.DataFrame, dict[str, bool]]:
    """Check required columns and give each contract column its type.

    Returns the typed frame and, per timestamp column, whether it carried a zone
    (so the caller can check zones are consistent across the whole history).
    Date-only columns are left out of that check: a calendar date has no zone.
    Columns outside the contract are kept as given; optional contract columns
    the table lacks are added, empty. The index is reset (row 0 = file line 2).
    """
    missing = [c for c in table.required_columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"table {table.name}: missing required column(s) {missing}; found {list(frame.columns)}",
            table=table.name, column=missing[0],
            fix=f"rename your columns to the contract names or import with a mapping file "
            f"(dealscore import csv --mapping ...); required: {table.required_columns}",
        )
    t = _Typing(frame, table)
    zones: dict[str, bool] = {}
    text = [col.name for col in table.columns if col.kind == "str" and col.name in frame]
    texts = dict(zip(text, _texts([frame[name] for name in text]), strict=True))
    unchanged = True
    given: list[str] = []  # numbers and times passed through: still the caller's memory
    for col in table.columns:
        if col.name not in frame:
            unchanged = False
            continue
        if col.kind == "str":
            t.typed[col.name], same = texts[col.name]
        elif col.kind in ("int", "float"):
            t.typed[col.name], same = _number(t, col.name)
        else:
            t.typed[col.name], aware, same = _parse_times(t, col.name, col.kind)
            if aware is not None and col.kind == "timestamp":
                zones[col.name] = aware
        unchanged = unchanged and same
        if same and col.kind != "str":
            given.append(col.name)
    if unchanged:
        # already typed (an API payload laid out by the service): the frame itself, re-indexed
        return frame.reset_index(drop=True), zones
    for name in given:
        t.typed[name] = t.typed[name].copy()
    n = len(frame)
    columns: dict[str, np.ndarray | pd.Series] = {
        name: t.typed[name] if name in t.typed else frame[name].reset_index(drop=True) for name in frame.columns
    }
    absent = [col.name for col in table.columns if col.name not in columns]
    for col in table.columns:
        if col.name in absent:
            columns[col.name] = _absent(col.kind, n)
    out = _frame(columns, n)
    if out.columns.dtype != frame.columns.dtype:  # keep the caller's kind of column labels
        labels = frame.columns
        for name in absent:
            labels = labels.insert(len(labels), name)
        out.columns = labels
    return out, zones


def parse_cut_at(value: object) -> pd.Timestamp | None:
    """The data cut as a naive UTC timestamp (``history.yaml`` may give it with an offset)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        t = pd.Timestamp(value)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise DataValidationError(
            f"cut_at {value!r} is not a timestamp", table="history.yaml", column="cut_at",
            fix="give cut_at (history.yaml or --cut-at) as an ISO 8601 timestamp such as 2024-03-31T00:00:00",
        ) from exc
    if pd.isna(t):
        return None
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t.as_unit("ns")


def from_frames(
    frames: Mapping[str, pd.DataFrame | None], *, cut_at: str | pd.Timestamp | None = None,
    meta: dict[str, Any] | None = None,
) -> DealHistory:
    """Type a set of DataFrames named by contract table (no business rules yet)."""
    unknown = sorted(set(frames) - set(TABLES))
    if unknown:
        raise DataValidationError(
            f"unknown table name(s) {unknown}", table=unknown[0],
            fix=f"name the tables {list(TABLES)}",
        )
    typed: dict[str, pd.DataFrame | None] = {}
    zones: dict[str, bool] = {}
    for name, table in TABLES.items():
        frame = frames.get(name)
        if frame is None:
            if table.required:
                raise DataValidationError(
                    f"table {name} is missing", table=name,
                    fix=f"provide a {name} table with columns {table.required_columns}",
                )
            typed[name] = None
            continue
        typed[name], z = coerce_table(frame, table)
        zones.update({f"{name}.{k}": v for k, v in z.items()})
    if len(set(zones.values())) > 1:
        aware = sorted(k for k, v in zones.items() if v)
        naive = sorted(k for k, v in zones.items() if not v)
        raise DataValidationError(
            f"timestamps are not time-zone consistent: {aware} carry a zone but {naive} do not",
            table=aware[0].split(".")[0], column=aware[0].split(".")[1],
            fix="export all timestamps in one convention (all UTC with an offset, or all without one)",
        )
    return DealHistory(
        accounts=typed["accounts"],  # type: ignore[arg-type]
        deals=typed["deals"],  # type: ignore[arg-type]
        stage_history=typed["stage_history"],  # type: ignore[arg-type]
        activities=typed["activities"],  # type: ignore[arg-type]
        stage_truth=typed["stage_truth"],
        cut_at=parse_cut_at(cut_at),
        meta=dict(meta or {}),
    )


def load_history(folder: str | Path) -> DealHistory:
    """Load a history folder of CSV or Parquet files (no business rules yet).

    A ``history.yaml`` beside the tables may give ``cut_at`` (the export time).
    """
    path = Path(folder)
    if not path.is_dir():
        raise DataValidationError(
            f"history folder {path} does not exist or is not a folder",
            fix="pass the folder holding accounts.csv, deals.csv, stage_history.csv and activities.csv",
        )
    frames = {name: _read_table(path, table) for name, table in TABLES.items()}
    meta: dict[str, Any] = {}
    meta_path = path / META_FILE
    if meta_path.is_file():
        try:
            loaded = yaml.safe_load(meta_path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise DataValidationError(
                f"{meta_path} is not valid YAML: {exc}", table=META_FILE,
                fix="fix the file (it holds e.g. 'cut_at: 2024-03-31T00:00:00') or delete it",
            ) from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise DataValidationError(
                f"{meta_path} must hold a mapping such as 'cut_at: 2024-03-31T00:00:00'", table=META_FILE,
                fix="fix the file or delete it",
            )
        meta = loaded or {}
    return from_frames(frames, cut_at=meta.get("cut_at"), meta=meta)


def _format_frame(frame: pd.DataFrame, table: Table) -> pd.DataFrame:
    """Render a table for CSV with stable, ISO formatting (byte-identical for equal data)."""
    out = pd.DataFrame(index=frame.index)
    for col in table.columns:
        if col.name not in frame:
            continue
        s = frame[col.name]
        if col.kind == "timestamp":
            out[col.name] = s.dt.strftime("%Y-%m-%dT%H:%M:%S").where(s.notna(), "")
        elif col.kind == "date":
            out[col.name] = s.dt.strftime("%Y-%m-%d").where(s.notna(), "")
        elif col.kind == "float":
            out[col.name] = s.map(lambda v: "" if pd.isna(v) else f"{float(v):.2f}")
        elif col.kind == "int":
            out[col.name] = s.map(lambda v: "" if pd.isna(v) else str(int(v)))
        else:
            out[col.name] = s.where(s.notna(), "")
    return out


def write_history(history: DealHistory, folder: str | Path, *, fmt: str = "csv") -> Path:
    """Write a history folder in the contract's format (CSV by default, or Parquet).

    The folder then holds exactly this history: a contract table file left from an
    earlier write (a ``deals.parquet`` beside a new ``deals.csv``, or a
    ``stage_truth.csv`` this history does not have) would be read back in its
    place, so such files are removed. Other files in the folder are left alone.
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', not {fmt!r}")
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise DataValidationError(
            f"{path} exists and is not a folder", fix="choose another --out folder for the history",
        )
    path.mkdir(parents=True, exist_ok=True)
    present = history.tables()
    for name, table in TABLES.items():
        for ext in ("csv", "parquet"):
            stale = path / f"{name}.{ext}"
            if stale.is_file() and (name not in present or ext != fmt):
                stale.unlink()
        if name not in present:
            continue
        frame = present[name]
        if fmt == "parquet":
            frame[[c for c in table.column_names if c in frame]].to_parquet(path / f"{name}.parquet", index=False)
        else:
            _format_frame(frame, table).to_csv(path / f"{name}.csv", index=False, lineterminator="\n")
    meta = dict(history.meta)
    if history.cut_at is not None:
        meta["cut_at"] = history.cut_at.strftime("%Y-%m-%dT%H:%M:%S")
    meta_path = path / META_FILE
    if meta:
        meta_path.write_text(yaml.safe_dump(meta, sort_keys=True), encoding="utf-8")
    elif meta_path.is_file():
        meta_path.unlink()
    return path
