"""Business rules of the data contract (DESIGN §3) and the load report.

Each rule either fails with a message naming table, column, up to five ids and
the fix, or (for events outside a deal's life, when configured to) drops the rows
and counts them in the report. Nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

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
                f"table {table}, column {column}: {int(mask.sum())} row(s) {what}: {', '.join(ids)}",
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
    id_col = TABLES[table].id_column
    sub = frame[mask.to_numpy()].head(5)
    if id_col and id_col in sub and sub[id_col].notna().all():
        return [str(v) for v in sub[id_col]]
    if "deal_id" in sub:
        return [f"row {i + 2} (deal {d})" for i, d in zip(sub.index, sub["deal_id"], strict=True)]
    return [f"row {i + 2}" for i in sub.index]


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


def _foreign_keys(h: DealHistory, p: _Problems) -> None:
    accounts = set(h.accounts["account_id"].dropna())
    deals = set(h.deals["deal_id"].dropna())
    p.add(h.deals, "deals", "account_id", h.deals["account_id"].notna() & ~h.deals["account_id"].isin(accounts),
          "name an account that is not in accounts", "add those accounts to accounts or correct account_id")
    for name in ("stage_history", "activities", "stage_truth"):
        frame = h.table(name)
        if frame is None:
            continue
        p.add(frame, name, "deal_id", frame["deal_id"].notna() & ~frame["deal_id"].isin(deals),
              "name a deal that is not in deals", "add those deals to deals or remove the rows")


def _outcomes(h: DealHistory, p: _Problems) -> None:
    d = h.deals
    outcome = d["outcome"].str.lower()
    p.add(d, "deals", "outcome", outcome.notna() & ~outcome.isin(OUTCOMES),
          f"have an outcome other than {list(OUTCOMES)}", "use 'won' or 'lost', or leave it empty while the deal is open")
    p.add(d, "deals", "outcome", d["closed_at"].notna() & outcome.isna(),
          "are closed (closed_at set) but have no outcome", "set outcome to won or lost for closed deals")
    p.add(d, "deals", "closed_at", d["closed_at"].isna() & outcome.notna(),
          "have an outcome but no closed_at", "set closed_at for closed deals, or clear outcome while open")
    p.add(d, "deals", "closed_at", d["closed_at"].notna() & (d["closed_at"] < d["created_at"]),
          "closed before they were created", "check created_at and closed_at of those deals")
    p.add(d, "deals", "amount", d["amount"].notna() & (d["amount"] < 0),
          "have a negative amount", "amounts must be zero or more")
    if h.cut_at is not None:
        p.add(d, "deals", "created_at", d["created_at"] > h.cut_at,
              f"were created after the data cut {h.cut_at}", "fix cut_at in history.yaml or the dates")


def _canonical_stages(h: DealHistory, tax: StageTaxonomy, p: _Problems) -> DealHistory:
    lookup = tax.stage_lookup()
    changes: dict[str, pd.DataFrame] = {}
    for name in ("stage_history", "stage_truth"):
        frame = h.table(name)
        if frame is None:
            continue
        mapped = frame["stage"].str.strip().str.lower().map(lookup)
        unknown = frame["stage"].notna() & mapped.isna()
        seen = sorted(frame.loc[unknown, "stage"].astype(str).unique())[:5]
        p.add(frame, name, "stage", unknown, f"use stage names not in the taxonomy ({seen})",
              f"use one of {tax.names} or map your CRM's names onto them with aliases in the taxonomy YAML")
        frame = frame.copy()
        frame["stage"] = mapped.where(~unknown, frame["stage"])
        changes[name] = frame
    acts = h.activities.copy()
    types = acts["type"].str.strip().str.lower()
    mapped_types = types.where(types.isin(tax.activity_types), types.map(tax.activity_aliases))
    unknown = acts["type"].notna() & mapped_types.isna()
    seen = sorted(acts.loc[unknown, "type"].astype(str).unique())[:5]
    p.add(acts, "activities", "type", unknown, f"use activity types not configured ({seen})",
          f"use one of {list(tax.activity_types)} or add the type (or an alias) to the taxonomy YAML")
    acts["type"] = mapped_types.where(~unknown, acts["type"])
    direction = acts["direction"].str.lower()
    p.add(acts, "activities", "direction", direction.notna() & ~direction.isin(DIRECTIONS),
          f"have a direction other than {list(DIRECTIONS)}", "use inbound or outbound, or leave it empty")
    acts["direction"] = direction.where(direction.notna(), None)
    role = acts["contact_role"].str.lower()
    p.add(acts, "activities", "contact_role", role.notna() & ~role.isin(tax.contact_roles),
          f"have a contact_role outside {list(tax.contact_roles)}", "use one of the configured roles or leave it empty")
    acts["contact_role"] = role.where(role.notna(), None)
    changes["activities"] = acts
    deals = h.deals.copy()
    deals["outcome"] = deals["outcome"].str.lower().where(deals["outcome"].notna(), None)
    changes["deals"] = deals
    return h.replace(**changes)


def _out_of_life(
    h: DealHistory, policy: OutOfLifePolicy, p: _Problems, report: LoadReport
) -> DealHistory:
    """Events before a deal was created or after it closed: drop with a count, or fail."""
    life = h.deals.set_index("deal_id")[["created_at", "closed_at"]]
    life = life[~life.index.duplicated()]
    changes: dict[str, pd.DataFrame] = {}
    for name, col in (("stage_history", "changed_at"), ("activities", "occurred_at")):
        frame = h.table(name)
        assert frame is not None
        created = frame["deal_id"].map(life["created_at"])
        closed = frame["deal_id"].map(life["closed_at"])
        before = frame[col] < created
        after = closed.notna() & (frame[col] > closed)
        for mask, what in ((before, "before the deal was created"), (after, "after the deal closed")):
            if not mask.any():
                continue
            if policy == "fail":
                p.add(frame, name, col, mask, f"are dated {what}",
                      "correct the dates, or load with on_out_of_life='drop' to drop them with a count")
            else:
                key = f"{name}: {col} {what}"
                report.dropped[key] = int(mask.sum())
                report.warnings.append(
                    f"dropped {int(mask.sum())} {name} row(s) dated {what} "
                    f"(e.g. {', '.join(_ids(frame, name, mask))})"
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

    Raises :class:`DataValidationError` listing every violation found.
    """
    tax = taxonomy or default_taxonomy()
    report = LoadReport(rows={k: len(v) for k, v in history.tables().items()})
    p = _Problems()
    _required_values(history, p)
    _unique_ids(history, p)
    _foreign_keys(history, p)
    _outcomes(history, p)
    h = _canonical_stages(history, tax, p)
    p.raise_if_any()
    h = _out_of_life(h, on_out_of_life, p, report)
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
        report.warnings.append("no activities: touchpoint features will be empty and stages cannot be inferred from evidence")
    if report.rows.get("stage_history", 0) == 0:
        report.warnings.append("no stage history: declared-stage features will be empty")
    return h, report


def load_and_validate(
    folder: str, taxonomy: StageTaxonomy | None = None, *, on_out_of_life: OutOfLifePolicy = "drop"
) -> tuple[DealHistory, LoadReport]:
    """Load a history folder and enforce the contract in one call (what every command does first)."""
    from dealscore.data.history import load_history

    return validate_history(load_history(folder), taxonomy, on_out_of_life=on_out_of_life)
