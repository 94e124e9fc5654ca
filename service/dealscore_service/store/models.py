"""The score store's tables.

One row per score: the deal's owner, team, amount and stages as scored, the
headline numbers the at-risk list filters and sorts on, and the full
``ScoreResult`` as JSON so nothing the API returned is ever lost. The unique key
(deal, payload hash, model version) is what makes re-sending a payload
idempotent, enforced by the database rather than by hope.

The request's touchpoints and CRM stage changes (what the deal page's timeline
shows) live on the same row as (columnar) JSON rather than in child tables:
they are written by the score's own single INSERT, so they can never be
half-written or cost the scoring hot path another round trip, and they are
only ever read as a whole, for one score. They are *deferred* columns: lists and histories never
load them; the deal page asks for the latest score's explicitly. ``NULL`` means
"not kept" (a score stored before revision 0002), ``[]`` "kept, there were none".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonType = JSON().with_variant(JSONB(), "postgresql")
#: JSON where Python ``None`` is SQL ``NULL`` (not the JSON value ``null``), so "not kept" is queryable.
NullableJsonType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so migrations name constraints the same everywhere."""

    metadata = MetaData(naming_convention=NAMING)


class ScoreRecord(Base):
    """One stored score of one deal."""

    __tablename__ = "scores"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
                                    autoincrement=True)
    deal_id: Mapped[str] = mapped_column(String(), nullable=False)
    #: the key's hash: the payload's own (``content_hash``), or it and the score it followed (a payload sent again
    #: after another one of the deal: ``dealscore_service.store.repository.returned_hash``)
    payload_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    #: the hash of the payload this score answered; ``NULL`` (rows written before 0009): ``payload_hash``
    content_hash: Mapped[str | None] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(), nullable=False)
    as_of: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
    scored_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
    account_id: Mapped[str | None] = mapped_column(String())
    owner_id: Mapped[str | None] = mapped_column(String())
    team: Mapped[str | None] = mapped_column(String())
    amount: Mapped[float | None] = mapped_column(Float())
    declared_stage: Mapped[str | None] = mapped_column(String())
    inferred_stage: Mapped[str] = mapped_column(String(), nullable=False)
    stage_mismatch: Mapped[str] = mapped_column(String(), nullable=False)
    p_win: Mapped[float] = mapped_column(Float(), nullable=False)
    grade: Mapped[str] = mapped_column(String(2), nullable=False)
    value_at_risk: Mapped[float | None] = mapped_column(Float())
    is_open: Mapped[bool] = mapped_column(Boolean(), nullable=False)
    warnings: Mapped[list[str]] = mapped_column(JsonType, nullable=False)
    result: Mapped[dict[str, Any]] = mapped_column(JsonType, nullable=False)
    # columnar: {field: [value, ...]} (see dealscore_service.store.timeline)
    touchpoints: Mapped[dict[str, list[Any]] | None] = mapped_column(NullableJsonType, deferred=True)
    stage_changes: Mapped[dict[str, list[Any]] | None] = mapped_column(NullableJsonType, deferred=True)

    __table_args__ = (
        UniqueConstraint("deal_id", "payload_hash", "model_version", name="uq_scores_deal_payload_model"),
        # a deal's scores in "latest first" order (read backwards): the latest is one index seek
        Index("ix_scores_deal_latest", "deal_id", "as_of", "scored_at", "id"),
        Index("ix_scores_owner_id", "owner_id"),
        Index("ix_scores_team", "team"),
    )


#: The ``deals`` indexes' columns after the filter and ``is_open``: the rank order, then what the totals sum
#: and the API's other sorts read (so that they sort index entries, not every open deal's row); the currency,
#: so that the totals are summed per currency on index entries too.
_RANK_COLUMNS = ("rank_group", "rank_key", "deal_id", "amount", "value_at_risk", "p_win", "as_of", "currency")
#: What the page's other sort columns read, carried by the unfiltered rank index only: the one list that
#: covers every open deal (a filter by team, owner or stage reads a fraction of the rows). The names are
#: there because the page sorts its deal, account and owner columns by the name it shows (the id without one).
_PAGE_SORT_COLUMNS = ("account_id", "owner_id", "declared_stage", "inferred_stage",
                      "deal_name", "account_name", "owner_name")


