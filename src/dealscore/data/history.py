"""`DealHistory`: the tables of one company's CRM history, loaded and typed.

Loading only parses and types the tables (and says exactly where it cannot);
the business rules live in :mod:`dealscore.data.validate`. Everything is kept in
UTC without a time-zone attribute so that every later comparison is between
like values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
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
    """When a fact became known: ``recorded_at`` where given, else the event time."""
    if "recorded_at" in frame:
        return frame["recorded_at"].fillna(frame[event_col])
    return frame[event_col]


# --------------------------------------------------------------------------- loading


def _read_table(folder: Path, table: Table) -> pd.DataFrame | None:
    """Read ``<table>.parquet`` or ``<table>.csv`` from a folder, with clear errors."""
    pq, csv = folder / f"{table.name}.parquet", folder / f"{table.name}.csv"
    if pq.is_file():
        try:
            return pd.read_parquet(pq)
        except Exception as exc:  # pyarrow raises many types for a bad file
            raise DataValidationError(
                f"table {table.name}: cannot read {pq}: {exc}", table=table.name,
                fix="re-export the file as Parquet or CSV",
            ) from exc
    if csv.is_file():
        str_cols = {c.name: str for c in table.columns if c.kind == "str"}
        try:
            return pd.read_csv(csv, dtype=str_cols, keep_default_na=True, na_values=[""])
        except pd.errors.EmptyDataError as exc:
            raise DataValidationError(
                f"table {table.name}: file {csv} is empty (not even a header row)",
                table=table.name,
                fix=f"export it with a header row naming the columns {table.required_columns}",
            ) from exc
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataValidationError(
                f"table {table.name}: {csv} is not a readable CSV file: {exc}", table=table.name,
                fix="save it as UTF-8 CSV with a comma separator and a header row",
            ) from exc
    if table.required:
        raise DataValidationError(
            f"table {table.name}: no file {csv.name} or {pq.name} in {folder}",
            table=table.name,
            fix=f"add {csv.name} with at least the columns {table.required_columns}",
        )
    return None


def _row_ids(frame: pd.DataFrame, table: Table, mask: pd.Series) -> list[str]:
    """Human ids for offending rows: the id column where there is one, else 'row N (deal X)'."""
    rows = frame.index[mask.to_numpy()][:5]
    if table.id_column and table.id_column in frame:
        return [str(frame.at[r, table.id_column]) for r in rows]
    if "deal_id" in frame:
        return [f"row {r + 2} (deal {frame.at[r, 'deal_id']})" for r in rows]
    return [f"row {r + 2}" for r in rows]


def _parse_times(frame: pd.DataFrame, table: Table, col: str, kind: str) -> tuple[pd.Series, bool | None]:
    """Parse a timestamp/date column to naive UTC; report unparseable rows by id."""
    raw = frame[col]
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = raw
    else:
        as_str = raw.astype("string").str.strip()
        as_str = as_str.mask(as_str == "")
        try:
            parsed = pd.to_datetime(as_str, errors="coerce", format="ISO8601", utc=False)
        except (ValueError, TypeError) as exc:
            # pandas refuses a column mixing zone-aware and naive values
            raise DataValidationError(
                f"table {table.name}, column {col}: timestamps mix values with and without a time zone ({exc})",
                table=table.name, column=col,
                fix="export every timestamp either with an explicit offset (e.g. +00:00) or all without one",
            ) from exc
        bad = as_str.notna() & parsed.isna()
        if bad.any():
            examples = ", ".join(repr(v) for v in as_str[bad].head(3))
            raise DataValidationError(
                f"table {table.name}, column {col}: {int(bad.sum())} value(s) are not dates ({examples}) "
                f"in rows {_row_ids(frame, table, bad)}",
                table=table.name, column=col, ids=_row_ids(frame, table, bad),
                fix="use ISO 8601 dates such as 2024-03-31 or 2024-03-31T14:05:00",
            )
    aware: bool | None = None
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
        aware = True
    elif parsed.notna().any():
        aware = False
    parsed = parsed.astype("datetime64[ns]")
    if kind == "date":
        parsed = parsed.dt.normalize()
    return parsed, aware


def coerce_table(frame: pd.DataFrame, table: Table) -> tuple[pd.DataFrame, dict[str, bool]]:
    """Check required columns and give each contract column its type.

    Returns the typed frame and, per timestamp column, whether it carried a zone
    (so the caller can check zones are consistent across the whole history).
    """
    missing = [c for c in table.required_columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"table {table.name}: missing required column(s) {missing}; found {list(frame.columns)}",
            table=table.name, column=missing[0],
            fix=f"rename your columns to the contract names or import with a mapping file "
            f"(dealscore import csv --mapping ...); required: {table.required_columns}",
        )
    out = frame.reset_index(drop=True).copy()
    zones: dict[str, bool] = {}
    for col in table.columns:
        if col.name not in out:
            continue
        if col.kind == "str":
            s = out[col.name]
            out[col.name] = s.where(s.isna(), s.astype(str).str.strip()).replace("", None)
            out[col.name] = out[col.name].astype(object).where(out[col.name].notna(), None)
        elif col.kind in ("int", "float"):
            num = pd.to_numeric(out[col.name], errors="coerce")
            bad = out[col.name].notna() & num.isna()
            if bad.any():
                ids = _row_ids(out, table, bad)
                raise DataValidationError(
                    f"table {table.name}, column {col.name}: {int(bad.sum())} value(s) are not numbers "
                    f"in rows {ids}",
                    table=table.name, column=col.name, ids=ids,
                    fix="use plain numbers without currency symbols or thousands separators",
                )
            out[col.name] = num.astype("float64")
        else:
            out[col.name], aware = _parse_times(out, table, col.name, col.kind)
            if aware is not None:
                zones[col.name] = aware
    for col in table.columns:
        if not col.required and col.name not in out:
            out[col.name] = None if col.kind == "str" else (
                pd.Series(np.nan, index=out.index) if col.kind in ("int", "float")
                else pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns]")
            )
    return out, zones


def from_frames(
    frames: Mapping[str, pd.DataFrame | None], *, cut_at: str | pd.Timestamp | None = None,
    meta: dict[str, Any] | None = None,
) -> DealHistory:
    """Type a set of DataFrames named by contract table (no business rules yet)."""
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
        cut_at=None if cut_at is None else pd.Timestamp(cut_at),
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
        meta = yaml.safe_load(meta_path.read_text(encoding="utf-8")) or {}
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
    """Write a history folder in the contract's format (CSV by default, or Parquet)."""
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    for name, frame in history.tables().items():
        table = TABLES[name]
        if fmt == "parquet":
            frame[[c for c in table.column_names if c in frame]].to_parquet(path / f"{name}.parquet", index=False)
        else:
            _format_frame(frame, table).to_csv(path / f"{name}.csv", index=False, lineterminator="\n")
    meta = dict(history.meta)
    if history.cut_at is not None:
        meta["cut_at"] = history.cut_at.strftime("%Y-%m-%dT%H:%M:%S")
    if meta:
        (path / META_FILE).write_text(yaml.safe_dump(meta, sort_keys=True), encoding="utf-8")
    return path
