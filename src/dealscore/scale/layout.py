"""A partitioned history: one Parquet dataset per contract table, partitioned by deal.

Layout (local or on any fsspec file system, e.g. ``s3://bucket/crm``)::

    ROOT/history.yaml                 cut_at and the history's metadata (as in a history folder)
    ROOT/accounts.parquet             every account (read whole by every partition), or
    ROOT/accounts/<key>.parquet       the accounts of partition <key>'s deals (an account may repeat)
    ROOT/deals/<key>.parquet          the deals of partition <key>
    ROOT/stage_history/<key>.parquet  their stage changes
    ROOT/activities/<key>.parquet     their touchpoints
    ROOT/stage_truth/<key>.parquet    their audited stages (optional)

A partition is the set of files sharing one relative path ``<key>`` (which may
hold sub-folders such as ``region=EU/part-0``). Every row of a deal lives in its
deal's partition, so a partition is a complete sub-history: features, labels and
scores of a deal never need another partition's rows. Only the cross-deal
aggregates do, and they are computed in a first pass (see
:mod:`dealscore.scale.context`). A table file missing for a partition means the
partition has no such rows.

Reading a partition types it with the same :func:`~dealscore.data.history.from_frames`
a history folder goes through; nothing here applies a business rule.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import fsspec
import pandas as pd
import yaml

from dealscore.data.history import META_FILE, DealHistory, from_frames, parse_cut_at
from dealscore.data.schema import TABLES
from dealscore.errors import DataValidationError

PARTITIONED_TABLES = ("deals", "stage_history", "activities", "stage_truth")
"""Tables split by deal; ``accounts`` is shared by every partition."""

LAYOUT = "partitioned-by-deal/1"


def _fs(url: str, storage_options: Mapping[str, Any] | None = None) -> tuple[Any, str]:
    fs, path = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    return fs, path.rstrip("/")


@dataclass(frozen=True)
class PartitionedHistory:
    """Where a partitioned history lives and which partitions it has (no data held).

    Small and picklable: it travels to every Dask task, which reads its own
    partition straight from the file system.
    """

    url: str
    keys: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)
    storage_options: dict[str, Any] = field(default_factory=dict)

    @property
    def cut_at(self) -> pd.Timestamp | None:
        return parse_cut_at(self.meta.get("cut_at"))

    def __len__(self) -> int:
        return len(self.keys)

    def read_frames(self, key: str) -> dict[str, pd.DataFrame | None]:
        """The raw tables of one partition (accounts whole), as read from Parquet."""
        fs, root = _fs(self.url, self.storage_options)
        frames: dict[str, pd.DataFrame | None] = {"accounts": _read(fs, _accounts_path(fs, root, key), "accounts")}
        for name in PARTITIONED_TABLES:
            path = posixpath.join(root, name, f"{key}.parquet")
            if fs.isfile(path):
                frames[name] = _read(fs, path, name)
            elif name == "stage_truth":
                frames[name] = None
            else:  # no rows of this table in the partition
                frames[name] = pd.DataFrame({c: pd.Series(dtype=object) for c in TABLES[name].required_columns})
        return frames

    def read(self, key: str, *, cut_at: pd.Timestamp | None = None) -> DealHistory:
        """One partition as a typed history (no business rules yet), with the whole history's data cut.

        The cut must be the whole history's: a partition's own latest timestamp
        would move every feature that looks at the data cut.
        """
        cut = cut_at if cut_at is not None else self.cut_at
        return from_frames(self.read_frames(key), cut_at=cut, meta=dict(self.meta, partition=key))


def _accounts_path(fs: Any, root: str, key: str) -> str:
    """The partition's own accounts file when accounts are partitioned too, else the shared one."""
    own = posixpath.join(root, "accounts", f"{key}.parquet")
    if fs.isfile(own):
        return own
    single = posixpath.join(root, "accounts.parquet")
    if fs.isfile(single):
        return single
    raise DataValidationError(
        f"table accounts: neither accounts/{key}.parquet nor accounts.parquet in {root}", table="accounts",
        fix="write every account to ROOT/accounts.parquet, or each partition's accounts to "
        "ROOT/accounts/<partition>.parquet (see docs/scale-out.md)",
    )