class DealRecord(Base):
    """One row per deal: who owns it now, whether it is open, and its latest score's headline numbers.

    The store keeps it in step with ``scores`` in the same transaction as every
    score written, so that four things read one small row per deal instead of
    ranking every stored score on each request:

    - the tenant boundary: the *stored* owner and team of a deal decide which
      keys may score it again, read it, or move it (never the payload alone);
    - the at-risk list and the page: filtered, ranked and paginated by the
      database on ``(is_open, rank_group, rank_key, deal_id)``;
    - the lifecycle: a deal's outcome (won/lost, close time) once the CRM says
      it closed, kept for monitoring and retraining;
    - the forecast: each open deal's team, owner, amount, ``p_win``, as-of time
      and close-time bucket probabilities (``close_pmf``), one row per deal.

    ``rank_group`` and ``rank_key`` are :func:`dealscore.scoring.at_risk`'s
    order stated as two columns: group 0 = at risk with an amount (ordered by
    priority), 1 = at risk without one (gap × urgency), 2 = not at risk
    (ordered by amount, for the page's "all open deals" view).
    """

    __tablename__ = "deals"

    deal_id: Mapped[str] = mapped_column(String(), primary_key=True)
    owner_id: Mapped[str | None] = mapped_column(String())
    team: Mapped[str | None] = mapped_column(String())
    account_id: Mapped[str | None] = mapped_column(String())
    # the latest score's display names (``ScoreResult.deal_name`` …): what the page shows, sorts by and
    # labels its owner filter with; NULL when the payload carried none (the page shows the id)
    deal_name: Mapped[str | None] = mapped_column(String())
    account_name: Mapped[str | None] = mapped_column(String())
    owner_name: Mapped[str | None] = mapped_column(String())
    is_open: Mapped[bool] = mapped_column(Boolean(), nullable=False)
    outcome: Mapped[str | None] = mapped_column(String(8))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime())
    outcome_recorded_at: Mapped[datetime | None] = mapped_column(DateTime())
    # the created_at of the payload behind the latest score (an outcome may not close before it);
    # NULL: written before revision 0007 and not scored since
    created_at: Mapped[datetime | None] = mapped_column(DateTime())
    # the latest score: its row in ``scores`` (unique key) and the numbers the list filters and sorts on
    payload_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    model_version: Mapped[str] = mapped_column(String(), nullable=False)
    as_of: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
    scored_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
    amount: Mapped[float | None] = mapped_column(Float())
    # the amount's ISO 4217 code as the latest score carried it (NULL: not given): totals never add currencies
    currency: Mapped[str | None] = mapped_column(String())
    declared_stage: Mapped[str | None] = mapped_column(String())
    inferred_stage: Mapped[str] = mapped_column(String(), nullable=False)
    p_win: Mapped[float] = mapped_column(Float(), nullable=False)
    value_at_risk: Mapped[float | None] = mapped_column(Float())
    rank_group: Mapped[int] = mapped_column(Integer(), nullable=False)
    rank_key: Mapped[float] = mapped_column(Float(), nullable=False)
    # the latest score's close-time bucket probabilities in the forecast's compact form
    # (dealscore.forecast.close_time.pmf_bytes): the forecast reads them here, not out of each score's JSON.
    # b"": scored without a close outlook; NULL: written before revision 0006 (read from the score's JSON)
    close_pmf: Mapped[bytes | None] = mapped_column(LargeBinary(), deferred=True)

    # the rank order after an optional filter column; amount, value at risk, win probability and as-of time
    # ride along (not for the order) so the list's totals, its risk-level cut-offs, a minimum amount and the
    # API's other sorts are read from the index alone; the unfiltered one also serves the page's sorts
    __table_args__ = (
        Index("ix_deals_rank", "is_open", *_RANK_COLUMNS, *_PAGE_SORT_COLUMNS),
        Index("ix_deals_team_rank", "team", "is_open", *_RANK_COLUMNS),
        # the owner's name rides along for the page's owner filter, read from this index alone
        Index("ix_deals_owner_rank", "owner_id", "is_open", *_RANK_COLUMNS, "owner_name"),
        Index("ix_deals_stage_rank", "declared_stage", "is_open", *_RANK_COLUMNS),
        # the forecast's time (the newest open score, the newest close) and its bookings (wins by close time)
        Index("ix_deals_open_as_of", "is_open", "as_of"),
        Index("ix_deals_open_closed_at", "is_open", "closed_at"),
        Index("ix_deals_outcome_closed_at", "outcome", "closed_at"),
    )


class DealsRevisionRecord(Base):
    """One row: a number that goes up in the same transaction as every change to ``deals``.

    While it stays the same no deal was scored, closed or moved, so what the
    store computed from ``deals`` under it (the at-risk list's totals and
    risk-level cut-offs, the page's filter menus) is still exact: reading it is
    one primary-key read where recomputing is a scan of every open deal.
    """

    __tablename__ = "deals_revision"

    id: Mapped[int] = mapped_column(Integer(), primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger(), nullable=False)


class DealEventRecord(Base):
    """What happened to a deal besides being scored: moved between owners/teams, closed (audit trail)."""

    __tablename__ = "deal_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
                                    autoincrement=True)
    deal_id: Mapped[str] = mapped_column(String(), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
    key_name: Mapped[str | None] = mapped_column(String())
    detail: Mapped[dict[str, Any]] = mapped_column(JsonType, nullable=False)


class EndedSessionRecord(Base):
    """A web page session signed out before its cookie expires: the cookie stops working on every worker.

    The cookie is signed, not stored, so a copy of it would otherwise work until
    it expires; this lists the ones ended early, by the SHA-256 of the session's
    own random id, until their expiry (rows past it are deleted at the next sign-out).
    """

    __tablename__ = "ended_sessions"

    session_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
