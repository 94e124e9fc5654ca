"""Each score keeps the hash of the payload it answered, apart from the key it is stored under.

A payload re-sent while its score is the deal's score in force is a replay (no new row). One sent
again after another payload of the same deal (amount 50,000, then 90,000, then 50,000 again) is
the CRM moving the deal back: it is scored and stored, and the stored key, unique per
(deal, payload hash, model), then carries the score it followed, so ``payload_hash`` is no longer
the payload's own hash for such a row. ``content_hash`` keeps that one, so the next re-send of the
same payload is still seen as a replay of the score in force.

Adding a nullable column is a catalogue-only change on PostgreSQL and SQLite; ``NULL`` (every row
written before this revision) means the payload's hash is ``payload_hash``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scores") as batch:
        batch.add_column(sa.Column("content_hash", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scores") as batch:
        batch.drop_column("content_hash")
