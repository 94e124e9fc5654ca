"""Indexes for the forecast's time and bookings: the newest open score, the newest close, the wins by close.

The forecast is made at the store's newest fact for every key (``ScoreStore.newest_fact``: the latest open
score's as-of time or the latest close) and books the wins recorded with a close in the period so far
(``ScoreStore.won_between``). Both ran before the forecast cache's lookup on every request, and without
these indexes each scanned the whole ``deals`` table, which grows with every deal ever closed: 34 and
17 ms on SQLite at 200,000 closed deals, against about 1 ms for the cached request's other read.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

INDEXES = {"ix_deals_open_as_of": ["is_open", "as_of"], "ix_deals_open_closed_at": ["is_open", "closed_at"],
           "ix_deals_outcome_closed_at": ["outcome", "closed_at"]}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "deals", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="deals")
