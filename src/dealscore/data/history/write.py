"""Writing a history folder in the contract's format (CSV or Parquet), byte-stable."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from typing import Any

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
    """Write a history folder in the contract's format (CSV by default, or Parquet), whole or not at all.

    The folder then holds exactly this history: a contract table file left from an
    earlier write (a ``deals.parquet`` beside a new ``deals.csv``, or a
    ``stage_truth.csv`` this history does not have) would be read back in its
    place, so such files are removed. Other files in the folder are left alone.

    Every file is first written into a temporary folder beside ``folder``; a new
    folder is then renamed into place in one step, an existing one gets each file
    by an atomic rename. A write that fails (a full disk, a folder standing where a
    table file goes, no permission) therefore leaves no half-written history. An
    ``OSError`` is raised as a :class:`~dealscore.errors.DataValidationError`
    naming the folder.
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', not {fmt!r}")
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise DataValidationError(
            f"{path} exists and is not a folder", fix="choose another --out folder for the history",
        )
    present = history.tables()
    meta = dict(history.meta)
    if history.cut_at is not None:
        meta["cut_at"] = history.cut_at.strftime("%Y-%m-%dT%H:%M:%S")
    written = [f"{name}.{fmt}" for name in TABLES if name in present] + ([META_FILE] if meta else [])
    removed = [f"{name}.{ext}" for name in TABLES for ext in ("csv", "parquet")
               if f"{name}.{ext}" not in written] + ([] if meta else [META_FILE])
    for name in [*written, *removed]:  # found before anything is written, not half-way
        target = path / name
        if target.exists() and not target.is_file():
            raise DataValidationError(
                f"cannot write the history to {path}: {target} exists and is not a file",
                fix="remove it or choose another --out folder for the history",
            )
    try:
        where = path.resolve()
        where.parent.mkdir(parents=True, exist_ok=True)
        # a made-up name, not mkdtemp: that folder would be its owner's alone once renamed into place
        staging = where.parent / f".{where.name}.{secrets.token_hex(6)}.tmp"
        staging.mkdir()
        try:
            _write_tables(present, meta, staging, fmt)
            if not path.exists():
                staging.rename(path)
                return path
            for name in written:
                os.replace(staging / name, path / name)
            for name in removed:
                (path / name).unlink(missing_ok=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as exc:
        raise DataValidationError(
            f"cannot write the history to {path}: {exc.strerror or exc}"
            + (f" ({exc.filename})" if exc.filename else ""),
            fix="choose an --out folder you can write to (nothing was written)",
        ) from exc
    return path


def _write_tables(present: dict[str, pd.DataFrame], meta: dict[str, Any], folder: Path, fmt: str) -> None:
    """Every table of the history, and its ``history.yaml`` when it has meta, into the empty ``folder``."""
    for name, table in TABLES.items():
        if name not in present:
            continue
        frame = present[name]
        if fmt == "parquet":
            frame[[c for c in table.column_names if c in frame]].to_parquet(folder / f"{name}.parquet", index=False)
        else:
            _format_frame(frame, table).to_csv(folder / f"{name}.csv", index=False, lineterminator="\n")
    if meta:
        (folder / META_FILE).write_text(yaml.safe_dump(meta, sort_keys=True), encoding="utf-8")
