"""A two-file opportunity export's mapping (accounts and opportunities, Salesforce-like columns), shared by the
importer tests of the library and of the CLI."""

from __future__ import annotations

from typing import Any


def opportunity_mapping(accounts_file: str, deals_file: str, **top: Any) -> dict[str, Any]:
    """The mapping of ``accounts_file`` (Id, Industry) and ``deals_file`` (Id, AccountId, OwnerId, CreatedDate,
    CloseDate, IsClosed, IsWon); ``top`` adds mapping-level keys (``name``, ``date_formats``, ...)."""
    return {
        "name": "opportunities", **top,
        "tables": {
            "accounts": {"file": accounts_file, "columns": {"account_id": "Id", "industry": "Industry"}},
            "deals": {"file": deals_file, "columns": {
                "deal_id": "Id", "account_id": "AccountId", "owner_id": "OwnerId", "created_at": "CreatedDate",
                "closed_at": {"column": "CloseDate", "only_if": "IsClosed"},
                "outcome": {"column": "IsWon", "only_if": "IsClosed", "values": {"true": "won", "false": "lost"}},
            }},
        },
    }