def _read(fs: Any, path: str, table: str) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path, filesystem=fs)
    except Exception as exc:  # pyarrow and the file systems raise many types for a bad file
        raise DataValidationError(
            f"table {table}: cannot read {path}: {exc}", table=table,
            fix="re-write the partition as Parquet (dealscore generate --partitions N writes the layout)",
        ) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def open_partitioned(url: str, storage_options: Mapping[str, Any] | None = None) -> PartitionedHistory:
    """Find the partitions of a partitioned history (the Parquet files under ``deals/``)."""
    fs, root = _fs(url, storage_options)
    deals = posixpath.join(root, "deals")
    if not fs.isdir(deals):
        raise DataValidationError(
            f"{url} is not a partitioned history: it has no deals/ folder", table="deals",
            fix="pass the root of a partitioned history (ROOT/deals/*.parquet, ROOT/accounts.parquet, ...), "
            "or leave out --scheduler to read a plain history folder",
        )
    files = sorted(p for p in fs.find(deals) if p.endswith(".parquet"))
    if not files:
        raise DataValidationError(f"table deals: no Parquet files under {deals}", table="deals",
                                  fix="write each partition's deals to ROOT/deals/<partition>.parquet")
    base = fs.info(deals)["name"].rstrip("/") + "/"
    keys = tuple(f[len(base):-len(".parquet")] for f in (fs.info(f)["name"] for f in files))
    meta: dict[str, Any] = {}
    meta_path = posixpath.join(root, META_FILE)
    if fs.isfile(meta_path):
        with fs.open(meta_path, "r", encoding="utf-8") as fh:
            try:
                loaded = yaml.safe_load(fh)
            except yaml.YAMLError as exc:
                raise DataValidationError(f"{meta_path} is not valid YAML: {exc}", table=META_FILE,
                                          fix="fix the file (it holds e.g. 'cut_at: 2024-03-31T00:00:00')") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise DataValidationError(f"{meta_path} must hold a mapping such as 'cut_at: 2024-03-31T00:00:00'",
                                      table=META_FILE, fix="fix the file or delete it")
        meta = dict(loaded or {})
    return PartitionedHistory(url=url, keys=keys, meta=meta, storage_options=dict(storage_options or {}))


def is_partitioned(url: str, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Whether ``url`` holds a partitioned history (a ``deals/`` dataset) rather than a plain folder."""
    fs, root = _fs(url, storage_options)
    return bool(fs.isdir(posixpath.join(root, "deals")))


def partition_key(i: int) -> str:
    """The key of the ``i``-th partition written by dealscore (zero-padded: keys sort as numbers)."""
    return f"part-{i:05d}"


def write_partition(url: str, key: str, history: DealHistory, *,
                    storage_options: Mapping[str, Any] | None = None) -> None:
    """Write one partition's tables, its accounts included, in the contract's column order."""
    fs, root = _fs(url, storage_options)
    tables = history.tables()
    for name in ("accounts", *PARTITIONED_TABLES):
        if name in tables:
            _write(fs, posixpath.join(root, name, f"{key}.parquet"), tables[name], name)


def write_meta(url: str, meta: Mapping[str, Any], *, storage_options: Mapping[str, Any] | None = None) -> None:
    """Write ``history.yaml`` (cut_at as ISO text, the layout version, the caller's metadata)."""
    fs, root = _fs(url, storage_options)
    out = {k: v for k, v in meta.items() if v is not None}
    if isinstance(out.get("cut_at"), pd.Timestamp):
        out["cut_at"] = out["cut_at"].strftime("%Y-%m-%dT%H:%M:%S")
    out["layout"] = LAYOUT
    fs.makedirs(root, exist_ok=True)
    with fs.open(posixpath.join(root, META_FILE), "w", encoding="utf-8") as fh:
        fh.write(yaml.safe_dump(out, sort_keys=True))


def _write(fs: Any, path: str, frame: pd.DataFrame, table: str) -> None:
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    columns = [c for c in TABLES[table].column_names if c in frame]
    with fs.open(path, "wb") as fh:
        frame[columns].to_parquet(fh, index=False)


def write_frame(url: str, key: str, frame: pd.DataFrame, *,
                storage_options: Mapping[str, Any] | None = None) -> str:
    """Write one partition of a result (features, scores) as ``URL/<key>.parquet``; returns its path."""
    fs, root = _fs(url, storage_options)
    path = posixpath.join(root, f"{key}.parquet")
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    with fs.open(path, "wb") as fh:
        frame.to_parquet(fh, index=False)
    return path


def read_whole(source: PartitionedHistory) -> dict[str, pd.DataFrame | None]:
    """Every partition's raw tables concatenated (accounts once each): the history as one folder would hold it.

    For histories that fit in memory: the single-machine peer of tests and benchmarks.
    """
    parts = [source.read_frames(k) for k in source.keys]
    out: dict[str, pd.DataFrame | None] = {}
    for name in ("accounts", *PARTITIONED_TABLES):
        frames = [p[name] for p in parts if p[name] is not None]
        if not frames:
            out[name] = None
            continue
        frame = pd.concat(frames, ignore_index=True)
        out[name] = frame.drop_duplicates("account_id", ignore_index=True) if name == "accounts" else frame
    return out


def read_result(url: str, storage_options: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """A partitioned result (features or scores) read back whole, partitions in key order (small results)."""
    fs, root = _fs(url, storage_options)
    files = sorted(p for p in fs.find(root) if p.endswith(".parquet"))
    frames = [pd.read_parquet(p, filesystem=fs) for p in files]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
