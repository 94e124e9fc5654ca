"""Writing a history folder in the contract's format (CSV or Parquet), byte-stable."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from dealscore.data.history.load import META_FILE
from dealscore.data.history.model import DealHistory
from dealscore.data.schema import TABLES, Table
from dealscore.errors import DataValidationError


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
