"""Validating a partitioned history partition by partition, with the rules and the report of one folder.

Each partition (its deals and their rows, plus every account) goes through
:func:`dealscore.data.validate.validate_history` on a worker: no rule is
restated here. Two things only the whole history can tell are added: ids unique
*across* partitions (each partition checks its own), and the data cut when
``history.yaml`` does not give one (the latest time of all partitions). The
partition reports merge into one :class:`~dealscore.data.validate.LoadReport`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from distributed import Client

from dealscore.data.history import DealHistory
from dealscore.data.validate import LoadReport, OutOfLifePolicy, validate_history
from dealscore.errors import DataValidationError
from dealscore.features import FeatureSpec
from dealscore.features.context import ContextPart
from dealscore.scale.context import observed_categories
from dealscore.scale.layout import PartitionedHistory
from dealscore.taxonomy import StageTaxonomy, default_taxonomy

_UNIQUE = (("deals", "deal_id"), ("activities", "activity_id"))
# accounts may repeat across partitions (shared, or each partition's copy): their hashes only count them
_HASHED = (*_UNIQUE, ("accounts", "account_id"))


@dataclass(frozen=True)
class FirstPass:
    """The whole history's figures from the first pass: its load report, context parts and vocabularies."""

    report: LoadReport
    context_parts: list[ContextPart]
    categories: list[dict[str, list[str]]]
    deals: pd.DataFrame | None = None  # every validated deal, when asked for (training splits them)

    @property
    def has_closed(self) -> bool:
        return self.report.won_deals + self.report.lost_deals > 0


@dataclass(frozen=True)
class ValidatedHistory:
    """A partitioned history that passed validation, and how to read any partition of it clean.

    Holds no data: each task re-reads and re-validates its partition (the same
    deterministic rules give the same clean rows), so no worker ever keeps more
    than the partitions it is working on.
    """

    source: PartitionedHistory
    taxonomy: StageTaxonomy
    on_out_of_life: OutOfLifePolicy
    cut_at: pd.Timestamp

    @property
    def keys(self) -> tuple[str, ...]:
        return self.source.keys

    @property
    def data_cut(self) -> pd.Timestamp:
        """The whole history's data cut, as :attr:`DealHistory.data_cut <dealscore.data.history.DealHistory.data_cut>`
        names it: rules stated on a history (such as
        :func:`~dealscore.data.history.refuse_after_cut`) then apply to the partitioned one unchanged."""
        return self.cut_at

    def load(self, key: str) -> DealHistory:
        """One partition, validated, with the whole history's data cut."""
        history, _ = validate_history(self.source.read(key, cut_at=self.cut_at), self.taxonomy,
                                      on_out_of_life=self.on_out_of_life)
        return history


@dataclass(frozen=True)
class PartitionCheck:
    """What validating one partition on a worker sends back (small: no rows)."""

    key: str
    report: LoadReport | None
    error: DataValidationError | None
    id_hashes: dict[str, np.ndarray]
    context: ContextPart | None
    categories: dict[str, list[str]]
    deals: pd.DataFrame | None = None


def check_partition(source: PartitionedHistory, key: str, taxonomy: StageTaxonomy,
                    on_out_of_life: OutOfLifePolicy, spec: FeatureSpec | None = None,
                    keep_deals: bool = False) -> PartitionCheck:
    """Validate one partition; with it, the hashes of its unique ids and its part of the feature context
    (and of ``spec``'s open vocabularies, when given).

    The context part rides along so that a command reads each partition once
    before the feature pass (see :mod:`dealscore.scale.context`).
    """
    try:
        history, report = validate_history(source.read(key), taxonomy, on_out_of_life=on_out_of_life)
    except DataValidationError as exc:
        return PartitionCheck(key, None, exc, {}, None, {})
    hashes = {}
    for table, col in _HASHED:
        values = history.table(table)[col]
        values = values[values.notna()]
        hashes[table] = pd.util.hash_array(values.to_numpy(dtype=object)) if len(values) else np.zeros(0, np.uint64)
    return PartitionCheck(key, report, None, hashes, ContextPart.of_history(history, taxonomy.names),
                          {} if spec is None else observed_categories(history, spec),
                          history.deals if keep_deals else None)


