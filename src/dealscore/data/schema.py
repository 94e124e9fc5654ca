"""The data contract as data: tables, columns, kinds and whether each is required.

Keeping the contract declarative lets the loader coerce types, the validator
name exactly which column is wrong, and the docs list the contract, all from
one definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Kind = Literal["str", "int", "float", "timestamp", "date"]

#: Longest text a contract cell may hold, by what the column holds. The loader refuses longer cells
#: and the API's request schema caps the same fields the same way: one limit whatever the path.
MAX_ID_CHARS = 200
MAX_NAME_CHARS = 100
MAX_DISPLAY_CHARS = 300
MAX_TEXT_CHARS = 1000


@dataclass(frozen=True)
class Column:
    """One column of a contract table."""

    name: str
    kind: Kind
    required: bool = True
    doc: str = ""
    #: text columns: the longest value allowed (ids, names, free text and display names differ)
    max_chars: int = MAX_NAME_CHARS


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
        Column("account_id", "str", doc="unique account id", max_chars=MAX_ID_CHARS),
        Column("industry", "str", doc="industry / sector", max_chars=MAX_TEXT_CHARS),
        Column("employees", "int", False, "head count"),
        Column("annual_revenue", "float", False, "annual revenue"),
        Column("region", "str", False, "sales region or country", max_chars=MAX_TEXT_CHARS),
        Column("created_at", "timestamp", False, "when the account was created"),
        Column("account_name", "str", False, "the customer's name, as people know it (display only)",
               max_chars=MAX_DISPLAY_CHARS),
    ),
    id_column="account_id",
)

DEALS = Table(
    "deals",
    (
        Column("deal_id", "str", doc="unique deal id", max_chars=MAX_ID_CHARS),
        Column("account_id", "str", doc="the customer; must exist in accounts", max_chars=MAX_ID_CHARS),
        Column("owner_id", "str", doc="the sales rep who owns the deal", max_chars=MAX_ID_CHARS),
        Column("created_at", "timestamp", doc="when the deal was opened"),
        Column("amount", "float", False, "current amount (may have been edited since)"),
        Column("product", "str", False, "product or product line", max_chars=MAX_TEXT_CHARS),
        Column("source", "str", False, "lead source", max_chars=MAX_TEXT_CHARS),
        Column("expected_close_date", "date", False, "current expected close date"),
        Column("closed_at", "timestamp", False, "close time; empty while open"),
        Column("outcome", "str", False, "won | lost; empty while open"),
        Column("team", "str", False, "the owner's team (used for access control and filters)",
               max_chars=MAX_ID_CHARS),
        Column("deal_name", "str", False, "the deal's name in the CRM (display only)", max_chars=MAX_DISPLAY_CHARS),
        Column("owner_name", "str", False, "the owner's name (display only)", max_chars=MAX_DISPLAY_CHARS),
        Column("currency", "str", False, "ISO 4217 code of amount, e.g. EUR (display only)"),
    ),
    id_column="deal_id",
)

STAGE_HISTORY = Table(
    "stage_history",
    (
        Column("deal_id", "str", max_chars=MAX_ID_CHARS),
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
        Column("activity_id", "str", False, max_chars=MAX_ID_CHARS),
        Column("deal_id", "str", max_chars=MAX_ID_CHARS),
        Column("occurred_at", "timestamp"),
        Column("type", "str", doc="email, call, meeting, demo, proposal, contract, note, ..."),
        Column("direction", "str", False, "inbound | outbound"),
        Column("contact_id", "str", False, max_chars=MAX_ID_CHARS),
        Column("contact_role", "str", False, "decision_maker | champion | influencer | user | other"),
        Column("recorded_at", "timestamp", False, "when the touchpoint was logged, if later"),
        Column("contact_name", "str", False, "the contact's name (display only)", max_chars=MAX_DISPLAY_CHARS),
    ),
    id_column="activity_id",
)

STAGE_TRUTH = Table(
    "stage_truth",
    (
        Column("deal_id", "str", max_chars=MAX_ID_CHARS),
        Column("as_of", "timestamp"),
        Column("stage", "str"),
    ),
    required=False,
)

TABLES: dict[str, Table] = {t.name: t for t in (ACCOUNTS, DEALS, STAGE_HISTORY, ACTIVITIES, STAGE_TRUTH)}
#: How a deal closes. The API's schema declares exactly these (aliases such as "Closed Won" are a
#: CRM export's spelling, mapped by the taxonomy when a history is loaded, never the API's).
Outcome = Literal["won", "lost"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
DIRECTIONS = ("inbound", "outbound")
