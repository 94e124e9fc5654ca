"""Business rules of the data contract (DESIGN §3) and the load report.

Each rule either fails with a message naming table, column, up to five ids and
the fix, or (for events outside a deal's life, when configured to) drops the rows
and counts them in the report. Nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from dealscore.data.history import DealHistory
from dealscore.data.schema import DIRECTIONS, OUTCOMES, TABLES
from dealscore.errors import DataValidationError
from dealscore.taxonomy import StageTaxonomy, default_taxonomy

OutOfLifePolicy = Literal["drop", "fail"]


@dataclass
class LoadReport:
    """What was loaded, what was dropped and why: printed by ``dealscore validate``."""

    rows: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    first_event: pd.Timestamp | None = None
    last_event: pd.Timestamp | None = None
    cut_at: pd.Timestamp | None = None
    open_deals: int = 0
    won_deals: int = 0
    lost_deals: int = 0
    stages_seen: dict[str, int] = field(default_factory=dict)
    activity_types_seen: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (timestamps as ISO strings)."""
        def iso(t: pd.Timestamp | None) -> str | None:
            return None if t is None or pd.isna(t) else t.isoformat()

        return {
            "rows": self.rows, "dropped": self.dropped, "warnings": self.warnings,
            "first_event": iso(self.first_event), "last_event": iso(self.last_event),
            "cut_at": iso(self.cut_at), "open_deals": self.open_deals,
            "won_deals": self.won_deals, "lost_deals": self.lost_deals,
            "stages_seen": self.stages_seen, "activity_types_seen": self.activity_types_seen,
        }


class _Problems:
    """Collects every rule violation so the user sees them all in one run."""

    def __init__(self) -> None:
        self.items: list[DataValidationError] = []

    def add(self, frame: pd.DataFrame, table: str, column: str, mask: pd.Series, what: str, fix: str) -> None:
        if not bool(mask.any()):
            return
        ids = _ids(frame, table, mask)
        self.items.append(
            DataValidationError(
                f"table {table}, column {column}: {int(mask.sum())} row(s) {what} (ids: {', '.join(ids)})",
                table=table, column=column, ids=ids, fix=fix,
            )
        )

    def raise_if_any(self) -> None:
        if not self.items:
            return
        if len(self.items) == 1:
            raise self.items[0]
        first = self.items[0]
        text = f"{len(self.items)} problems in the deal history:\n" + "\n".join(f"  - {p}" for p in self.items)
        raise DataValidationError(
            text, table=first.table, column=first.column, ids=first.ids, problems=self.items
        )


def _ids(frame: pd.DataFrame, table: str, mask: pd.Series) -> list[str]:
    """Up to five distinct ids of offending rows (row numbers where a table has no id).

    Row numbers count file lines (header = line 1) as long as the table was not
    re-sorted, which holds for every rule: the sort happens after all checks.
    """
    id_col = TABLES[table].id_column
    out: list[str] = []
    # a bounded head keeps this cheap even when a million rows share one bad id
    for i, row in frame[mask.to_numpy()].head(500).iterrows():
        if id_col and id_col in frame and not pd.isna(row[id_col]):
            label = str(row[id_col])
        elif "deal_id" in frame and not pd.isna(row["deal_id"]):
            label = f"row {int(i) + 2} (deal {row['deal_id']})"  # type: ignore[call-overload]
        else:
            label = f"row {int(i) + 2}"  # type: ignore[call-overload]
        if label not in out:
            out.append(label)
        if len(out) == 5:
            break
    return out


def _not_empty(h: DealHistory, p: _Problems) -> None:
    """Deals and accounts must hold rows: a header-only export means the export failed."""
    for name in ("accounts", "deals"):
        frame = h.table(name)
        if frame is not None and len(frame) == 0:
            col = TABLES[name].id_column or ""
            p.items.append(DataValidationError(
                f"table {name}, column {col}: the table has no rows (only a header)",
                table=name, column=col,
                fix=f"re-export {name} with its rows; a history needs at least one deal and its account",
            ))


def _required_values(h: DealHistory, p: _Problems) -> None:
    for name, frame in h.tables().items():
        for col in TABLES[name].required_columns:
            p.add(frame, name, col, frame[col].isna(), "have no value",
                  f"fill in {col} for every row of {name} or remove those rows")


