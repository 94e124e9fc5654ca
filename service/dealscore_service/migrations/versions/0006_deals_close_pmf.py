"""Each deal's latest close-time bucket probabilities in a column of ``deals``, in the forecast's compact form.

``GET /v1/forecast`` read the latest score of every open deal through the
``scores`` table, extracting the close outlook's bucket probabilities from each
score's JSON and decoding them as text: for 5,000 open deals that read was
0.12–0.19 s of a 200 ms target. ``deals.close_pmf`` holds them as float64 bytes
(``dealscore.forecast.close_time.pmf_bytes``: the same numbers, no text to parse),
written with the deal's row in the same transaction as each score, so the
forecast reads one small row per open deal and nothing of ``scores``.

Adding a nullable column is a catalogue-only change on PostgreSQL and SQLite.
The upgrade then fills it for the open deals (the rows the forecast reads),
from their latest score's JSON, a chunk of deals at a time; closed deals keep ``NULL``. A row
left ``NULL`` (a closed deal, or one written meanwhile by a worker still on
the previous revision) is read from its score's JSON, as before: slower, same
numbers. ``b""`` means the score carries no close outlook.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from dealscore.forecast.close_time import pmf_bytes

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JsonType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_CHUNK = 5000


def upgrade() -> None:
    with op.batch_alter_table("deals") as batch:
        batch.add_column(sa.Column("close_pmf", sa.LargeBinary(), nullable=True))
    _fill_open_deals()


def _fill_open_deals() -> None:
    """The open deals' ``close_pmf`` from the bucket probabilities in their latest score's JSON."""
    bind = op.get_bind()
    deals = sa.table("deals", sa.column("deal_id", sa.String()), sa.column("payload_hash", sa.String()),
                     sa.column("model_version", sa.String()), sa.column("is_open", sa.Boolean()),
                     sa.column("close_pmf", sa.LargeBinary()))
    scores = sa.table("scores", sa.column("deal_id", sa.String()), sa.column("payload_hash", sa.String()),
                      sa.column("model_version", sa.String()), sa.column("result", JsonType))
    buckets = scores.c.result["close_outlook"]["bucket_probabilities"]
    latest = (sa.select(deals.c.deal_id, buckets)
              .join(scores, sa.and_(scores.c.deal_id == deals.c.deal_id, scores.c.payload_hash == deals.c.payload_hash,
                                    scores.c.model_version == deals.c.model_version))
              .where(deals.c.is_open.is_(True), deals.c.close_pmf.is_(None)).order_by(deals.c.deal_id))
    fill = (sa.update(deals).where(deals.c.deal_id == sa.bindparam("key"))
            .values(close_pmf=sa.bindparam("pmf", type_=sa.LargeBinary())))
    # read and written a chunk at a time, by deal id (keyset pages): a store of 200,000 open deals never holds
    # every score's probabilities in memory at once
    last = ""
    while chunk := bind.execute(latest.where(deals.c.deal_id > last).limit(_CHUNK)).all():
        bind.execute(fill, [{"key": deal_id, "pmf": pmf_bytes(probs)} for deal_id, probs in chunk])
        last = chunk[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("deals") as batch:
        batch.drop_column("close_pmf")
