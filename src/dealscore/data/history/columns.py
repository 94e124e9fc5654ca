"""Typing one contract table's columns: text trimmed, numbers and times parsed, bad rows named.

Parsing only types the values (and says exactly where it cannot); the business
rules live in :mod:`dealscore.data.validate`. Timestamps come out as naive UTC.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dealscore.data import rules
from dealscore.data.schema import Table
from dealscore.errors import DataValidationError, DealscoreError, combined
from dealscore.times import naive_utc


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
            table=self.table.name, column=col, ids=ids, rows=np.flatnonzero(mask)[:5], fix=fix,
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


def _texts(columns: list[pd.Series], caps: list[int]) -> list[tuple[np.ndarray, bool, np.ndarray | None]]:
    """Contract string columns: stripped text, None for missing or blank, as object arrays.

    Every text column goes through Arrow's whitespace trim (the one pandas' string
    dtype applies): the same kernel serves one row and millions. Also says, per
    column, whether it already held exactly these values, and, only when some cell
    is longer than the column's cap (``caps``) or holds a NUL character, each
    cell's length with NUL cells marked -1 (else None).
    """
    out: list[tuple[np.ndarray, bool, np.ndarray | None]] = []
    batch: list[_ArrowText] = []
    for i, s in enumerate(columns):
        batch.append(_arrow_text(s))
        if i == len(columns) - 1 or (len(batch) + 1) * len(s) > _TEXT_BATCH_CELLS:
            out.extend(_trimmed(batch, len(s), min(caps[i + 1 - len(batch):i + 1])))
            batch = []
    return out


def _trimmed(batch: list[_ArrowText], n: int, cap: int) -> list[tuple[np.ndarray, bool, np.ndarray | None]]:
    """One Arrow pass over a few text columns of ``n`` rows each (``cap``: the smallest cap among them)."""
    # pieces, not nested chunked arrays: pyarrow copies value by value when handed those
    chunks = [c for a, _ in batch for c in (a.chunks if isinstance(a, pa.ChunkedArray) else [a])]
    trimmed = pc.utf8_trim_whitespace(pa.chunked_array(chunks, type=pa.large_string()))
    cleaned = pc.if_else(pc.equal(trimmed, _BLANK), _NO_TEXT, trimmed)
    flat = np.asarray(cleaned.to_numpy(), dtype=object)
    # the caps and the NUL rule (the API's, for every path): one cheap pass, cell detail only on a breach
    lengths = pc.utf8_length(cleaned)
    longest = pc.max(lengths).as_py() or 0
    nul = pc.match_substring(cleaned, rules.NUL)
    sizes = None
    if longest > cap or pc.any(nul).as_py():
        sizes = pc.fill_null(lengths, 0).to_numpy().astype(np.int64)
        sizes[pc.fill_null(nul, False).to_numpy(zero_copy_only=False)] = -1
    out = []
    for i, (_, raw) in enumerate(batch):
        values = flat[i * n:(i + 1) * n]
        out.append((values, raw is not None and bool(np.array_equal(raw, values)),
                    None if sizes is None else sizes[i * n:(i + 1) * n]))
    return out


def _refuse_bad_text(t: _Typing, col: str, values: np.ndarray, sizes: np.ndarray, cap: int) -> None:
    """Cells holding a NUL character, or longer than the column's cap: refused by id, as the API refuses them."""
    nul = sizes < 0
    if nul.any():
        raise t.error(col, nul, "hold a NUL character (binary data, or a file saved in another encoding)",
                      fix="remove the NUL characters, or re-export the file as UTF-8 text")
    long = rules.too_long(sizes, cap)
    if long.any():
        shown = np.array([f"{str(v)[:40]}... ({len(str(v)):,} characters)" for v in values], dtype=object)
        raise t.error(col, long, f"are longer than {cap:,} characters", values=shown,
                      fix=f"shorten them to at most {cap:,} characters (keep long notes out of the contract "
                      "columns), or check that the file's quoting is intact")


def _number(t: _Typing, col: str) -> tuple[np.ndarray, bool]:
    """A numeric column as float64; text that is not a number is refused by id.

    Also says whether the column already held exactly these values.
    """
    src = t.frame[col]
    if isinstance(src.dtype, np.dtype) and src.dtype.kind in "iuf":
        # already numbers: nothing to parse, only an infinity (Parquet, a DataFrame) can be bad
        values = src.to_numpy(dtype="float64")
        _refuse_infinite(t, col, values, values)
        return values, src.dtype == np.float64
    src = src.reset_index(drop=True)
    if src.dtype == object or pd.api.types.is_string_dtype(src):
        text = src.astype("string").str.strip()
        src = text.mask(text == "")
    num = pd.to_numeric(src, errors="coerce")
    bad = (src.notna() & num.isna()).to_numpy()
    if bad.any():
        spelled_nan = src.astype("string").str.lower().str.lstrip("+-").eq("nan").fillna(False).to_numpy(dtype=bool)
        found = []
        if (bad & ~spelled_nan).any():
            found.append(t.error(col, bad & ~spelled_nan, "are not numbers", values=src.to_numpy(),
                                 fix="use plain numbers without currency symbols or thousands separators"))
        if (bad & spelled_nan).any():
            found.append(t.error(col, bad & spelled_nan, "are not finite numbers", values=src.to_numpy(),
                                 fix=_NOT_FINITE_FIX))
        raise combined(found, f"table {t.table.name}")
    values = num.astype("float64").to_numpy()
    _refuse_infinite(t, col, values, src.to_numpy())
    return values, False