def _unique_ids(h: DealHistory, p: _Problems) -> None:
    for name in ("accounts", "deals", "activities"):
        frame = h.table(name)
        col = TABLES[name].id_column
        if frame is None or col is None or col not in frame:
            continue
        values = frame[col]
        dup = values.notna() & values.duplicated(keep=False)
        p.add(frame, name, col, dup, "repeat an id that must be unique",
              f"give every {name} row its own {col}, or remove the duplicated rows")


def _deal_positions(h: DealHistory) -> tuple[pd.Index, dict[str, np.ndarray]]:
    """Each event row's position in the (de-duplicated) deals table, -1 when the deal is unknown.

    Hashing millions of deal ids is the costliest step of validation, so it is done
    once per table and shared by the foreign-key and the out-of-life rules.
    """
    ids = pd.Index(h.deals["deal_id"].dropna()).drop_duplicates()
    pos: dict[str, np.ndarray] = {}
    for name in ("stage_history", "activities", "stage_truth"):
        frame = h.table(name)
        if frame is not None:
            pos[name] = ids.get_indexer(frame["deal_id"])
    return ids, pos


def _foreign_keys(h: DealHistory, pos: dict[str, np.ndarray], p: _Problems) -> None:
    accounts = h.accounts["account_id"].dropna().unique()
    unknown = h.deals["account_id"].notna() & ~h.deals["account_id"].isin(accounts)
    p.add(h.deals, "deals", "account_id", unknown,
          f"name an account that is not in accounts {_distinct(h.deals['account_id'], unknown)}",
          "add those accounts to accounts or correct account_id")
    for name, where in pos.items():
        frame = h.table(name)
        assert frame is not None
        unknown = pd.Series(where < 0, index=frame.index) & frame["deal_id"].notna()
        p.add(frame, name, "deal_id", unknown,
              f"name a deal that is not in deals {_distinct(frame['deal_id'], unknown)}",
              "add those deals to deals or remove the rows")


def _distinct(values: pd.Series, mask: pd.Series) -> list[str]:
    """Up to five distinct offending values, for messages where the row id is not the culprit."""
    if not bool(mask.any()):
        return []
    return [str(v) for v in pd.unique(values[mask.to_numpy()].head(500))[:5]]


