"""What every importer shares: reading an export's CSV files, the import report, the result.

An importer turns a CRM export into the contract's tables. Whatever it drops,
fills in or renames on the way is counted in an :class:`ImportReport`, which is
printed by the CLI and stored in the history's ``history.yaml``, so that nothing
changes silently between the export and the history dealscore learns from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dealscore.data.history import DealHistory, from_frames
from dealscore.data.history.load import csv_header, refuse_duplicate_columns
from dealscore.data.validate import LoadReport, validate_history
from dealscore.errors import DataValidationError, DealscoreError
from dealscore.taxonomy import StageTaxonomy


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
    lists columns the importer cannot do without.
    """
    if not path.is_file():
        raise DataValidationError(
            f"{label}: file {path} does not exist", table=label,
            fix=f"pass the export folder that holds {path.name}",
        )
    refuse_duplicate_columns(csv_header(path, encoding=encoding, delimiter=delimiter), where=str(path), table=label)
    try:
        frame = pd.read_csv(
            path, dtype=str, keep_default_na=False, na_values=[""], encoding=encoding, sep=delimiter
        )
    except pd.errors.EmptyDataError as exc:
        raise DataValidationError(
            f"{label}: file {path} is empty (not even a header row)", table=label,
            fix="re-export the file with its header row",
        ) from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, LookupError) as exc:
        raise DataValidationError(
            f"{label}: {path} is not a readable CSV file: {exc}", table=label,
            fix="save it as CSV with a header row (set csv.encoding / csv.delimiter in the mapping if they differ)",
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
    return frame


def raise_problems(problems: list[DealscoreError], where: str) -> None:
    """Raise every problem at once: one alone as it is, several as one error that lists them all.

    A user fixing an export wants the whole list in one run, not one round trip per mistake.
    """
    if not problems:
        return
    if len(problems) == 1:
        raise problems[0]
    first = problems[0]
    text = f"{len(problems)} problems in {where}:\n" + "\n".join(f"  - {p}" for p in problems)
    raise DataValidationError(text, table=getattr(first, "table", None), column=getattr(first, "column", None),
                              ids=getattr(first, "ids", ()), problems=problems)


def source_ids(frame: pd.DataFrame, mask: pd.Series, id_column: str | None) -> list[str]:
    """Up to five distinct ids of offending source rows: the id column's value, else the file line."""
    out: list[str] = []
    for i in frame.index[mask.to_numpy()][:500]:
        value = frame.at[i, id_column] if id_column and id_column in frame else None
        label = f"line {int(i) + 2}" if value is None or pd.isna(value) else str(value)
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
    history = from_frames(frames, cut_at=cut_at, meta=all_meta)
    _, load_report = validate_history(history, taxonomy)
    return ImportResult(history=history, report=report, load_report=load_report)
