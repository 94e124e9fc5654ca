"""Keep each score's touchpoints and CRM stage changes (the deal page's timeline).

Two nullable JSON columns on ``scores``. Adding a nullable column without a
default is a catalogue-only change on PostgreSQL and SQLite alike, so the
upgrade is instant even on a large store and rewrites no row; rows scored
before it keep ``NULL`` ("not kept"), which the page says in words.

Revision ID: 0002
Revises: 0001
Create Date: 2025-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JsonType = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    # batch mode: a plain ALTER where the database can (both add_column here), a table copy on SQLite otherwise
    with op.batch_alter_table("scores") as batch:
        batch.add_column(sa.Column("touchpoints", JsonType, nullable=True))
        batch.add_column(sa.Column("stage_changes", JsonType, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scores") as batch:
        batch.drop_column("stage_changes")
        batch.drop_column("touchpoints")
