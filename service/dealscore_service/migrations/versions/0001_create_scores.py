"""Create the scores table.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JsonType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "scores",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("deal_id", sa.String(), nullable=False),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("model_version", sa.String(), nullable=False),
        sa.Column("as_of", sa.DateTime(), nullable=False),
        sa.Column("scored_at", sa.DateTime(), nullable=False),
        sa.Column("account_id", sa.String(), nullable=True),
        sa.Column("owner_id", sa.String(), nullable=True),
        sa.Column("team", sa.String(), nullable=True),
        sa.Column("amount", sa.Float(), nullable=True),
        sa.Column("declared_stage", sa.String(), nullable=True),
        sa.Column("inferred_stage", sa.String(), nullable=False),
        sa.Column("stage_mismatch", sa.String(), nullable=False),
        sa.Column("p_win", sa.Float(), nullable=False),
        sa.Column("grade", sa.String(2), nullable=False),
        sa.Column("value_at_risk", sa.Float(), nullable=True),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.Column("warnings", JsonType, nullable=False),
        sa.Column("result", JsonType, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scores"),
        sa.UniqueConstraint("deal_id", "payload_hash", "model_version", name="uq_scores_deal_payload_model"),
    )
    op.create_index("ix_scores_deal_id_as_of", "scores", ["deal_id", "as_of"])
    op.create_index("ix_scores_owner_id", "scores", ["owner_id"])
    op.create_index("ix_scores_team", "scores", ["team"])


def downgrade() -> None:
    op.drop_index("ix_scores_team", table_name="scores")
    op.drop_index("ix_scores_owner_id", table_name="scores")
    op.drop_index("ix_scores_deal_id_as_of", table_name="scores")
    op.drop_table("scores")
