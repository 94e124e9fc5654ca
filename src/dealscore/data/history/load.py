"""Loading a history: reading a folder's CSV/Parquet files or typing in-memory frames.

Loading only parses and types the tables (and says exactly where it cannot);
the business rules live in :mod:`dealscore.data.validate`.
"""

from __future__ import annotations

import contextlib
import csv
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from dealscore.data import rules
from dealscore.data.history.columns import coerce_table
from dealscore.data.history.model import DealHistory
from dealscore.data.schema import TABLES, Table
from dealscore.errors import DataValidationError, DealscoreError, combined
from dealscore.times import naive_utc

META_FILE = "history.yaml"


def table_files(folder: Path, name: str) -> tuple[Path | None, Path | None]:
    """The file a folder's table is read from, and a file beside it that is NOT read (else None).

    The one precedence rule: ``<table>.parquet`` wins over ``<table>.csv`` (a folder
    written as Parquet may keep an older CSV). Every message about such a table
    names the file read, so a user editing the CSV learns why nothing changes.
    """
    pq, text = folder / f"{name}.parquet", folder / f"{name}.csv"
    if pq.is_file():
        return pq, text if text.is_file() else None
    return (text if text.is_file() else None), None


def shadowed_files(folder: Path) -> dict[str, tuple[Path, Path]]:
    """Per table, the file read and the file beside it that is not, for the tables that have both."""
    out: dict[str, tuple[Path, Path]] = {}
    for name in TABLES:
        read, ignored = table_files(folder, name)
        if read is not None and ignored is not None:
            out[name] = (read, ignored)
    return out


def shadow_note(folder: Path, tables: Iterable[str | None]) -> str:
    """" (read from deals.parquet; deals.csv beside it was not read)" for the named tables that have both files."""
    shadowed = shadowed_files(folder)
    notes = [f"table {n} was read from {shadowed[n][0]}; {shadowed[n][1].name} beside it was not read"
             for n in dict.fromkeys(tables) if n in shadowed]
    return f" ({'; '.join(notes)})" if notes else ""


@contextlib.contextmanager
def naming_files_read(folder: Path) -> Iterator[None]:
    """Errors about a table that has both a Parquet and a CSV file name the file that was read."""
    try:
        yield
    except DataValidationError as exc:
        tables = [exc.table, *(getattr(p, "table", None) for p in exc.problems)]
        note = shadow_note(folder, tables)
        if not note:
            raise
        named = DataValidationError(
            exc.summary + note, table=exc.table, column=exc.column, rows=exc.rows,
            fix=(exc.fix + "; " if exc.fix else "") + "edit the file that is read, or remove the other one",
            problems=exc.problems,
        )
        named.ids = exc.ids  # already in the summary: not appended twice
        named.detail["ids"] = exc.ids
        raise named from exc


def refuse_duplicate_columns(names: Iterable[object], *, where: str, table: str) -> None:
    """A header naming a column twice: which of the two is meant cannot be known, so neither is guessed.

    Names are compared as the loader uses them (blanks around them dropped). pandas
    would keep the first and rename the second (``amount.1``), and the second would
    then be ignored without a word.
    """
    counts = Counter(str(n).strip() for n in names)
    dup = sorted(n for n, k in counts.items() if k > 1)
    if dup:
        raise DataValidationError(
            f"table {table}: {where} names the column(s) {dup} more than once", table=table, column=dup[0],
            fix=f"keep one column of each name in {where} (rename or delete the others)",
        )


