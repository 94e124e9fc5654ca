"""What every importer shares: reading an export's CSV files, the import report, the result.

An importer turns a CRM export into the contract's tables. Whatever it drops,
fills in or renames on the way is counted in an :class:`ImportReport`, which is
printed by the CLI and stored in the history's ``history.yaml``, so that nothing
changes silently between the export and the history dealscore learns from.

Every converted row carries where it came from (the :data:`ORIGIN_COLUMNS`, dropped
before the tables are typed): the contract's rules run on the converted tables, and
a row number of a converted table is nothing a user can find in their export, so
:func:`checked_history` adds the export file and line of each row an error names.

A line is the line of the file a text editor shows (header = line 1), where the row's
record starts: a quoted cell may hold line breaks (multi-line notes and descriptions are
common in CRM exports) and blank lines are skipped by the reader, so it is not the row's
position + 2. :func:`read_source_csv` records each row's line in :data:`LINE`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import numpy as np
import pandas as pd

from dealscore.data.history import DealHistory, from_frames
from dealscore.data.history.load import csv_header, read_text_csv, refuse_duplicate_columns
from dealscore.data.importers.mapping import QUOTING
from dealscore.data.validate import LoadReport, validate_history
from dealscore.errors import DataValidationError, DealscoreError, combined
from dealscore.taxonomy import StageTaxonomy

#: Where a converted row came from, carried beside the contract columns until the tables are typed:
#: the export file (as the mapping names it) and the row's line there (header = line 1, as in every
#: message about an export); for a row no export line holds, how the import made it; for a row some of
#: whose values were taken from another line, a :class:`TakenFrom`. A source frame carries ``LINE``
#: from :func:`read_source_csv` on, so filtering and unpivoting its rows keep their lines.
SOURCE, LINE, NOTE, TAKEN = "__source__", "__line__", "__note__", "__taken__"
ORIGIN_COLUMNS = (SOURCE, LINE, NOTE, TAKEN)

#: The longest cell the csv module is let read: any cell of a file (its size bounds them) up to what
#: the module's C ``long`` holds everywhere
_MAX_CELL = 2**31 - 1
#: Where pandas' tokenizer names a record in a parse error: "in line n" is the n-th record, "starting at
#: row n" the one after the n-th, counting blank lines but a record with line breaks in a cell as one
_READER_PLACE = re.compile(r"(?P<words>in line|starting at row) (?P<n>\d+)")


class TakenFrom(NamedTuple):
    """Contract columns of a converted row whose values come from another export line (a deal's close
    from its closing stage-history row): a problem in one of them may lie in that line."""

    columns: tuple[str, ...]
    file: str
    line: int


@dataclass
class ImportReport:
    """Counts of everything an importer did to the export's rows."""

    importer: str
    source: str
    rows_read: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    filled: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def drop(self, why: str, n: int) -> None:
        """Count ``n`` source rows left out of the history, and why."""
        if n:
            self.dropped[why] = self.dropped.get(why, 0) + int(n)

    def fill(self, what: str, n: int) -> None:
        """Count ``n`` values the importer filled in or rewrote, and how."""
        if n:
            self.filled[what] = self.filled.get(what, 0) + int(n)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only: this goes into ``history.yaml``."""
        return {
            "importer": self.importer,
            "source": self.source,
            "rows_read": {k: int(v) for k, v in self.rows_read.items()},
            "dropped": {k: int(v) for k, v in self.dropped.items()},
            "filled": {k: int(v) for k, v in self.filled.items()},
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ImportResult:
    """The imported history (canonical names, not yet cleaned), its import report and load report."""

    history: DealHistory
    report: ImportReport
    load_report: LoadReport


def read_source_csv(
    path: Path, *, label: str, required: list[str] | None = None, encoding: str = "utf-8-sig",
    delimiter: str = ",",
) -> pd.DataFrame:
    """Read one export file as text (empty cells missing, nothing else guessed), with clear errors.

    ``label`` names the file in messages (e.g. ``sales_pipeline.csv``); ``required``
    lists columns the importer cannot do without. Each row's line in the file is in
    :data:`LINE` (:func:`row_lines`), and a parse error names the file's line too.
    """
    if not path.is_file():
        raise DataValidationError(
            f"{label}: file {path} does not exist", table=label,
            fix=f"pass the export folder that holds {path.name}",
        )
    refuse_duplicate_columns(csv_header(path, encoding=encoding, delimiter=delimiter), where=str(path), table=label)
    unreadable = "save it as CSV with a header row (set csv.encoding / csv.delimiter in the mapping if they differ)"
    try:
        frame = read_text_csv(path, table=label, encoding=encoding, delimiter=delimiter, **QUOTING)
    except pd.errors.EmptyDataError as exc:
        raise DataValidationError(
            f"{label}: file {path} is empty (not even a header row)", table=label,
            fix="re-export the file with its header row",
        ) from exc
    except pd.errors.ParserError as exc:
        raise DataValidationError(
            f"{label}: {path} is not a readable CSV file: "
            f"{_on_file_lines(str(exc).strip(), path, encoding=encoding, delimiter=delimiter)}",
            table=label, fix=unreadable,
        ) from exc
    except (UnicodeDecodeError, OSError, LookupError) as exc:
        raise DataValidationError(
            f"{label}: {path} is not a readable CSV file: {exc}", table=label, fix=unreadable,
        ) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    for col in frame.columns:
        text = frame[col].astype("string").str.strip()
        frame[col] = text.mask(text == "")
    missing = [c for c in (required or []) if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{label}: missing column(s) {missing}; found {list(frame.columns)}", table=label, column=missing[0],
            fix=f"export {path.name} with the columns {required}",
        )
    frame[LINE] = row_lines(path, len(frame), encoding=encoding, delimiter=delimiter)
    return frame


def row_lines(path: Path, rows: int, *, encoding: str, delimiter: str) -> np.ndarray:
    """The line of ``path`` each of the ``rows`` rows pandas read from it starts on (header = line 1).

    A file of one line per record is the rule (its lines number the header and the rows, so row ``i``
    is on line ``i + 2``) and is found by counting line breaks, cheap even for a 300,000-row export.
    Any other file (a quoted cell holding line breaks, blank lines the reader skipped) is read again
    record by record (:func:`_records`), which costs about as much as pandas' read.
    """
    if _line_count(path, encoding) == rows + 1:
        return np.arange(2, rows + 2, dtype=np.int64)
    with closing(_records(path, encoding=encoding, delimiter=delimiter)) as records:
        starts = np.fromiter((r.line for r in records if r.row), dtype=np.int64)[1:]  # the first is the header's
    if len(starts) != rows:  # the two readers split the file differently: no line can be trusted
        raise DataValidationError(
            f"{path.name}: its records cannot be matched to the file's lines ({rows:,} rows read, {len(starts):,} "
            "records counted); this happens with lone carriage-return line ends around blank or empty rows",
            fix="save the export again as CSV with standard line ends (LF or CR LF) and no empty rows")
    return starts


def _on_file_lines(message: str, path: Path, *, encoding: str, delimiter: str) -> str:
    """pandas' parse error ``message`` about ``path``, naming the file line the record it is about starts on.

    The tokenizer numbers records, not lines (:data:`_READER_PLACE`): after a cell holding a line break
    its numbers are short of the lines a user sees.
    """
    found = _READER_PLACE.search(message)
    if found is None:
        return message
    in_line = found["words"] == "in line"
    index = int(found["n"]) - 1 if in_line else int(found["n"])
    with closing(_records(path, encoding=encoding, delimiter=delimiter)) as records:
        record = next(islice(records, index, None), None)
    words = "in line" if in_line else "starting at line"
    return message if record is None else f"{message[:found.start()]}{words} {record.line}{message[found.end():]}"


class _Record(NamedTuple):
    """One record of a file as the csv module reads it."""

    line: int  #: the line it starts on
    row: bool  #: pandas reads it as a row (or the header): not a blank line it skips


class _Lines:
    """A file's lines as csv.reader takes them, remembering the last one given.

    A leading byte-order mark is dropped, as pandas drops it whatever the encoding is called.
    """

    def __init__(self, fh: TextIO) -> None:
        self.fh = fh
        self.last = ""

    def __iter__(self) -> Iterator[str]:
        for n, line in enumerate(self.fh):
            self.last = line if n else line.removeprefix("\ufeff")
            yield self.last


def _records(path: Path, *, encoding: str, delimiter: str) -> Iterator[_Record]:
    """Every record of ``path`` in file order, split as pandas splits it (:data:`QUOTING`), blank lines too.

    ``csv.reader(...).line_num`` is the line a record ends on, so the next one starts a line later.
    pandas skips an empty line and a line of spaces and tabs only (with no delimiter among them); the
    csv module reads the second as one cell, as it reads a line holding one quoted cell of spaces (a row
    to pandas), so the line itself decides. Bytes the encoding cannot read are replaced: pandas read
    them (a row's line) or stopped before them (a parse error's line). The csv module's cell size limit
    (128 KiB) is raised to the file's size, as pandas has none; never lowered, as it is process-wide.
    """
    size = min(path.stat().st_size, _MAX_CELL)
    if csv.field_size_limit() < size:
        csv.field_size_limit(size)
    with path.open(encoding=encoding, errors="replace", newline="") as fh:
        lines = _Lines(fh)
        reader = csv.reader(lines, delimiter=delimiter, **QUOTING)
        start = 1
        for cells in reader:
            yield _Record(start, row=len(cells) > 1 or bool(lines.last.strip(" \t\r\n")))
            start = reader.line_num + 1


def _line_count(path: Path, encoding: str) -> int:
    """The lines of ``path`` as a text editor numbers them: each ends at a line feed, a carriage return and
    line feed, or a lone carriage return (as pandas and the csv module end records); the last need not end."""
    count, last = 0, ""
    with path.open(encoding=encoding, errors="replace", newline="") as fh:
        while chunk := fh.read(1 << 20):
            lf, cr = chunk.count("\n"), chunk.count("\r")
            crlf = chunk.count("\r\n") if cr else 0  # a file of LF line ends (most) skips this pass
            split = last == "\r" and chunk[0] == "\n"  # a CR LF the chunks cut in two is one line end
            count += lf + cr - crlf - split
            last = chunk[-1]
    return count + (last not in ("", "\n", "\r"))


def raise_problems(problems: list[DealscoreError], where: str) -> None:
    """Raise every problem at once (:func:`combined`); nothing when there is none."""
    if problems:
        raise combined(problems, where)


def file_lines(frame: pd.DataFrame) -> np.ndarray:
    """Each row's line in the export file it was read from (header = line 1): :data:`LINE`, which
    :func:`read_source_csv` records and filtering and unpivoting keep."""
    return frame[LINE].to_numpy(dtype="int64")


def file_columns(frame: pd.DataFrame) -> list[str]:
    """The columns of the export file ``frame`` was read from, as a message lists them (:data:`LINE` is the
    reader's)."""
    return [c for c in frame.columns if c != LINE]


def from_file(out: pd.DataFrame, file: str, lines: np.ndarray) -> pd.DataFrame:
    """``out`` (converted row by row from ``file``) with each row's origin: that file and ``lines``."""
    return out.assign(**{SOURCE: file, LINE: lines, NOTE: None, TAKEN: None})


def added_by_import(rows: pd.DataFrame, notes: Sequence[str]) -> pd.DataFrame:
    """Rows the import made (no export line holds them), each saying why (:func:`added_note`)."""
    return rows.assign(**{NOTE: list(notes)})


def added_note(purpose: str = "", where: str = "") -> str:
    """How a row the import made is named in a message: what it was made for, and the lines that asked for it."""
    return "no line: the import added this row" + (f" for {purpose}" if purpose else "") + (
        f" ({where})" if where else "")


def describe_lines(file: str, lines: Iterable[int]) -> str:
    """``deals.csv line 4``, ``deals.csv lines 3, 5`` or ``deals.csv lines 3, 5, 8, 9, 12 and 40 more``.

    A line given twice (two rows unpivoted from it) is named once.
    """
    distinct = list(dict.fromkeys(int(n) for n in lines))
    shown = ", ".join(str(n) for n in distinct[:5])
    more = f" and {len(distinct) - 5:,} more" if len(distinct) > 5 else ""
    return f"{file} line{'s' if len(distinct) > 1 else ''} {shown}{more}"


def describe_rows(tagged: pd.DataFrame) -> str:
    """Where the rows of a frame carrying its origin are in the export: their lines, file by file."""
    rows = tagged[tagged[SOURCE].notna()]
    return "; ".join(describe_lines(str(file), lines)
                     for file, lines in rows.groupby(SOURCE, sort=False)[LINE].agg(list).items())


def lines_by_value(tagged: pd.DataFrame, column: str, values: Collection[Any]) -> dict[Any, str]:
    """For each of ``values``, where the rows of ``tagged`` holding it in ``column`` are in the export.

    One grouping for all values: an import may add thousands of rows, each naming its lines.
    """
    hit = tagged.loc[tagged[column].isin(list(values)) & tagged[SOURCE].notna(), [column, SOURCE, LINE]]
    out: dict[Any, list[str]] = {}
    for (value, file), lines in hit.groupby([column, SOURCE], sort=False)[LINE].agg(list).items():
        out.setdefault(value, []).append(describe_lines(str(file), lines))
    return {value: "; ".join(files) for value, files in out.items()}


def _where(origin: pd.DataFrame, rows: Sequence[int], column: str | None) -> str:
    """Where converted rows (positions in their table) are in the export, for a problem in ``column``.

    A made row says how it was made; a row whose ``column`` was taken from another line names that one too.
    """
    plain: list[int] = []
    said: list[str] = []
    for r in (r for r in rows if 0 <= r < len(origin)):
        file, note, taken = origin[SOURCE].iat[r], origin[NOTE].iat[r], origin[TAKEN].iat[r]
        if pd.isna(file):
            said.append(added_note() if pd.isna(note) else str(note))
        elif isinstance(taken, TakenFrom) and column in taken.columns:
            said.append(f"{describe_lines(str(file), [int(origin[LINE].iat[r])])} "
                        f"({column} from {describe_lines(taken.file, [taken.line])})")
        else:
            plain.append(r)
    if plain:
        said.insert(0, describe_rows(origin.iloc[plain]))
    return "; ".join(dict.fromkeys(said))


def in_export_terms(exc: DealscoreError, origins: Mapping[str, pd.DataFrame]) -> DealscoreError:
    """``exc`` about converted tables, also naming the export lines of the rows it names.

    The rows come from the error's ``rows`` field (positions in the converted table),
    never from its text. Every field is kept: ``rows`` still counts converted rows,
    as for any caller mapping the error back onto the tables it validated.
    """
    if not isinstance(exc, DataValidationError):
        return exc
    if exc.problems:
        return combined([in_export_terms(p, origins) for p in exc.problems], "the export")
    origin = origins.get(exc.table or "")
    where = "" if origin is None else _where(origin, exc.rows, exc.column)
    if not where:
        return exc
    located = DataValidationError(f"{exc.summary}; in the export: {where}", table=exc.table, column=exc.column,
                                  rows=exc.rows, fix=exc.fix)
    located.ids = exc.ids  # already in the summary: not appended twice
    located.detail["ids"] = exc.ids
    return located


def checked_history(
    frames: Mapping[str, pd.DataFrame], *, cut_at: pd.Timestamp | None, taxonomy: StageTaxonomy | None = None,
    meta: dict[str, Any] | None = None,
) -> tuple[DealHistory, LoadReport]:
    """Type and validate converted tables; an error names the export lines of the rows it is about.

    The origin columns are dropped first: they are the importer's, not the contract's.
    """
    origins: dict[str, pd.DataFrame] = {}
    plain: dict[str, pd.DataFrame] = {}
    for name, frame in frames.items():
        if SOURCE in frame:
            origins[name] = frame.reindex(columns=list(ORIGIN_COLUMNS)).reset_index(drop=True)
        plain[name] = frame.drop(columns=[c for c in ORIGIN_COLUMNS if c in frame])
    try:
        history = from_frames(plain, cut_at=cut_at, meta=meta)
        _, load_report = validate_history(history, taxonomy)
    except DataValidationError as exc:
        raise in_export_terms(exc, origins) from exc
    return history, load_report


def source_ids(frame: pd.DataFrame, mask: pd.Series, id_column: str | None) -> list[str]:
    """Up to five distinct ids of offending source rows: the id column's value, else the file line."""
    out: list[str] = []
    lines = file_lines(frame)
    for r in np.flatnonzero(mask.to_numpy())[:500]:
        value = frame[id_column].iat[r] if id_column and id_column in frame else None
        label = f"line {lines[r]}" if value is None or pd.isna(value) else str(value)
        if label not in out:
            out.append(label)
        if len(out) == 5:
            break
    return out


def finish(
    frames: dict[str, pd.DataFrame], report: ImportReport, *, cut_at: pd.Timestamp | None,
    taxonomy: StageTaxonomy | None = None, meta: dict[str, Any] | None = None,
) -> ImportResult:
    """Type the converted tables, and refuse an import that does not validate.

    Validating here means a user learns about a problem while the mapping is still
    in front of them, and ``dealscore validate`` on the written folder agrees.
    """
    all_meta = dict(meta or {})
    all_meta["import"] = report.to_dict()
    history, load_report = checked_history(frames, cut_at=cut_at, taxonomy=taxonomy, meta=all_meta)
    return ImportResult(history=history, report=report, load_report=load_report)
