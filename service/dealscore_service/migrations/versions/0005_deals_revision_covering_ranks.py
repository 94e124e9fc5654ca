"""A revision number of the ``deals`` table, and rank indexes that also carry the amounts the list sums.

The at-risk list's totals and risk-level cut-offs are computed over every
matching open deal: at 200,000 deals that was most of each request's time
(PostgreSQL: a 47 ms scan for the totals and up to 38 ms per cut-off, both
reading every deal's heap row; SQLite about 300 ms). Two changes:

- ``deals_revision``: one row whose number goes up in the same transaction as
  every change to ``deals`` (a score written, an outcome recorded). The store
  keeps the totals and cut-offs it computed under the revision it read first;
  while that number stays the same, no deal changed and they are reused
  (one primary-key read instead of a scan). It starts at the creation time in
  microseconds, so a table dropped and created again (a downgrade and an upgrade
  under a running service) never repeats a number a running process has seen.
- the four rank indexes gain ``amount``, ``value_at_risk``, ``p_win`` and
  ``as_of`` as trailing columns, so the totals, the cut-offs, a ``min_amount``
  filter and the API's other sorts (amount, win probability, as-of time) read
  index entries only, not each open deal's row (trailing key columns rather
  than PostgreSQL's ``INCLUDE``, which SQLite lacks; the order they serve is
  unchanged). The unfiltered one also carries the page's other sort columns
  (account, owner, declared and inferred stage): sorting every open deal by
  one of them read each row (SQLite at 200,000 deals: 0.4 to 1.2 s).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_RANK = ["rank_group", "rank_key", "deal_id"]
_CARRIED = ["amount", "value_at_risk", "p_win", "as_of"]
_PAGE_SORTS = ["account_id", "owner_id", "declared_stage", "inferred_stage"]
#: index name → its columns before ``is_open`` and the rank, and after them
_INDEXES = {"ix_deals_rank": ([], [*_CARRIED, *_PAGE_SORTS]), "ix_deals_team_rank": (["team"], _CARRIED),
            "ix_deals_owner_rank": (["owner_id"], _CARRIED), "ix_deals_stage_rank": (["declared_stage"], _CARRIED)}


def upgrade() -> None:
    revisions = op.create_table(
        "deals_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deals_revision"),
    )
    op.bulk_insert(revisions, [{"id": 1, "revision": time.time_ns() // 1000}])
    for name, (lead, carried) in _INDEXES.items():
        op.drop_index(name, table_name="deals")
        op.create_index(name, "deals", [*lead, "is_open", *_RANK, *carried])


def downgrade() -> None:
    for name, (lead, _) in _INDEXES.items():
        op.drop_index(name, table_name="deals")
        op.create_index(name, "deals", [*lead, "is_open", *_RANK])
    op.drop_table("deals_revision")
