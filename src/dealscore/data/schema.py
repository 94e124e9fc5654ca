"""The data contract as data: tables, columns, kinds and whether each is required.

Keeping the contract declarative lets the loader coerce types, the validator
name exactly which column is wrong, and the docs list the contract, all from
one definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["str", "int", "float", "timestamp", "date"]


@dataclass(frozen=True)
class Column:
    """One column of a contract table."""

    name: str
    kind: Kind
    required: bool = True
    doc: str = ""


@dataclass(frozen=True)
class Table:
    """One contract table: its columns and its id column (unique), if any."""

    name: str
    columns: tuple[Column, ...]
    id_column: str | None = None
    required: bool = True

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


ACCOUNTS = Table(
    "accounts",
    (
        Column("account_id", "str", doc="unique account id"),
        Column("industry", "str", doc="industry / sector"),
        Column("employees", "int", False, "head count"),
        Column("annual_revenue", "float", False, "annual revenue"),
        Column("region", "str", False, "sales region or country"),
        Column("created_at", "timestamp", False, "when the account was created"),
        Column("account_name", "str", False, "the customer's name, as people know it (display only)"),
    ),
    id_column="account_id",
)

DEALS = Table(
    "deals",
    (
        Column("deal_id", "str", doc="unique deal id"),
        Column("account_id", "str", doc="the customer; must exist in accounts"),
        Column("owner_id", "str", doc="the sales rep who owns the deal"),
        Column("created_at", "timestamp", doc="when the deal was opened"),
        Column("amount", "float", False, "current amount (may have been edited since)"),
        Column("product", "str", False, "product or product line"),
        Column("source", "str", False, "lead source"),
        Column("expected_close_date", "date", False, "current expected close date"),
        Column("closed_at", "timestamp", False, "close time; empty while open"),
        Column("outcome", "str", False, "won | lost; empty while open"),
        Column("team", "str", False, "the owner's team (used for access control and filters)"),
        Column("deal_name", "str", False, "the deal's name in the CRM (display only)"),
        Column("owner_name", "str", False, "the owner's name (display only)"),
        Column("currency", "str", False, "ISO 4217 code of amount, e.g. EUR (display only)"),
    ),
    id_column="deal_id",
)

STAGE_HISTORY = Table(
    "stage_history",
    (
        Column("deal_id", "str"),
        Column("stage", "str", doc="a configured stage name"),
        Column("changed_at", "timestamp"),
        Column("recorded_at", "timestamp", False, "when the change was entered, if later"),
        Column("amount", "float", False, "amount as recorded at this change"),
        Column("expected_close_date", "date", False, "close date as recorded at this change"),
    ),
)

ACTIVITIES = Table(
    "activities",
    (
        Column("activity_id", "str", False),
        Column("deal_id", "str"),
        Column("occurred_at", "timestamp"),
        Column("type", "str", doc="email, call, meeting, demo, proposal, contract, note, ..."),
        Column("direction", "str", False, "inbound | outbound"),
        Column("contact_id", "str", False),
        Column("contact_role", "str", False, "decision_maker | champion | influencer | user | other"),
        Column("recorded_at", "timestamp", False, "when the touchpoint was logged, if later"),
        Column("contact_name", "str", False, "the contact's name (display only)"),
    ),
    id_column="activity_id",
)

STAGE_TRUTH = Table(
    "stage_truth",
    (
        Column("deal_id", "str"),
        Column("as_of", "timestamp"),
        Column("stage", "str"),
    ),
    required=False,
)

TABLES: dict[str, Table] = {t.name: t for t in (ACCOUNTS, DEALS, STAGE_HISTORY, ACTIVITIES, STAGE_TRUTH)}
OUTCOMES = ("won", "lost")
DIRECTIONS = ("inbound", "outbound")