def read_text_csv(path: Path, *, table: str, encoding: str = "utf-8-sig", delimiter: str = ",",
                  **options: Any) -> pd.DataFrame:
    """A CSV file's cells as text (only empty cells missing), refusing a row with more fields than the header.

    Given rows one field wider than their header (a trailing separator on every data row), pandas takes
    the first column for the index and shifts every other one left: ids became industries and countries
    amounts, and the errors that followed blamed the wrong columns. Read with ``index_col=False`` it would
    drop the extra fields instead, so the file's first such line is named and nothing is guessed.
    pandas' own errors (an empty file, a later row wider than the first) are the caller's to word.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding=encoding,
                            sep=delimiter, index_col=False, **options)
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        width = len(csv_header(path, encoding=encoding, delimiter=delimiter))
        found = _first_wide_row(path, encoding=encoding, delimiter=delimiter, width=width)
        where, line = (f"line {found[0]} has {found[1]} fields", f"line {found[0]}") if found else \
            ("some rows have more fields", "those lines")
        raise DataValidationError(
            f"{path} {where} where its header names {width} columns, so its values cannot be matched to "
            "the columns", table=table,
            fix=f"remove the extra field(s) on {line} (often a separator at the end of the line) or quote "
                "the cell that holds the separator, and check the other lines the same way")
    return frame


def _first_wide_row(path: Path, *, encoding: str, delimiter: str, width: int) -> tuple[int, int] | None:
    """The line a record starts on (header = 1) and its field count, of the first record holding a value beyond
    ``width`` fields (an empty trailing field is read in place, as pandas reads it); ``None`` if none does."""
    with path.open(encoding=encoding, newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        next(reader, None)
        start = reader.line_num + 1
        for row in reader:
            if any(cell.strip() for cell in row[width:]):
                return start, len(row)
            start = reader.line_num + 1
    return None


def csv_header(path: Path, *, encoding: str = "utf-8-sig", delimiter: str = ",") -> list[str]:
    """The header row of a CSV file as written (pandas renames repeated names before anyone sees them)."""
    try:
        with path.open(encoding=encoding, newline="") as fh:
            return next(csv.reader(fh, delimiter=delimiter), [])
    except (UnicodeDecodeError, csv.Error, LookupError):
        return []  # the full read that follows says what is wrong with the file


def _read_table(folder: Path, table: Table) -> pd.DataFrame | None:
    """Read ``<table>.parquet`` or ``<table>.csv`` from a folder, with clear errors.

    CSV cells are read as text (only empty cells are missing, so a region "NA" stays
    "NA") and typed later by :func:`coerce_table`, which can then name the rows it
    cannot type. A UTF-8 byte-order mark and blanks around header names are dropped
    because spreadsheet exports add them. A header naming a column twice is refused.
    """
    pq, csv = folder / f"{table.name}.parquet", folder / f"{table.name}.csv"
    read, _ = table_files(folder, table.name)
    if read == pq:
        try:
            frame = pd.read_parquet(pq)
        except Exception as exc:  # pyarrow raises many types for a bad file
            raise DataValidationError(
                f"table {table.name}: cannot read {pq}: {exc}", table=table.name,
                fix="re-export the file as Parquet or CSV",
            ) from exc
    elif read == csv:
        refuse_duplicate_columns(csv_header(csv), where=str(csv), table=table.name)
        try:
            frame = read_text_csv(csv, table=table.name)
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
    refuse_duplicate_columns(frame.columns, where=str(read), table=table.name)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


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
    return naive_utc(t).as_unit("ns")


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
    problems: list[DealscoreError] = []  # every table's, so that one run lists them all
    for name, table in TABLES.items():
        frame = frames.get(name)
        if frame is None:
            if table.required:
                problems.append(DataValidationError(
                    f"table {name} is missing", table=name,
                    fix=f"provide a {name} table with columns {table.required_columns}",
                ))
            typed[name] = None
            continue
        try:
            typed[name], z = coerce_table(frame, table)
        except DataValidationError as exc:
            problems.append(exc)
            continue
        zones.update({f"{name}.{k}": v for k, v in z.items()})
    if problems:
        raise combined(problems, "the deal history")
    aware, naive = rules.zone_mix_columns(zones)
    if naive:
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
    with naming_files_read(path):
        return _load_folder(path)


def _load_folder(path: Path) -> DealHistory:
    """Every file is read before any problem is raised: a folder with a missing deals.csv and an unreadable
    activities.csv names both in one run, not one per attempt."""
    frames: dict[str, pd.DataFrame | None] = {}
    problems: list[DealscoreError] = []
    for name, table in TABLES.items():
        try:
            frames[name] = _read_table(path, table)
        except DataValidationError as exc:
            problems.append(exc)
    try:
        meta = _read_meta(path)
    except DataValidationError as exc:
        problems.append(exc)
    if problems:
        raise combined(problems, f"the history folder {path}")
    return from_frames(frames, cut_at=meta.get("cut_at"), meta=meta)


def _read_meta(path: Path) -> dict[str, Any]:
    """``history.yaml``'s mapping (the export time and notes), empty when the file is absent."""
    meta_path = path / META_FILE
    if not meta_path.is_file():
        return {}
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
    return loaded or {}
