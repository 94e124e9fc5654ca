"""Each deal's creation time in ``deals``, so an outcome's close time can be checked against it.

``POST /v1/deals/{deal_id}/outcome`` took any ``closed_at``: a close before the
deal was created (a swapped date, a time zone lost on the way) went into the
monitoring and retraining data as it came. ``deals.created_at`` is the
``created_at`` of the payload behind the deal's latest score, written with the
deal's row in the score's transaction.

Adding a nullable column is a catalogue-only change on PostgreSQL and SQLite.
Rows written before this revision keep ``NULL`` until the deal is scored again:
no stored score holds the creation time (the payload is not kept), so there is
nothing to fill it from; for such a deal the close time is checked against the
clock only.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deals") as batch:
        batch.add_column(sa.Column("created_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deals") as batch:
        batch.drop_column("created_at")
