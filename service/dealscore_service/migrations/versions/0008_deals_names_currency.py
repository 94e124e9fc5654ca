"""The latest score's names and currency in ``deals``: the page sorts by the names it shows, and never adds currencies.

The manager page shows a deal, its account and its owner by name
(``ScoreResult.deal_name``, ``account_name``, ``owner_name``) but sorted those
columns by the hidden ids, and its owner filter offered ids; its totals added
amounts of different currencies into one number. Names and currency were only
in each score's JSON. ``deals`` now holds the latest score's names and
currency, written with the deal's row in the score's transaction, so the list
sorts by ``coalesce(name, id)`` on index entries, the filter labels owners by
name, and the totals are summed per currency.

Adding nullable columns is a catalogue-only change on PostgreSQL and SQLite.
The upgrade fills them for every deal from its latest score's JSON, a chunk of
deals at a time (as 0006 does), then rebuilds the rank indexes: each carries
the currency (the totals read index entries only), the unfiltered one the names
(the page's unfiltered sorts) and the owner one the owner's name (the owner
filter's labels). A row left ``NULL`` (no name or currency in the payload, or
written meanwhile by a worker on the previous revision) shows and sorts by its
id, and counts under "no currency".

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

JsonType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_CHUNK = 5000
_NAMES = ["deal_name", "account_name", "owner_name"]
_FILLED = [*_NAMES, "currency"]
_RANK = ["rank_group", "rank_key", "deal_id", "amount", "value_at_risk", "p_win", "as_of"]
_PAGE_SORTS = ["account_id", "owner_id", "declared_stage", "inferred_stage"]
#: index name → its columns before ``is_open``, and after the rank before (0007) and after this revision
_INDEXES = {
    "ix_deals_rank": ([], _PAGE_SORTS, ["currency", *_PAGE_SORTS, *_NAMES]),
    "ix_deals_team_rank": (["team"], [], ["currency"]),
    "ix_deals_owner_rank": (["owner_id"], [], ["currency", "owner_name"]),
    "ix_deals_stage_rank": (["declared_stage"], [], ["currency"]),
}


def upgrade() -> None:
    with op.batch_alter_table("deals") as batch:
        for name in _FILLED:
            batch.add_column(sa.Column(name, sa.String(), nullable=True))
    _fill()
    for name, (lead, _, carried) in _INDEXES.items():
        op.drop_index(name, table_name="deals")
        op.create_index(name, "deals", [*lead, "is_open", *_RANK, *carried])


def _fill() -> None:
    """Every deal's names and currency from its latest score's JSON (keyset pages by deal id)."""
    bind = op.get_bind()
    deals = sa.table("deals", sa.column("deal_id", sa.String()), sa.column("payload_hash", sa.String()),
                     sa.column("model_version", sa.String()), *(sa.column(n, sa.String()) for n in _FILLED))
    scores = sa.table("scores", sa.column("deal_id", sa.String()), sa.column("payload_hash", sa.String()),
                      sa.column("model_version", sa.String()), sa.column("result", JsonType))
    latest = (sa.select(deals.c.deal_id, *(scores.c.result[n].as_string() for n in _FILLED))
              .join(scores, sa.and_(scores.c.deal_id == deals.c.deal_id, scores.c.payload_hash == deals.c.payload_hash,
                                    scores.c.model_version == deals.c.model_version))
              .order_by(deals.c.deal_id))
    fill = (sa.update(deals).where(deals.c.deal_id == sa.bindparam("key"))
            .values({n: sa.bindparam(f"v_{n}", type_=sa.String()) for n in _FILLED}))
    last = ""
    while chunk := bind.execute(latest.where(deals.c.deal_id > last).limit(_CHUNK)).all():
        given = [row for row in chunk if any(v is not None for v in row[1:])]
        if given:
            bind.execute(fill, [{"key": row[0], **{f"v_{n}": v for n, v in zip(_FILLED, row[1:], strict=True)}}
                                for row in given])
        last = chunk[-1][0]


def downgrade() -> None:
    for name, (lead, carried, _) in _INDEXES.items():
        op.drop_index(name, table_name="deals")
        op.create_index(name, "deals", [*lead, "is_open", *_RANK, *carried])
    with op.batch_alter_table("deals") as batch:
        for name in _FILLED:
            batch.drop_column(name)
