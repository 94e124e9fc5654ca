"""Loading a history: reading a folder's CSV/Parquet files or typing in-memory frames.

Loading only parses and types the tables (and says exactly where it cannot);
the business rules live in :mod:`dealscore.data.validate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from dealscore.data.history.columns import coerce_table
from dealscore.data.history.model import DealHistory
from dealscore.data.schema import TABLES, Table
from dealscore.errors import DataValidationError
from dealscore.times import naive_utc

META_FILE = "history.yaml"


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