def _ids_with_hashes(source: PartitionedHistory, key: str, table: str, col: str, wanted: np.ndarray) -> list[str]:
    frame = source.read_frames(key)[table]
    assert frame is not None
    values = frame[col].dropna().astype(str).str.strip().to_numpy(dtype=object)
    hit = np.isin(pd.util.hash_array(values), wanted) if len(values) else np.zeros(0, bool)
    return sorted(set(values[hit].tolist()))


def validate_partitioned(
    client: Client, source: PartitionedHistory, taxonomy: StageTaxonomy | None = None, *,
    on_out_of_life: OutOfLifePolicy = "drop", spec: FeatureSpec | None = None, keep_deals: bool = False,
) -> tuple[ValidatedHistory, FirstPass]:
    """Validate every partition on the cluster: the clean history's handle and the first pass's figures.

    Every partition's problems are collected before anything is raised, so one
    run lists them all (each message says which partition it comes from).
    """
    tax = taxonomy or default_taxonomy()
    futures = client.map(check_partition, [source] * len(source), list(source.keys), taxonomy=tax,
                         on_out_of_life=on_out_of_life, spec=spec, keep_deals=keep_deals, pure=False)
    checks: list[PartitionCheck] = client.gather(futures)
    problems: list[DataValidationError] = []
    for c in checks:
        if c.error is not None:
            for p in c.error.problems or [c.error]:
                problems.append(_in_partition(p, c.key))
    if not problems:
        problems.extend(_cross_partition_duplicates(client, source, checks))
    if problems:
        if len(problems) == 1:
            raise problems[0]
        first = problems[0]
        raise DataValidationError(
            f"{len(problems)} problems in the partitioned history:\n" + "\n".join(f"  - {p}" for p in problems),
            table=first.table, column=first.column, ids=first.ids, problems=problems,
        )
    reports = [c.report for c in checks if c.report is not None]
    cut = source.cut_at
    if cut is None:  # a partition's cut is its latest time: the history's is the latest of them
        cut = max(r.cut_at for r in reports if r.cut_at is not None)
    for r in reports:
        r.cut_at = cut
    report = LoadReport.merge(reports, tax)
    accounts = [c.id_hashes["accounts"] for c in checks]
    report.rows["accounts"] = len(np.unique(np.concatenate(accounts))) if accounts else 0
    parts = [c.context for c in checks if c.context is not None]
    deals = pd.concat([c.deals for c in checks], ignore_index=True) if keep_deals else None
    return ValidatedHistory(source, tax, on_out_of_life, cut), FirstPass(report, parts, [c.categories for c in checks],
                                                                         deals)


def _in_partition(problem: DataValidationError, key: str) -> DataValidationError:
    """A partition's problem, its message saying which partition (the rest of the error as it was)."""
    return DataValidationError(f"partition {key}: {problem.message}", table=problem.table, column=problem.column,
                               ids=problem.ids, problems=problem.problems)


def _cross_partition_duplicates(client: Client, source: PartitionedHistory,
                                checks: list[PartitionCheck]) -> list[DataValidationError]:
    """Ids that repeat across partitions (each partition already refused its own repeats)."""
    out = []
    for table, col in _UNIQUE:
        hashes = [c.id_hashes.get(table, np.zeros(0, np.uint64)) for c in checks]
        owner = np.repeat(np.arange(len(checks)), [len(h) for h in hashes])
        allh = np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)
        uniq, counts = np.unique(allh, return_counts=True)
        dup = uniq[counts > 1]
        if not len(dup):
            continue
        where = sorted(set(owner[np.isin(allh, dup)].tolist()))
        keys = [checks[i].key for i in where]
        found = client.gather(client.map(_ids_with_hashes, [source] * len(keys), keys, table=table, col=col,
                                          wanted=dup, pure=False))
        ids = sorted({i for f in found for i in f})
        if not ids:  # hash collisions of distinct ids only
            continue
        out.append(DataValidationError(
            f"table {table}, column {col}: {len(ids)} id(s) repeat across partitions {keys[:5]} (ids: "
            f"{', '.join(ids[:5])})", table=table, column=col, ids=ids[:5],
            fix=f"give every {table} row its own {col}, and keep all rows of a deal in its deal's partition",
        ))
    return out
