"""Index each deal's scores in "latest first" order, so finding a deal's latest score is one index seek.

The score-drop comparison made on every score, and the at-risk list, look for
a deal's latest score by (as-of time, when scored, id). The index on
(deal_id, as_of) alone left every score of a deal with the same as-of time
(a CRM re-sending a deal as of the same day, a backfill) to be sorted on each
request. (deal_id, as_of, scored_at, id) serves that order directly, and
everything the old index served, which it replaces.

Revision ID: 0003
Revises: 0002
Create Date: 2025-07-01
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_scores_deal_latest", "scores", ["deal_id", "as_of", "scored_at", "id"])
    op.drop_index("ix_scores_deal_id_as_of", table_name="scores")


def downgrade() -> None:
    op.create_index("ix_scores_deal_id_as_of", "scores", ["deal_id", "as_of"])
    op.drop_index("ix_scores_deal_latest", table_name="scores")