def _per_value(s: pd.Series, fn: Callable[[str], object]) -> pd.Series:
    """Apply ``fn`` to each distinct value once (None stays None): fast on millions of rows
    that hold a handful of spellings, such as activity types."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    mapped = np.array([fn(str(u)) for u in uniques] + [None], dtype=object)
    return pd.Series(mapped[codes], index=s.index, dtype=object)  # code -1 picks the trailing None


def _lower(s: pd.Series) -> pd.Series:
    """Stripped lower-case text with None for missing (object dtype, as the contract wants)."""
    return _per_value(s, lambda v: v.strip().lower() or None)


def _canonical_names(h: DealHistory, tax: StageTaxonomy, p: _Problems) -> DealHistory:
    """Map stage names, outcomes, activity types, directions and roles onto canonical spellings.

    The taxonomy's aliases are how a user maps their CRM's names onto ours, so the
    check is "is this spelling configured", and the result holds canonical names only.
    """
    lookup = tax.stage_lookup()
    closing = set(tax.closed_won_aliases) | set(tax.closed_lost_aliases)
    changes: dict[str, pd.DataFrame] = {}
    for name in ("stage_history", "stage_truth"):
        frame = h.table(name)
        if frame is None:
            continue
        key = _lower(frame["stage"])
        mapped = _per_value(key, lambda v: lookup.get(v))
        is_outcome = key.isin(closing)
        unknown = frame["stage"].notna() & mapped.isna() & ~is_outcome
        seen = sorted(frame.loc[unknown, "stage"].astype(str).unique())[:5]
        p.add(frame, name, "stage", unknown, f"use stage names not in the taxonomy {seen}",
              f"use one of {tax.names} or map your CRM's names onto them with aliases in the taxonomy YAML "
              "(dealscore validate --taxonomy my_taxonomy.yaml)")
        seen = sorted(frame.loc[is_outcome, "stage"].astype(str).unique())[:5]
        p.add(frame, name, "stage", is_outcome, f"use an outcome {seen} as a stage",
              "a deal's outcome belongs in deals.outcome and deals.closed_at; remove the closing rows from "
              f"{name} (the csv importer does this for you)")
        frame = frame.copy()
        frame["stage"] = mapped.where(mapped.notna(), frame["stage"])
        changes[name] = frame

    acts = h.activities.copy()
    mapped_types = _per_value(acts["type"], lambda v: tax.canonical_activity(v))
    unknown = acts["type"].notna() & mapped_types.isna()
    seen = sorted(acts.loc[unknown, "type"].astype(str).unique())[:5]
    p.add(acts, "activities", "type", unknown, f"use activity types not configured {seen}",
          f"use one of {list(tax.activity_types)} or add the type (or an alias) to the taxonomy YAML")
    acts["type"] = mapped_types.where(~unknown, acts["type"])
    direction = _lower(acts["direction"])
    p.add(acts, "activities", "direction", direction.notna() & ~direction.isin(DIRECTIONS),
          f"have a direction other than {list(DIRECTIONS)}", "use inbound or outbound, or leave it empty")
    acts["direction"] = direction
    role = _lower(acts["contact_role"])
    p.add(acts, "activities", "contact_role", role.notna() & ~role.isin(tax.contact_roles),
          f"have a contact_role outside {list(tax.contact_roles)}", "use one of the configured roles or leave it empty")
    acts["contact_role"] = role
    changes["activities"] = acts

    deals = h.deals.copy()
    outcome = _lower(deals["outcome"])
    outcome_map = {a: "won" for a in tax.closed_won_aliases} | {a: "lost" for a in tax.closed_lost_aliases}
    outcome_map |= {o: o for o in OUTCOMES}
    canonical = _per_value(outcome, lambda v: outcome_map.get(v))
    bad = outcome.notna() & canonical.isna()
    p.add(deals, "deals", "outcome", bad, f"have an outcome other than {list(OUTCOMES)}",
          "use 'won' or 'lost', or leave it empty while the deal is open")
    deals["outcome"] = canonical.where(canonical.notna(), outcome).astype(object)
    deals["outcome"] = deals["outcome"].where(deals["outcome"].notna(), None)
    changes["deals"] = deals
    return h.replace(**changes)


def _outcomes(h: DealHistory, p: _Problems) -> None:
    """Outcome set iff closed, close after creation, amounts not negative."""
    d = h.deals
    outcome = d["outcome"]
    p.add(d, "deals", "outcome", d["closed_at"].notna() & outcome.isna(),
          "are closed (closed_at set) but have no outcome", "set outcome to won or lost for closed deals")
    p.add(d, "deals", "closed_at", d["closed_at"].isna() & outcome.notna(),
          "have an outcome but no closed_at", "set closed_at for closed deals, or clear outcome while open")
    p.add(d, "deals", "closed_at", d["closed_at"].notna() & (d["closed_at"] < d["created_at"]),
          "closed before they were created", "check created_at and closed_at of those deals")
    p.add(d, "deals", "amount", d["amount"].notna() & (d["amount"] < 0),
          "have a negative amount", "amounts must be zero or more")
    sh = h.stage_history
    p.add(sh, "stage_history", "amount", sh["amount"].notna() & (sh["amount"] < 0),
          "have a negative amount", "amounts must be zero or more")


def _before_cut(h: DealHistory, p: _Problems) -> None:
    """Nothing can have happened after the export was taken: such rows mean cut_at is wrong."""
    if h.cut_at is None:
        return
    cut = h.cut_at
    fix = "set cut_at in history.yaml to when the export was taken, or correct the dates"
    for name, col in (("deals", "created_at"), ("deals", "closed_at"), ("stage_history", "changed_at"),
                      ("activities", "occurred_at")):
        frame = h.table(name)
        assert frame is not None
        p.add(frame, name, col, frame[col].notna() & (frame[col] > cut), f"are dated after the data cut {cut}", fix)


def _out_of_life(
    h: DealHistory, ids: pd.Index, pos: dict[str, np.ndarray], policy: OutOfLifePolicy, p: _Problems,
    report: LoadReport,
) -> DealHistory:
    """Events before a deal was created or after it closed: drop with a count, or fail.

    An event exactly at creation or at close is inside the deal's life.
    """
    life = h.deals.drop_duplicates("deal_id").set_index("deal_id").reindex(ids)
    # a trailing NaT row lets position -1 (unknown deal, already an error) look up "no date"
    created_at = np.append(life["created_at"].to_numpy("datetime64[ns]"), np.datetime64("NaT"))
    closed_at = np.append(life["closed_at"].to_numpy("datetime64[ns]"), np.datetime64("NaT"))
    changes: dict[str, pd.DataFrame] = {}
    for name, col in (("stage_history", "changed_at"), ("activities", "occurred_at")):
        frame = h.table(name)
        assert frame is not None
        when = frame[col].to_numpy("datetime64[ns]")
        created, closed = created_at[pos[name]], closed_at[pos[name]]
        # comparisons with NaT are False, so unknown dates never count as out of life
        before = pd.Series(when < created, index=frame.index)
        after = pd.Series(when > closed, index=frame.index)
        for mask, what in ((before, "before the deal was created"), (after, "after the deal closed")):
            if not mask.any():
                continue
            if policy == "fail":
                p.add(frame, name, col, mask, f"are dated {what}",
                      "correct the dates, or validate without --fail-out-of-life (on_out_of_life='drop') "
                      "to drop them with a count")
            else:
                key = f"{name}: {col} {what}"
                report.dropped[key] = int(mask.sum())
                report.warnings.append(
                    f"dropped {int(mask.sum())} {name} row(s) dated {what} "
                    f"(ids: {', '.join(_ids(frame, name, mask))})"
                )
        if policy == "drop":
            changes[name] = frame[~(before | after)].reset_index(drop=True)
    return h.replace(**changes) if changes else h


def validate_history(
    history: DealHistory,
    taxonomy: StageTaxonomy | None = None,
    *,
    on_out_of_life: OutOfLifePolicy = "drop",
) -> tuple[DealHistory, LoadReport]:
    """Enforce the contract; return the clean history (canonical names) and its load report.

    Raises :class:`DataValidationError` listing every violation found. With
    ``on_out_of_life="drop"`` events outside a deal's life are dropped and counted
    in ``report.dropped``; with ``"fail"`` they are violations like any other.
    """
    if on_out_of_life not in ("drop", "fail"):
        raise ValueError(f"on_out_of_life must be 'drop' or 'fail', not {on_out_of_life!r}")
    tax = taxonomy or default_taxonomy()
    report = LoadReport(rows={k: len(v) for k, v in history.tables().items()})
    p = _Problems()
    _not_empty(history, p)
    _required_values(history, p)
    _unique_ids(history, p)
    ids, pos = _deal_positions(history)
    _foreign_keys(history, pos, p)
    h = _canonical_names(history, tax, p)
    _outcomes(h, p)
    _before_cut(h, p)
    p.raise_if_any()
    h = _out_of_life(h, ids, pos, on_out_of_life, p, report)
    p.raise_if_any()
    sh = h.stage_history.sort_values(["deal_id", "changed_at"], kind="stable").reset_index(drop=True)
    acts = h.activities.sort_values(["deal_id", "occurred_at"], kind="stable").reset_index(drop=True)
    h = h.replace(stage_history=sh, activities=acts)

    d = h.deals
    times = [d["created_at"].min(), d["closed_at"].max(), sh["changed_at"].max() if len(sh) else pd.NaT,
             acts["occurred_at"].max() if len(acts) else pd.NaT]
    valid = [t for t in times if not pd.isna(t)]
    report.first_event = d["created_at"].min() if len(d) else None
    report.last_event = max(valid) if valid else None
    report.cut_at = h.data_cut
    report.open_deals = int(d["outcome"].isna().sum())
    report.won_deals = int((d["outcome"] == "won").sum())
    report.lost_deals = int((d["outcome"] == "lost").sum())
    order = {n: i for i, n in enumerate(tax.names)}
    counts = sh["stage"].value_counts()
    report.stages_seen = {k: int(counts[k]) for k in sorted(counts.index, key=lambda s: order.get(s, 99))}
    report.activity_types_seen = {str(k): int(v) for k, v in acts["type"].value_counts().items()}
    if report.rows.get("activities", 0) == 0:
        report.warnings.append(
            "no activities: touchpoint features will be empty and stages cannot be inferred from evidence"
        )
    if report.rows.get("stage_history", 0) == 0:
        report.warnings.append("no stage history: declared-stage features will be empty")
    return h, report


def load_and_validate(
    folder: str | Path, taxonomy: StageTaxonomy | None = None, *, on_out_of_life: OutOfLifePolicy = "drop"
) -> tuple[DealHistory, LoadReport]:
    """Load a history folder and enforce the contract in one call (what every command does first)."""
    from dealscore.data.history import load_history

    return validate_history(load_history(folder), taxonomy, on_out_of_life=on_out_of_life)
