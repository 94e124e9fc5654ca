"""One row per deal (its stored owner/team, open or closed, its latest score), the deal events, and the
web page sessions signed out before they expire.

``deals`` is what the tenant boundary, the at-risk list and the deal lifecycle
read (see ``dealscore_service.store.models.DealRecord``); ``deal_events`` keeps
moves between owners/teams and recorded outcomes. The upgrade fills ``deals``
from each deal's latest stored score, ranking it with the library's own
at-risk rule, in chunks so a large store never sits in memory at once.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from dealscore.scoring.result import ScoreResult
from dealscore_service.store.ranking import rank_of

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JsonType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_RANK = ["rank_group", "rank_key", "deal_id"]
_CHUNK = 5000


def upgrade() -> None:
    deals = op.create_table(
        "deals",
        sa.Column("deal_id", sa.String(), nullable=False),
        sa.Column("owner_id", sa.String(), nullable=True),
        sa.Column("team", sa.String(), nullable=True),
        sa.Column("account_id", sa.String(), nullable=True),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(8), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("outcome_recorded_at", sa.DateTime(), nullable=True),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("model_version", sa.String(), nullable=False),
        sa.Column("as_of", sa.DateTime(), nullable=False),
        sa.Column("scored_at", sa.DateTime(), nullable=False),
        sa.Column("amount", sa.Float(), nullable=True),
        sa.Column("declared_stage", sa.String(), nullable=True),
        sa.Column("inferred_stage", sa.String(), nullable=False),
        sa.Column("p_win", sa.Float(), nullable=False),
        sa.Column("value_at_risk", sa.Float(), nullable=True),
        sa.Column("rank_group", sa.Integer(), nullable=False),
        sa.Column("rank_key", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("deal_id", name="pk_deals"),
    )
    op.create_index("ix_deals_rank", "deals", ["is_open", *_RANK])
    op.create_index("ix_deals_team_rank", "deals", ["team", "is_open", *_RANK])
    op.create_index("ix_deals_owner_rank", "deals", ["owner_id", "is_open", *_RANK])
    op.create_index("ix_deals_stage_rank", "deals", ["declared_stage", "is_open", *_RANK])
    op.create_table(
        "deal_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("deal_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("key_name", sa.String(), nullable=True),
        sa.Column("detail", JsonType, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deal_events"),
    )
    op.create_index("ix_deal_events_deal_id", "deal_events", ["deal_id"])
    op.create_table(
        "ended_sessions",
        sa.Column("session_hash", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("session_hash", name="pk_ended_sessions"),
    )
    _fill_deals(deals)


def _fill_deals(deals: sa.Table) -> None:
    """Each deal's latest score (as-of time, then when scored, then id) becomes its ``deals`` row."""
    bind = op.get_bind()
    typed = {"id": sa.Integer(), "as_of": sa.DateTime(), "scored_at": sa.DateTime(), "amount": sa.Float(),
             "p_win": sa.Float(), "value_at_risk": sa.Float(), "is_open": sa.Boolean(), "result": JsonType}
    names = ("id", "deal_id", "payload_hash", "model_version", "as_of", "scored_at", "account_id", "owner_id",
             "team", "amount", "declared_stage", "inferred_stage", "p_win", "value_at_risk", "is_open", "result")
    scores = sa.table("scores", *(sa.column(n, typed.get(n, sa.String())) for n in names))
    rn = sa.func.row_number().over(
        partition_by=scores.c.deal_id,
        order_by=(scores.c.as_of.desc(), scores.c.scored_at.desc(), scores.c.id.desc()),
    ).label("rn")
    ranked = sa.select(scores.c.id, rn).subquery()
    latest = (sa.select(scores).join(ranked, ranked.c.id == scores.c.id).where(ranked.c.rn == 1)
              .order_by(scores.c.deal_id))
    batch: list[dict[str, object]] = []
    for row in bind.execute(latest).mappings():
        rank = rank_of(ScoreResult.model_validate(row["result"]))
        batch.append({
            "deal_id": row["deal_id"], "owner_id": row["owner_id"], "team": row["team"],
            "account_id": row["account_id"], "is_open": bool(row["is_open"]), "outcome": None, "closed_at": None,
            "outcome_recorded_at": None, "payload_hash": row["payload_hash"], "model_version": row["model_version"],
            "as_of": row["as_of"], "scored_at": row["scored_at"], "amount": row["amount"],
            "declared_stage": row["declared_stage"], "inferred_stage": row["inferred_stage"], "p_win": row["p_win"],
            "value_at_risk": rank.value_at_risk, "rank_group": rank.group, "rank_key": rank.key,
        })
        if len(batch) >= _CHUNK:
            op.bulk_insert(deals, batch)
            batch = []
    if batch:
        op.bulk_insert(deals, batch)


def downgrade() -> None:
    op.drop_table("ended_sessions")
    op.drop_index("ix_deal_events_deal_id", table_name="deal_events")
    op.drop_table("deal_events")
    for name in ("ix_deals_stage_rank", "ix_deals_owner_rank", "ix_deals_team_rank", "ix_deals_rank"):
        op.drop_index(name, table_name="deals")
    op.drop_table("deals")