#: The fix for a cell that spells a number that is none (a text ``NaN`` in a CSV cell is refused under the same
#: rule; in a typed column, Parquet's or a DataFrame's, NaN is how a missing value is held).
_NOT_FINITE_FIX = ("use plain finite numbers (NaN, inf, Infinity or values beyond 1.8e308 are none), "
                   "or leave the cell empty when the value is unknown")


def _refuse_infinite(t: _Typing, col: str, values: np.ndarray, given: np.ndarray) -> None:
    """``inf``, ``Infinity`` and ``1e309`` parse as numbers but are none: refused like ``NaN``, by id.

    An infinite amount would rank first in every at-risk list and turn into an
    invalid JSON token (``Infinity``) on the way out.
    """
    bad = rules.infinite(values)
    if bad.any():
        raise t.error(col, bad, "are not finite numbers", values=np.asarray(given, dtype=object),
                      fix=_NOT_FINITE_FIX)


def _parse_mixed_zones(t: _Typing, col: str, as_str: pd.Series, present: pd.Series) -> pd.Series:
    """Slow path for a column whose values do not share one zone.

    Different offsets (a summer and a winter time) are fine: all go to UTC. Values
    without any zone among values with one cannot be placed in time: refused by id.
    """
    zoned = rules.texts_have_zone(as_str)
    have = present.to_numpy(dtype=bool)
    naive = rules.zone_mix(zoned, have)
    if bool(naive.any()):
        fix = "export every timestamp either with an explicit offset (e.g. +00:00) or all without one"
        with_zone = np.asarray(zoned, dtype=bool) & have
        if with_zone.sum() < naive.sum():  # the odd ones out are the ones to look at
            raise t.error(col, with_zone, f"carry a time zone while {int(naive.sum())} other(s) in the column have "
                          "none", values=as_str.to_numpy(), fix=fix)
        raise t.error(col, naive, f"have no time zone while {int(with_zone.sum())} other(s) in the column do",
                      values=as_str.to_numpy(), fix=fix)
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
        parsed = naive_utc(parsed)
        aware = True
    if isinstance(parsed.dtype, np.dtype):
        values = np.asarray(parsed.array) if isinstance(parsed, pd.Series) else parsed
        if aware is None and not np.isnat(values).all():
            aware = False
        out_of_range = rules.outside_date_window(values)
    else:  # an Arrow timestamp column: let pandas compare it
        assert isinstance(parsed, pd.Series)
        if aware is None and bool(parsed.notna().any()):
            aware = False
        out_of_range = (parsed.notna() & ((parsed < rules.EARLIEST) | (parsed >= rules.LATEST))).to_numpy()
        values = parsed
    if out_of_range.any():
        raise t.error(
            col, out_of_range, f"lie outside {rules.DATE_WINDOW_TEXT}",
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


def frame_of_columns(columns: dict[str, np.ndarray | pd.Series], n: int) -> pd.DataFrame:
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
    caps = {col.name: col.max_chars for col in table.columns}
    texts = dict(zip(text, _texts([frame[name] for name in text], [caps[name] for name in text]), strict=True))
    unchanged = True
    given: list[str] = []  # numbers and times passed through: still the caller's memory
    problems: list[DealscoreError] = []  # every column's, so that one run lists them all
    for col in table.columns:
        if col.name not in frame:
            unchanged = False
            continue
        try:
            if col.kind == "str":
                t.typed[col.name], same, sizes = texts[col.name]
                if sizes is not None:
                    _refuse_bad_text(t, col.name, t.typed[col.name], sizes, col.max_chars)
            elif col.kind in ("int", "float"):
                t.typed[col.name], same = _number(t, col.name)
            else:
                t.typed[col.name], aware, same = _parse_times(t, col.name, col.kind)
                if aware is not None and col.kind == "timestamp":
                    zones[col.name] = aware
        except DataValidationError as exc:
            problems.append(exc)
            continue
        unchanged = unchanged and same
        if same and col.kind != "str":
            given.append(col.name)
    if problems:
        raise combined(problems, f"table {table.name}")
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
    out = frame_of_columns(columns, n)
    if out.columns.dtype != frame.columns.dtype:  # keep the caller's kind of column labels
        labels = frame.columns
        for name in absent:
            labels = labels.insert(len(labels), name)
        out.columns = labels
    return out, zones
