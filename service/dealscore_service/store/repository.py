"""The score store: save scores idempotently, read histories and the at-risk ranking.

Every database error a client could trip over (server down, file locked,
connection dropped mid-write) becomes :class:`StoreUnavailableError` (503 with
``Retry-After``); every write is one transaction, so a failure leaves nothing
half-written. Idempotency is the unique key (deal, payload hash, model
version): a re-sent payload finds its stored score and adds no row, and two
workers racing on the same payload resolve through the constraint.

A score's touchpoints and stage changes ride in the same row (and so the same
INSERT) as the score; reads leave them out unless asked for, since only the
deal page's timeline needs them, and only the latest score's.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import structlog
from sqlalchemy import (
    ColumnElement,
    Engine,
    Row,
    String,
    and_,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from dealscore.errors import StoreUnavailableError
from dealscore.forecast.close_time import pmf_bytes
from dealscore.scoring.result import ScoreResult
from dealscore.times import naive_utc
from dealscore_service.auth import Principal
from dealscore_service.store.derived import DerivedCache
from dealscore_service.store.migrate import migrate
from dealscore_service.store.models import (
    DealEventRecord,
    DealRecord,
    DealsRevisionRecord,
    EndedSessionRecord,
    ScoreRecord,
)
from dealscore_service.store.placements import owner_teams
from dealscore_service.store.ranking import AT_RISK_NO_AMOUNT, NOT_AT_RISK, level_bounds, rank_of
from dealscore_service.store.timeline import STAGE_CHANGE_FIELDS, TOUCHPOINT_FIELDS, Columns, to_rows

log = structlog.get_logger("dealscore_service.store")

#: The INSERT with ``ON CONFLICT`` of each database the store runs on.
_UPSERT_INSERTS: dict[str, Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
#: The columns of the unique key that makes a score idempotent.
_SCORE_KEY = ["deal_id", "payload_hash", "model_version"]

#: A deal's scores, latest first: by as-of time, then when scored (the order of index ix_scores_deal_latest).
#: One definition, so the at-risk list, the trend lines, the score history and the score-drop
#: comparison all agree on which score is a deal's latest.
_NEWEST_FIRST = (ScoreRecord.as_of.desc(), ScoreRecord.scored_at.desc(), ScoreRecord.id.desc())


def _newest_first_within_deal() -> Any:
    """Each score's rank within its deal, 1 = latest (:data:`_NEWEST_FIRST`)."""
    return func.row_number().over(partition_by=ScoreRecord.deal_id, order_by=_NEWEST_FIRST).label("rn")


@dataclass(frozen=True)
class ScoreToSave:
    """A fresh score, the identity of the payload it came from, and what the timeline keeps of that payload.

    ``touchpoints`` and ``stage_changes`` are in the stored columnar form that
    :func:`~dealscore_service.store.timeline.deal_timelines` builds; ``None``
    stores "not kept".
    """

    result: ScoreResult
    #: the key it is stored under (:attr:`Lookup.keys`): the payload's hash, or :func:`returned_hash` of it
    payload_hash: str
    is_open: bool
    touchpoints: Columns | None = None
    stage_changes: Columns | None = None
    #: the payload's ``created_at`` (naive UTC), kept with the deal's row when this score is its latest
    created_at: datetime | None = None
    #: the payload's own hash when ``payload_hash`` is not it (``None``: it is)
    content_hash: str | None = None


class Lookup(NamedTuple):
    """What :meth:`ScoreStore.lookup` reads for a request, by (deal, payload hash)."""

    #: the replays: the score each one gets back
    replays: dict[tuple[str, str], StoredScore]
    #: per deal to score, its score in force's win probability (the drop counts in its priority)
    previous: dict[str, float]
    #: every stored deal's state
    states: dict[str, DealState]
    #: per pair to score, the key to store its score under (the payload hash, or :func:`returned_hash`)
    keys: dict[tuple[str, str], str]


@dataclass(frozen=True)
class StoredScore:
    """A score as the store holds it."""

    id: int
    deal_id: str
    payload_hash: str
    model_version: str
    as_of: datetime
    scored_at: datetime
    owner_id: str | None
    team: str | None
    amount: float | None
    declared_stage: str | None
    inferred_stage: str
    p_win: float
    grade: str
    value_at_risk: float | None
    is_open: bool
    warnings: list[str]
    result: dict[str, Any]
    #: The request's touchpoints, oldest first: ``{occurred_at, type, direction, contact_role, contact_id}``.
    #: ``None`` when not read (only :meth:`ScoreStore.deal_scores` reads them, for the latest score, on request)
    #: or not kept (scored before the store kept them); ``[]`` when the request had none.
    touchpoints: list[dict[str, Any]] | None = None
    #: The request's CRM stage changes, oldest first: ``{changed_at, stage, amount, expected_close_date}``;
    #: ``None`` / ``[]`` as for ``touchpoints``.
    stage_changes: list[dict[str, Any]] | None = None

    @classmethod
    def from_record(cls, r: ScoreRecord) -> StoredScore:
        # deferred columns are in the instance's __dict__ only when the query loaded them;
        # reading the attribute otherwise would be a lazy load (or an error once detached)
        loaded = r.__dict__
        touchpoints = to_rows(loaded["touchpoints"], TOUCHPOINT_FIELDS) if "touchpoints" in loaded else None
        stage_changes = to_rows(loaded["stage_changes"], STAGE_CHANGE_FIELDS) if "stage_changes" in loaded else None
        return cls(
            id=r.id, deal_id=r.deal_id, payload_hash=r.payload_hash, model_version=r.model_version, as_of=r.as_of,
            scored_at=r.scored_at, owner_id=r.owner_id, team=r.team, amount=r.amount,
            declared_stage=r.declared_stage, inferred_stage=r.inferred_stage, p_win=r.p_win, grade=r.grade,
            value_at_risk=r.value_at_risk, is_open=r.is_open, warnings=list(r.warnings or []),
            result=dict(r.result), touchpoints=touchpoints, stage_changes=stage_changes,
        )

    def score_result(self) -> ScoreResult:
        """The full result as the API returned it."""
        return ScoreResult.model_validate(self.result)


@dataclass(frozen=True)
class DealFilter:
    """Which deals' latest scores to read (the at-risk list's filters)."""

    owner: str | None = None
    team: str | None = None
    declared_stage: str | None = None
    min_amount: float | None = None
    #: ISO 4217 code, upper case: one currency's deals, so that the ranking and ``min_amount`` compare like money
    currency: str | None = None


@dataclass(frozen=True)
class DealState:
    """What the store knows of a deal besides its scores: who owns it now, and whether it closed."""

    deal_id: str
    owner_id: str | None
    team: str | None
    is_open: bool
    outcome: str | None = None
    closed_at: datetime | None = None
    outcome_recorded_at: datetime | None = None
    p_win: float | None = None
    model_version: str | None = None
    created_at: datetime | None = None
    #: the as-of time of the deal's latest score (naive UTC): a score older than it is a back-fill
    as_of: datetime | None = None

    @classmethod
    def from_record(cls, r: DealRecord | Row[Any]) -> DealState:
        """From a ``deals`` row: the ORM record, or a result row of :data:`_DEAL_STATE_COLUMNS` (same names)."""
        return cls(**{f.name: getattr(r, f.name) for f in fields(cls)})


#: The ``deals`` columns a :class:`DealState` holds, named as its fields.
_DEAL_STATE_COLUMNS = tuple(getattr(DealRecord, f.name) for f in fields(DealState))


@dataclass(frozen=True)
class DealEvent:
    """A move between owners/teams or a recorded outcome, written with the change it records."""

    deal_id: str
    kind: str
    key_name: str | None
    detail: dict[str, Any]


#: A caller's authorization judged again inside a write (:meth:`ScoreStore.add`): the stored states of the deals
#: written, read under the write's locks → the events to record with the write; raising writes nothing.
Recheck = Callable[[dict[str, DealState]], Sequence[DealEvent]]


#: Sorts the list offers besides the ranking, by the ``deals`` column they read.
SORT_COLUMNS = {
    "deal_id": DealRecord.deal_id, "account_id": DealRecord.account_id, "owner_id": DealRecord.owner_id,
    "amount": DealRecord.amount, "p_win": DealRecord.p_win, "as_of": DealRecord.as_of,
    "value_at_risk": DealRecord.value_at_risk, "declared_stage": DealRecord.declared_stage,
    "inferred_stage": DealRecord.inferred_stage,
    # what the page shows in its deal, account and owner columns: the name, the id when there is none,
    # in the order a reader expects of text (case aside: "acme" next to "Acme", not after "Zeta")
    "deal_name": func.lower(func.coalesce(DealRecord.deal_name, DealRecord.deal_id)),
    "account_name": func.lower(func.coalesce(DealRecord.account_name, DealRecord.account_id)),
    "owner_name": func.lower(func.coalesce(DealRecord.owner_name, DealRecord.owner_id)),
}


@dataclass(frozen=True)
class ListRequest:
    """One page of the at-risk list: filters, which deals, the order and the page.

    ``sort="rank"`` is the at-risk ranking (``desc``) or its reverse (``asc``);
    any key of :data:`SORT_COLUMNS` sorts by that column, missing values last.
    ``stage_order`` maps stage names to their place in the taxonomy, for the
    two stage sorts (stages it does not know sort after those it does).
    """

    filters: DealFilter = DealFilter()
    include_not_at_risk: bool = False
    sort: str = "rank"
    order: str = "desc"
    limit: int = 50
    offset: int = 0
    stage_order: dict[str, int] | None = None


@dataclass(frozen=True)
class ListedDeal:
    """One row of a list page: the deal's latest full result, ranked (value at risk, priority, level)."""

    result: ScoreResult
    as_of: datetime
    scored_at: datetime
    at_risk: bool


@dataclass(frozen=True)
class CurrencyTotals:
    """The list's totals over its deals in one currency (``None``: deals whose payload gave none).

    ``deals_at_risk`` counts what ``value_at_risk`` sums (deals below their stage's usual win rate, those
    without an amount included), so a reader can weigh the money at risk against how many deals carry it.
    """

    currency: str | None
    open_deals: int
    pipeline_value: float
    value_at_risk: float
    deals_at_risk: int


@dataclass(frozen=True)
class ListPageData:
    """A page of the list and the totals over every deal matching the filters (not just the page).

    ``pipeline_value`` and ``value_at_risk`` add every amount whatever its currency (what the API has always
    returned); ``by_currency`` splits them, largest pipeline first, for a reader who must not add EUR to JPY.
    """

    items: list[ListedDeal]
    open_deals: int
    at_risk: int
    pipeline_value: float
    value_at_risk: float
    by_currency: tuple[CurrencyTotals, ...] = ()


#: A pooled server connection idle for longer than this is tested before it is handed out.
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """Test a pooled connection when it has been idle, instead of at every checkout (``pool_pre_ping``).

    A server connection can die between requests (a restart, a proxy or firewall
    dropping idle connections); a dead one found here is replaced before the
    request sees it. Under load every connection is back in use within
    milliseconds, and the ping was one network round trip in each of the two
    sessions of every score: on PostgreSQL under 100 requests/s those round trips
    queued behind the interpreter lock with everything else. A connection that
    dies while in use, or within the last second, fails its request with the
    store's 503, and the pool then replaces every connection opened before it
    (SQLAlchemy invalidates the pool on a disconnect), so the retry succeeds.
    SQLAlchemy's documented custom pessimistic check, with an idle bound.
    """

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned <= PING_AFTER_IDLE_SECONDS:
            return
        try:
            cur = dbapi_conn.cursor()
            try:
                cur.execute("SELECT 1")
            finally:
                cur.close()
            dbapi_conn.rollback()  # the driver opened a transaction for the ping: leave none behind
        except Exception as exc:  # any failure means "do not use this connection"; the pool opens another
            raise DisconnectionError(f"pooled connection failed its idle check: {exc}") from exc


#: What a client does about a refused write (the 503 carries Retry-After).
_RETRY_FIX = "retry after the number of seconds in the Retry-After header"
#: How long a SQLite write waits for the database file (another worker writing) before it is refused with a 503.
SQLITE_BUSY_SECONDS = 5.0


def _engine(url: str, sqlite_busy_seconds: float = SQLITE_BUSY_SECONDS) -> Engine:
    """An engine with settings that make failures fast and recoverable."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        # a SQLite connection is a file handle in this process, with nothing that can drop it: no ping
        db = parsed.database
        if db and db != ":memory:":
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": sqlite_busy_seconds}
        engine = create_engine(parsed, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets readers and one writer work at once (several uvicorn workers);
            # NORMAL sync is durable across application crashes at a fraction of FULL's cost.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    if parsed.get_backend_name() == "postgresql":
        if "connect_timeout" not in parsed.query:
            kwargs["connect_args"] = {"connect_timeout": 5}
        kwargs.update(pool_size=5, max_overflow=10, pool_timeout=5)
    engine = create_engine(parsed, **kwargs)
    _ping_when_idle(engine)
    return engine


class ScoreStore:
    """Repository over the ``scores`` table."""

    def __init__(
        self, url: str, *, migrate_on_start: bool = True, keep_scores: int = 100, totals_max_age: float = 0.0,
        sqlite_busy_seconds: float = SQLITE_BUSY_SECONDS, write_turn_seconds: float | None = None,
    ) -> None:
        self.url = url
        #: scores kept per deal (the newest); older ones are deleted as new ones arrive
        self.keep_scores = keep_scores
        self.engine = _engine(url, sqlite_busy_seconds)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # reads on a server run without a transaction: BEGIN and ROLLBACK were two of a score's round trips
        # (nothing is lost: under PostgreSQL's default READ COMMITTED each statement takes its own snapshot anyway)
        reader = (self.engine if self.engine.dialect.name == "sqlite"
                  else self.engine.execution_options(isolation_level="AUTOCOMMIT"))
        self._read_sessions = sessionmaker(reader, expire_on_commit=False)
        self._auto_migrate = migrate_on_start
        self._migrated = False
        self._migrating = threading.Lock()
        # SQLite lets one connection write the file at a time. The threads of one worker take turns on this lock
        # (each waiting only for the writes before it), so only the workers meet in SQLite's busy handler, which
        # waits in growing sleeps (up to 100 ms) and gives up after its timeout: with dozens of a worker's threads
        # in it at once, a burst turned waits into "database is locked" 503s (docs/service.md, "Performance").
        # A server database takes concurrent writers itself: no lock there.
        self._write_lock = threading.Lock() if self.engine.dialect.name == "sqlite" else None
        #: how long a write waits for its turn before it is refused (default: as long as SQLite waits for the file)
        self._write_wait = sqlite_busy_seconds if write_turn_seconds is None else write_turn_seconds
        #: the list's totals and cut-offs and the filter menus, per filter and key, under one ``deals`` revision
        #: or at most ``totals_max_age`` seconds old (:mod:`~dealscore_service.store.derived`)
        self._derived = DerivedCache(max_age=totals_max_age)

    @property
    def safe_url(self) -> str:
        """The URL without its password (for logs and /v1/model)."""
        return self.engine.url.render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ health

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """Turn database outages into 503s; let integrity errors through for idempotency handling."""
        try:
            yield
        except IntegrityError:
            raise
        except (DBAPIError, PoolTimeoutError, OSError) as exc:
            log.warning("store_unavailable", operation=what, error=type(exc).__name__,
                        reason=str(getattr(exc, "orig", exc)).splitlines()[0][:200], store=self.safe_url)
            raise StoreUnavailableError(
                f"the score store is unavailable ({what} failed); nothing was written, retry later",
                fix=_RETRY_FIX,
            ) from exc

    def migrate(self) -> None:
        """Bring the schema to the latest revision (idempotent)."""
        with self._guard("migrate"):
            migrate(self.engine)
        self._migrated = True

    def _ready(self) -> None:
        """Migrate lazily when the store was down at start and has come back.

        Once per store, whichever of the worker's threads comes first: the others wait for it
        (several threads migrating at once fail on each other's tables).
        """
        if self._migrated or not self._auto_migrate:
            return
        with self._migrating:
            if not self._migrated:
                self.migrate()

    def ping(self) -> None:
        """Raise :class:`StoreUnavailableError` unless the store answers and is migrated.

        A pooled connection that died within the last second is handed out unchecked (``_ping_when_idle``); its
        failure makes the pool replace every old connection, so readiness asks once more before saying the store
        is down: a server that is back must not be reported unavailable because of one stale connection.
        """
        self._ready()
        for attempt in (1, 2):
            try:
                with self._guard("ping"), self.engine.connect() as conn:
                    conn.execute(text("SELECT 1 FROM scores WHERE 1 = 0"))
                return
            except StoreUnavailableError as exc:
                cause = exc.__cause__
                if attempt == 2 or not (isinstance(cause, DBAPIError) and cause.connection_invalidated):
                    raise

    @contextmanager
    def _session(self, what: str) -> Iterator[Session]:
        """A session for ``what``: "read" sessions never write (on a server they run without a transaction)."""
        self._ready()
        if what == "read":
            with self._guard(what), self._read_sessions() as session:
                yield session
            return
        with self._writer(what), self._guard(what), self._sessions() as session:
            yield session

    @contextmanager
    def _writer(self, what: str) -> Iterator[None]:
        """This worker's turn to write (SQLite only, see ``_write_lock``); refused like a locked file after the wait."""
        if self._write_lock is None:
            yield
            return
        if not self._write_lock.acquire(timeout=self._write_wait):
            log.warning("store_unavailable", operation=what, error="WriteTurnTimeout",
                        reason=f"waited {self._write_wait:g} s for this worker's earlier writes", store=self.safe_url)
            raise StoreUnavailableError(
                f"the score store is busy ({what} waited {self._write_wait:g} s for earlier writes); nothing was "
                "written, retry later",
                fix=_RETRY_FIX,
            )
        try:
            yield
        finally:
            self._write_lock.release()

    # ------------------------------------------------------------------ writes

    def find(self, keys: Sequence[tuple[str, str]], model_version: str) -> dict[tuple[str, str], StoredScore]:
        """Stored scores for (deal_id, payload_hash) pairs under one model version."""
        if not keys:
            return {}
        with self._session("read") as s:
            return _find(s, keys, model_version)

    def lookup(self, keys: Sequence[tuple[str, str]], model_version: str, as_of: datetime) -> Lookup:
        """What scoring a request needs from the store, in one session (:class:`Lookup`): which (deal, payload
        hash) pairs are replays, the previous win probability of the others, the key each of those is stored
        under, and the stored :class:`DealState` of every deal (who may score it: the tenant boundary).

        A replay is a payload whose deal's score in force at ``as_of`` (its newest as of then, under
        :data:`_NEWEST_FIRST`) answered that same payload under this model: the client sent it again and
        gets that score back. A payload stored earlier but followed by another one (amount 50,000, then
        90,000, then 50,000 again) is not: the deal came back, and answering with the first score would
        leave the second in force while the CRM holds the first, so it is scored and stored again, under
        :func:`returned_hash`.

        One session rather than several because on one deal the fixed cost of a session
        (a pooled connection, its transaction) is most of the cost of these reads; and one
        statement for the single-score endpoint's one deal (:data:`_ONE_DEAL`), so that a
        score makes one round trip to read, a second only for a replay.
        """
        if not keys:
            return Lookup({}, {}, {}, {})
        with self._session("read") as s:
            if len(keys) == 1:
                return _one_deal(s, keys[0], model_version, as_of)
            deal_ids = list(dict.fromkeys(d for d, _ in keys))
            states = _deal_states(s, deal_ids)
            in_force = _in_force(s, deal_ids, as_of)
            replays = {(d, h): in_force[d].id for d, h in keys
                       if d in in_force and in_force[d].content == h and in_force[d].model_version == model_version}
            stored = _by_id(s, replays)
            todo = [k for k in dict.fromkeys(keys) if k not in stored]
            taken = _find(s, todo, model_version) if todo else {}
            previous = {d: in_force[d].p_win for d, _ in todo if d in in_force}
            to_store = {(d, h): _key_to_store(h, (d, h) in taken, in_force[d].id if d in in_force else None)
                        for d, h in todo}
            return Lookup(stored, previous, states, to_store)

    def deal_states(self, deal_ids: Sequence[str]) -> dict[str, DealState]:
        """The stored state of some deals (absent: never scored)."""
        if not deal_ids:
            return {}
        with self._session("read") as s:
            return _deal_states(s, list(deal_ids))

    def record_outcome(
        self, deal_id: str, outcome: str, closed_at: datetime, *, key_name: str | None, now: datetime | None = None,
    ) -> DealState | None:
        """Close a stored deal as won or lost: it leaves the at-risk list; the outcome is kept (and audited).

        Returns the new state, or ``None`` when the deal was never scored. Sending
        the same outcome again changes nothing; a different one corrects it (both
        are recorded as events).
        """
        recorded_at = naive_utc(now or datetime.now(UTC))
        closed = naive_utc(closed_at)
        with self._session("save") as s, s.begin():
            row = s.get(DealRecord, deal_id, with_for_update=True)
            if row is None:
                return None
            if row.outcome == outcome and row.closed_at == closed:
                return DealState.from_record(row)
            previous = {"outcome": row.outcome, "closed_at": row.closed_at.isoformat() if row.closed_at else None}
            row.is_open, row.outcome, row.closed_at, row.outcome_recorded_at = False, outcome, closed, recorded_at
            s.add(DealEventRecord(deal_id=deal_id, kind="outcome", at=recorded_at, key_name=key_name, detail={
                "outcome": outcome, "closed_at": closed.isoformat(), "previous": previous,
                "last_p_win": row.p_win, "model_version": row.model_version}))
            s.flush()
            s.execute(_BUMP_REVISION)
            revision = _deals_revision(s)
            state = DealState.from_record(row)
        self._derived.clear(revision)  # after the commit: this worker's next list counts the deal closed
        return state

    def deal_events(self, deal_id: str) -> list[dict[str, Any]]:
        """A deal's moves and outcomes, oldest first (the audit trail)."""
        with self._session("read") as s:
            rows = s.scalars(select(DealEventRecord).where(DealEventRecord.deal_id == deal_id)
                             .order_by(DealEventRecord.id)).all()
            return [{"kind": r.kind, "at": r.at, "key_name": r.key_name, **r.detail} for r in rows]

    def save(
        self, items: Sequence[ScoreToSave], *, now: datetime | None = None, events: Sequence[DealEvent] = (),
        recheck: Recheck | None = None,
    ) -> list[StoredScore]:
        """Persist scores in one transaction; already-stored ones are returned, not duplicated.

        Returns one :class:`StoredScore` per item, in order. A race with another
        worker writing the same payload shows up as a unique-key violation; the
        transaction is rolled back and retried once, when the other row is found.
        ``recheck`` as for :meth:`add`.
        """
        if not items:
            return []
        scored_at = naive_utc(now or datetime.now(UTC))
        for attempt in (1, 2):
            try:
                return self._save_once(items, scored_at, events, recheck)
            except IntegrityError as exc:
                log.info("store_save_conflict", attempt=attempt, error=str(exc.orig).splitlines()[0][:200])
        raise StoreUnavailableError(
            "the score store refused the write twice; nothing was written, retry later",
            fix=_RETRY_FIX,
        )

    def add(
        self, items: Sequence[ScoreToSave], *, now: datetime | None = None, events: Sequence[DealEvent] = (),
        recheck: Recheck | None = None,
    ) -> None:
        """Persist fresh scores in one transaction, skipping any already stored; what the scoring endpoints use.

        The same rows and the same idempotency as :meth:`save`, for a caller that
        does not need the stored rows back: one ``INSERT ... ON CONFLICT DO NOTHING``
        on the unique key (deal, payload hash, model version), so a payload re-sent
        or raced by another worker adds no row and needs neither the read before
        the write nor the read back after it (which decoded every stored result
        again). On a database without ``ON CONFLICT`` it is :meth:`save`.

        ``recheck`` is the caller's authorization, judged again inside the write:
        it gets the stored states of the deals written (:meth:`_locked_states`:
        no other write can change them until the commit) and returns the events
        to record in place of ``events``, or raises, and nothing is written. A
        check made on an earlier read could be overtaken by another request
        creating or moving the same deal in between.
        """
        if not items:
            return
        dialect = self.engine.dialect.name
        if dialect not in _UPSERT_INSERTS:
            self.save(items, now=now, events=events, recheck=recheck)
            return
        scored_at = naive_utc(now or datetime.now(UTC))
        rows: dict[tuple[str, str, str], dict[str, Any]] = {}
        for it in items:
            rows.setdefault((it.result.deal_id, it.payload_hash, it.result.model_version), _row(it, scored_at))
        stmt = _upsert(dialect)
        self._ready()
        for attempt in (1, 2):  # as save() does, so a refused write answers the same 503
            try:
                with self._writer("save"), self._guard("save"), self.engine.begin() as conn:
                    conn.execute(stmt, list(rows.values()))
                    if recheck is not None:
                        events = recheck(_locked_states(conn, [it.result.deal_id for it in items]))
                    self._after_insert(conn, items, scored_at, events)
                return
            except IntegrityError as exc:  # not the unique key (ON CONFLICT takes that): a constraint or trigger
                log.info("store_save_conflict", attempt=attempt, error=str(exc.orig).splitlines()[0][:200])
        raise StoreUnavailableError(
            "the score store refused the write twice; nothing was written, retry later",
            fix=_RETRY_FIX,
        )

    def _after_insert(
        self, conn: Any, items: Sequence[ScoreToSave], scored_at: datetime, events: Sequence[DealEvent],
    ) -> None:
        """In the scores' own transaction: the deals' rows, the events, and each deal's bounded history.

        The deals' rows take each deal's newest score (by as-of time, then when
        scored) unless a newer one is stored already. Only that latest score keeps
        its touchpoints and stage changes (the deal page's timeline shows the
        latest only); older scores of these deals drop theirs, and scores beyond
        the newest ``keep_scores`` of each deal are deleted. The ``deals``
        revision goes up, so totals computed before are not reused.

        A move is recorded only when the deal's row took the score: a back-fill
        (an older as-of time) under another owner or team changes no row, so
        the deal did not move.
        """
        newest: dict[str, ScoreToSave] = {}
        for it in items:
            cur = newest.get(it.result.deal_id)
            if cur is None or naive_utc(it.result.as_of) >= naive_utc(cur.result.as_of):
                newest[it.result.deal_id] = it
        conn.execute(_deal_upsert(conn.dialect.name), [_deal_row(it, scored_at) for it in newest.values()])
        moved = sorted({e.deal_id for e in events if e.kind == "moved"})
        if moved:
            rows = conn.execute(select(DealRecord.deal_id, DealRecord.payload_hash, DealRecord.model_version)
                                .where(DealRecord.deal_id.in_(moved)))
            taken = {d for d, h, v in rows
                     if d in newest and (h, v) == (newest[d].payload_hash, newest[d].result.model_version)}
            events = [e for e in events if e.kind != "moved" or e.deal_id in taken]
        if events:
            conn.execute(insert(DealEventRecord), [
                {"deal_id": e.deal_id, "kind": e.kind, "at": scored_at, "key_name": e.key_name, "detail": e.detail}
                for e in events])
        ids = sorted(newest)
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            conn.execute(_DROP_OLD_TIMELINES, {"deal_ids": chunk})
            conn.execute(_DROP_BEYOND_RETENTION, {"deal_ids": chunk, "keep": self.keep_scores})
        # last, so that on PostgreSQL the one row every writer updates stays locked only until the commit
        conn.execute(_BUMP_REVISION)

    def _save_once(
        self, items: Sequence[ScoreToSave], scored_at: datetime, events: Sequence[DealEvent] = (),
        recheck: Recheck | None = None,
    ) -> list[StoredScore]:
        versions = {it.result.model_version for it in items}
        with self._session("save") as s, s.begin():
            existing: dict[tuple[str, str, str], StoredScore] = {}
            for version in versions:
                keys = [(it.result.deal_id, it.payload_hash) for it in items if it.result.model_version == version]
                hashes = sorted({h for _, h in keys})
                for r in s.scalars(select(ScoreRecord).where(
                        ScoreRecord.model_version == version, ScoreRecord.payload_hash.in_(hashes))):
                    existing[(r.deal_id, r.payload_hash, r.model_version)] = StoredScore.from_record(r)
            new_rows: dict[tuple[str, str, str], dict[str, Any]] = {}
            for it in items:
                key = (it.result.deal_id, it.payload_hash, it.result.model_version)
                if key not in existing and key not in new_rows:
                    new_rows[key] = _row(it, scored_at)
            if new_rows:
                s.execute(insert(ScoreRecord), list(new_rows.values()))
                s.flush()
                hashes = sorted({k[1] for k in new_rows})
                for r in s.scalars(select(ScoreRecord).where(ScoreRecord.payload_hash.in_(hashes))):
                    key = (r.deal_id, r.payload_hash, r.model_version)
                    if key in new_rows:
                        existing[key] = StoredScore.from_record(r)
                written = [it for it in items if (it.result.deal_id, it.payload_hash, it.result.model_version)
                           in new_rows]
                if recheck is not None:
                    events = recheck(_locked_states(s.connection(), [it.result.deal_id for it in written]))
                self._after_insert(s.connection(), written, scored_at, events)
            return [existing[(it.result.deal_id, it.payload_hash, it.result.model_version)] for it in items]

    # ------------------------------------------------------------------ reads

    def deal_scores(self, deal_id: str, *, limit: int = 100, with_timeline: bool = False) -> list[StoredScore]:
        """The deal's last ``limit`` scores, oldest first (by as-of time, then when scored).

        With ``with_timeline`` the latest of them also carries its touchpoints and
        stage changes (one more small read by primary key); the older ones never
        do, since a deal re-sent nightly would otherwise load its whole history
        once per score.
        """
        with self._session("read") as s:
            rows = s.scalars(
                select(ScoreRecord).where(ScoreRecord.deal_id == deal_id)
                .order_by(*_NEWEST_FIRST)
                .limit(limit)
            ).all()
            out = [StoredScore.from_record(r) for r in reversed(rows)]
            if with_timeline and out:
                touchpoints, stage_changes = s.execute(
                    select(ScoreRecord.touchpoints, ScoreRecord.stage_changes).where(ScoreRecord.id == out[-1].id)
                ).one()
                out[-1] = replace(out[-1], touchpoints=to_rows(touchpoints, TOUCHPOINT_FIELDS),
                                  stage_changes=to_rows(stage_changes, STAGE_CHANGE_FIELDS))
            return out

    def recent_p_wins(self, deal_ids: Sequence[str], *, n: int = 8) -> dict[str, list[float]]:
        """The last ``n`` win probabilities of some deals, oldest first (the list's trend lines)."""
        if not deal_ids:
            return {}
        ranked = select(
            ScoreRecord.deal_id, ScoreRecord.p_win,
            _newest_first_within_deal(),
        ).where(ScoreRecord.deal_id.in_(list(deal_ids))).subquery()
        out: dict[str, list[float]] = {d: [] for d in deal_ids}
        with self._session("read") as s:
            rows = s.execute(
                select(ranked.c.deal_id, ranked.c.p_win).where(ranked.c.rn <= n)
                .order_by(ranked.c.deal_id, ranked.c.rn.desc())
            )
            for deal_id, p in rows:
                out[deal_id].append(float(p))
        return out

    def latest_open_scores(self, filters: DealFilter, principal: Principal | None = None) -> list[StoredScore]:
        """The latest score of every open deal matching the filters and visible to the key (by deal id).

        Read through the ``deals`` rows, i.e. judged on who owns the deal now.
        """
        stmt = (select(ScoreRecord)
                .join(DealRecord, and_(DealRecord.deal_id == ScoreRecord.deal_id,
                                       DealRecord.payload_hash == ScoreRecord.payload_hash,
                                       DealRecord.model_version == ScoreRecord.model_version))
                .where(*_matching(filters, principal)).order_by(ScoreRecord.deal_id))
        with self._session("read") as s:
            return [StoredScore.from_record(r) for r in s.scalars(stmt).all()]

    def forecast_inputs(self, principal: Principal | None = None, *, currency: str | None = None) -> dict[str, Any]:
        """What the forecast reads of each open deal's latest score (of the deals in ``currency`` when given),
        one list per field, by deal id.

        The deals of :meth:`latest_open_scores` (no filters), read from their
        ``deals`` rows alone: team, owner, amount, ``p_win``, as-of time (naive UTC,
        one ``datetime64`` array) and the close outlook's bucket
        probabilities in their compact form (``close_pmf``), so no score's JSON is
        touched (:func:`dealscore.forecast.engine.pipeline_from_columns` reads them). A row
        whose ``close_pmf`` is not kept (written before revision 0006) takes the
        probabilities from its score's JSON, as a list: the same numbers.
        """
        wanted = list(_FORECAST_COLUMNS)
        as_text = _ISO_TEXT.get(self.engine.dialect.name)
        if as_text is not None:  # the as-of times as ISO text, parsed below for all rows at once
            wanted[_FORECAST_FIELDS.index("as_of")] = as_text(DealRecord.as_of)
        stmt = select(*wanted).where(*_matching(DealFilter(currency=currency), principal)).order_by(DealRecord.deal_id)
        with self._session("read") as s:
            rows = s.connection().execute(stmt).all()  # plain rows: no ORM loading for seven columns
            by_field = list(zip(*rows, strict=True)) or [()] * len(_FORECAST_FIELDS)  # transposed in C
            columns: dict[str, Any] = {name: list(values) for name, values in
                                       zip(_FORECAST_FIELDS, by_field, strict=True)}
            if as_text is not None:  # naive UTC, as the store writes them (numpy: well under a millisecond)
                columns["as_of"] = np.array(columns["as_of"], dtype="datetime64[us]")
            not_kept = [i for i, pmf in enumerate(columns["pmf"]) if pmf is None]
            if not_kept:
                from_json = _bucket_probabilities(s, [columns["deal_id"][i] for i in not_kept])
                for i in not_kept:
                    columns["pmf"][i] = from_json.get(columns["deal_id"][i])
        return columns

    def newest_fact(self) -> datetime | None:
        """The newest time the store knows anything at, over every deal (naive UTC; ``None`` when empty): the
        latest open score's as-of time or the latest close.

        The forecast is made at this time by default for every key, so that a team-limited key and the company
        forecast one moment (a key's own newest score would put two keys' forecasts at different times, even
        in different quarters), and a deal won after the newest score counts as booked, not as gone.
        """
        with self._session("read") as s:
            scored = s.execute(select(func.max(DealRecord.as_of)).where(DealRecord.is_open.is_(True))).scalar()
            closed = s.execute(select(func.max(DealRecord.closed_at)).where(DealRecord.is_open.is_(False))).scalar()
        found = [naive_utc(t) for t in (scored, closed) if t is not None]
        return max(found) if found else None

    def won_between(self, principal: Principal | None, since: datetime, until: datetime, *,
                    currency: str | None = None) -> dict[str, list[Any]]:
        """The deals the key sees that were won with a close time in ``[since, until]`` (in ``currency`` when
        given): the forecast's bookings already made this period, as a deals table's columns (``deal_id``,
        ``team``, ``owner_id``, ``amount``, ``closed_at``, ``currency``, ``outcome``)."""
        where = [DealRecord.outcome == "won", DealRecord.closed_at >= since, DealRecord.closed_at <= until,
                 *_visible(principal)]
        if currency is not None:
            where.append(DealRecord.currency == currency)
        stmt = (select(DealRecord.deal_id, DealRecord.team, DealRecord.owner_id, DealRecord.amount,
                       DealRecord.closed_at, DealRecord.currency).where(*where).order_by(DealRecord.deal_id))
        with self._session("read") as s:
            rows = s.connection().execute(stmt).all()
        names = ("deal_id", "team", "owner_id", "amount", "closed_at", "currency")
        by_field = list(zip(*rows, strict=True)) or [()] * len(names)
        columns: dict[str, list[Any]] = {n: list(v) for n, v in zip(names, by_field, strict=True)}
        columns["closed_at"] = [naive_utc(t) for t in columns["closed_at"]]
        columns["outcome"] = ["won"] * len(rows)
        return columns

    def forecast_fingerprint(self, principal: Principal | None = None) -> tuple[int, int, int]:
        """Count, sum and maximum of the ids of the rows :meth:`forecast_inputs` would return (one aggregate query).

        Score rows never change once written and ids only grow, so any change to
        that set of rows (a deal rescored, closed, reassigned, a new deal) changes
        this triple: a forecast cache keyed by it never serves a stale answer, and
        a hit costs this aggregate and the forecast time's and bookings' indexed reads (newest_fact, won_between)
        instead of reading five thousand rows.
        """
        ids = ScoreRecord.id
        stmt = _latest_open(select(func.count(ids), func.coalesce(func.sum(ids), 0), func.coalesce(func.max(ids), 0)),
                            principal, ordered=False)
        with self._session("read") as s:
            row = s.execute(stmt).one()
            return int(row[0]), int(row[1]), int(row[2])

    def list_page(self, req: ListRequest, principal: Principal | None = None) -> ListPageData:
        """One page of the open deals, filtered, ordered and paginated by the database.

        The totals cover every matching deal; the risk levels are relative to the
        filtered ranking (top decile ``high``), as :func:`dealscore.scoring.at_risk` sets them.
        Both are computed once per revision of ``deals`` for each filter and key
        (:mod:`~dealscore_service.store.derived`), so paging through an unchanged
        list reads only the page.

        The page is found on index entries alone (the deal ids in order: the rank
        indexes carry what the ranking and the API's other sorts read), then only
        its rows and their full results are read, by key.
        """
        where = _matching(req.filters, principal)
        page_where = where if req.include_not_at_risk else [*where, DealRecord.rank_group < NOT_AT_RISK]
        page = (select(DealRecord.deal_id).where(*page_where).order_by(*_order_by(req))
                .limit(req.limit).offset(req.offset))
        key = ("list", req.filters, _visibility_key(principal))
        with self._session("read") as s:
            revision = _deals_revision(s)  # before the summary, which then reflects this revision or a newer one
            summary: _ListSummary | None = self._derived.get(revision, key)
            if summary is None:
                summary = _list_summary(s, where)
                self._derived.put(revision, key, summary)
            ids = list(s.scalars(page)) if req.limit > 0 else []  # limit 0: the totals alone
            found = {r.deal_id: r for r in s.execute(_PAGE_ROWS, {"deal_ids": ids})} if ids else {}
        items = []
        for r in (found[d] for d in ids if d in found):
            result = ScoreResult.model_validate(r.result)
            if r.rank_group < NOT_AT_RISK:
                result = result.model_copy(update={"value_at_risk": r.value_at_risk, "priority": -r.rank_key,
                                                   "risk_level": _level(r, summary.thresholds)})
            items.append(ListedDeal(result=result, as_of=r.as_of, scored_at=r.scored_at,
                                    at_risk=r.rank_group < NOT_AT_RISK))
        return ListPageData(items=items, open_deals=summary.open_deals, at_risk=summary.at_risk,
                            pipeline_value=summary.pipeline_value, value_at_risk=summary.value_at_risk,
                            by_currency=summary.by_currency)

    def warm_up(self) -> None:
        """Do, before the first request, what the first look at the list would pay for.

        The unfiltered list's totals and cut-offs and the filter menus (kept under
        the current revision, see :meth:`list_page`), the statements' compiled
        forms, and the database pages of the rank and owner/team indexes: at
        200,000 deals the first ``/ui`` request after a start otherwise took
        several times as long as the next one. It also opens the pool's
        connections: otherwise the first burst of requests waits for new
        connections one after another (on PostgreSQL each one a backend process
        start), and on 2 cores that start-up backlog took seconds to drain.
        """
        self.list_page(ListRequest(limit=1))
        self.filter_choices()
        size = self.engine.pool.size() if isinstance(self.engine.pool, QueuePool) else 0
        # all at once, or the pool hands the same one back each time; a store gone meanwhile is a 503 as anywhere
        with self._guard("read"), ExitStack() as held:
            for _ in range(size):
                held.enter_context(self.engine.connect())

    def open_currencies(self, principal: Principal | None = None) -> list[str | None]:
        """The currencies of the open deals the key sees, largest pipeline first (``None``: scored without one).

        Read from the at-risk list's unfiltered totals per currency, which are kept
        per revision of the deals: no second pass over them (and at most
        ``totals_max_age`` old, like those totals).
        """
        return [t.currency for t in self.list_page(ListRequest(limit=0), principal).by_currency]

    def filter_choices(self, principal: Principal | None = None) -> tuple[list[tuple[str, str]], list[str]]:
        """The owners, as (id, name), and the teams of the open deals the key may see (the page's filter menus).

        An owner's name is the one on their deals' latest scores (the id when none carries one; the name and the
        id when two owners share the name, so that the menu tells them apart); owners are
        in name order, as the menu shows them. Kept per key while ``deals`` is unchanged, as the list's totals are.
        """
        # "open" through an expression the rank indexes cannot answer, so that the database reads the owner
        # (team) index in its own order, covering, rather than every open deal's row through the rank index
        # and a sort (SQLite at 200,000 deals: 30 ms against 670 ms); is_open is never NULL
        where = [func.coalesce(DealRecord.is_open, False).is_(True), *_visible(principal)]
        key = ("choices", _visibility_key(principal))
        with self._session("read") as s:
            revision = _deals_revision(s)
            choices: tuple[list[tuple[str, str]], list[str]] | None = self._derived.get(revision, key)
            if choices is None:
                owners = s.execute(select(DealRecord.owner_id, func.max(DealRecord.owner_name))
                                   .where(*where, DealRecord.owner_id.is_not(None))
                                   .group_by(DealRecord.owner_id).order_by(DealRecord.owner_id)).all()
                teams = s.scalars(select(DealRecord.team).where(*where, DealRecord.team.is_not(None))
                                  .distinct().order_by(DealRecord.team)).all()
                named = [(str(o), str(n) if n else str(o)) for o, n in owners]
                shared = {n for n, k in Counter(n for _, n in named).items() if k > 1}
                named = [(o, f"{n} ({o})" if n in shared and n != o else n) for o, n in named]
                choices = (sorted(named, key=lambda o: (o[1].casefold(), o[0])), [str(t) for t in teams])
                self._derived.put(revision, key, choices)
        return list(choices[0]), list(choices[1])

    def owner_teams_now(self) -> dict[str, str]:
        """Each owner's team now, over every open deal (:func:`~dealscore_service.store.placements.owner_teams`).

        Read from three columns of the open deals (no score JSON, no close outlook) and kept while ``deals`` is
        unchanged, as the list's totals are: a team key's by-owner forecast needs it on every request, and it
        grows with the company, not with the key's deals.
        """
        key = ("owner_teams",)
        with self._session("read") as s:
            revision = _deals_revision(s)
            teams: dict[str, str] | None = self._derived.get(revision, key)
            if teams is None:
                rows = s.connection().execute(
                    select(DealRecord.owner_id, DealRecord.team, DealRecord.as_of)
                    .where(DealRecord.is_open.is_(True), DealRecord.owner_id.is_not(None),
                           DealRecord.team.is_not(None))).all()
                owners, deal_teams, as_of = (list(c) for c in zip(*rows, strict=True)) if rows else ([], [], [])
                teams = owner_teams(owners, deal_teams, as_of)
                self._derived.put(revision, key, teams)
        return dict(teams)

    def previous_p_wins(self, deal_ids: Sequence[str], as_of: datetime) -> dict[str, float]:
        """Each deal's latest stored win probability as of ``as_of`` or earlier (what a new score is compared to)."""
        if not deal_ids:
            return {}
        with self._session("read") as s:
            return _previous_p_wins(s, deal_ids, as_of)

    def scores_in_force(self, deal_ids: Sequence[str], as_of: datetime) -> dict[str, StoredScore]:
        """Each deal's stored score in force at ``as_of``: its latest at or before that time (the one
        :meth:`previous_p_wins` reads), or, for a deal with none so old, its earliest.

        What the store knows of who owned a deal at a past time: it learns of an owner or a team only from the
        scores that carry them, so the deal had those of its score in force until a later score said otherwise.
        Before its first stored score the store knows nothing older; the earliest is the nearest it knows.
        """
        if not deal_ids:
            return {}
        before = ScoreRecord.as_of <= naive_utc(as_of)
        # the latest at or before as_of first (newest first), then the later ones, oldest first; scores of one
        # as-of time are ranked by _NEWEST_FIRST's own tie-break, as everywhere else in the store
        order = (case((before, 0), else_=1), case((before, ScoreRecord.as_of)).desc(), ScoreRecord.as_of,
                 *_NEWEST_FIRST[1:])
        rn = func.row_number().over(partition_by=ScoreRecord.deal_id, order_by=order).label("rn")
        out: dict[str, StoredScore] = {}
        with self._session("read") as s:
            ids = sorted(set(deal_ids))
            for i in range(0, len(ids), 500):
                ranked = select(ScoreRecord.id, rn).where(ScoreRecord.deal_id.in_(ids[i:i + 500])).subquery()
                for r in s.scalars(select(ScoreRecord).where(ScoreRecord.id.in_(
                        select(ranked.c.id).where(ranked.c.rn == 1)))):
                    out[r.deal_id] = StoredScore.from_record(r)
        return out

    def end_session(self, session_hash: str, expires_at: datetime, *, now: datetime | None = None) -> None:
        """Mark a web page session as signed out (every worker refuses its cookie from now on)."""
        current = naive_utc(now or datetime.now(UTC))
        with self._session("save") as s, s.begin():
            s.execute(delete(EndedSessionRecord).where(EndedSessionRecord.expires_at < current))
            if s.get(EndedSessionRecord, session_hash) is None:
                s.add(EndedSessionRecord(session_hash=session_hash, expires_at=naive_utc(expires_at)))

    def session_ended(self, session_hash: str) -> bool:
        """Whether a web page session was signed out."""
        with self._session("read") as s:
            return s.get(EndedSessionRecord, session_hash) is not None

    def count(self) -> int:
        """Number of stored scores (tests and the demo use it)."""
        with self._session("read") as s:
            return int(s.scalar(select(func.count()).select_from(ScoreRecord)) or 0)


# The statements made on every score, built once: constructing a SELECT and computing its cache
# key costs more than SQLite takes to answer it. Values arrive as bound (expanding) parameters.
_FIND = select(ScoreRecord).where(
    ScoreRecord.deal_id.in_(bindparam("deal_ids", expanding=True)),
    ScoreRecord.payload_hash.in_(bindparam("hashes", expanding=True)),
    ScoreRecord.model_version == bindparam("version"),
)
_REVISION = select(DealsRevisionRecord.revision).where(DealsRevisionRecord.id == 1)
_BUMP_REVISION = (update(DealsRevisionRecord).where(DealsRevisionRecord.id == 1)
                  .values(revision=DealsRevisionRecord.revision + 1))
# A list page's rows and their latest full results, by deal id: the deals' primary key, then the scores'
# unique key (deal, hash, version), a seek per deal. Joined rather than a row-value IN over the three
# columns, which SQLite answers by scanning every score, and rather than by deal id alone, which would read
# and decode every stored score of the page's deals (five per deal at 1,000,000 scores).
_PAGE_ROWS = (
    select(DealRecord.deal_id, DealRecord.rank_group, DealRecord.rank_key, DealRecord.value_at_risk,
           DealRecord.as_of, DealRecord.scored_at, ScoreRecord.result)
    .join(ScoreRecord, and_(ScoreRecord.deal_id == DealRecord.deal_id,
                            ScoreRecord.payload_hash == DealRecord.payload_hash,
                            ScoreRecord.model_version == DealRecord.model_version))
    .where(DealRecord.deal_id.in_(bindparam("deal_ids", expanding=True)))
)


def _in_force_query(column: Any) -> Any:
    """``column`` of a deal's score in force at a time (binds ``deal_id``, ``as_of``): its newest as of then
    (:data:`_NEWEST_FIRST`), one seek on ix_scores_deal_latest."""
    return (select(column).where(ScoreRecord.deal_id == bindparam("deal_id"), ScoreRecord.as_of <= bindparam("as_of"))
            .order_by(*_NEWEST_FIRST).limit(1))


_LATEST_P_WIN = _in_force_query(ScoreRecord.p_win)

#: The hash of the payload a score answered (:attr:`ScoreRecord.content_hash`, ``NULL`` before migration 0009).
_CONTENT = func.coalesce(ScoreRecord.content_hash, ScoreRecord.payload_hash)

#: What scoring one deal reads, in one statement: the deal's stored state (owner, team, open or closed), the id
#: of a stored score under this payload's key (the key is then taken), and its score in force as of the request
#: (id, payload it answered, model, win probability). Every stored score has its deal's row (written in the same
#: transaction; migration 0004 filled it for older stores), so a deal without one has no score either.
_STORED_ID = select(ScoreRecord.id).where(ScoreRecord.deal_id == bindparam("deal_id"),
                                          ScoreRecord.payload_hash == bindparam("hash"),
                                          ScoreRecord.model_version == bindparam("version"))
_ONE_DEAL = select(
    *_DEAL_STATE_COLUMNS,
    _STORED_ID.scalar_subquery().label("stored_id"),
    _in_force_query(ScoreRecord.id).scalar_subquery().label("in_force_id"),
    _in_force_query(_CONTENT).scalar_subquery().label("in_force_content"),
    _in_force_query(ScoreRecord.model_version).scalar_subquery().label("in_force_version"),
    _LATEST_P_WIN.scalar_subquery().label("previous_p_win"),
).where(DealRecord.deal_id == bindparam("deal_id"))


def _one_deal(s: Session, key: tuple[str, str], model_version: str, as_of: datetime) -> Lookup:
    """:meth:`ScoreStore.lookup` of one (deal, payload hash): one round trip, a second only for a replay."""
    deal_id, payload_hash = key
    row = s.execute(_ONE_DEAL, {"deal_id": deal_id, "hash": payload_hash, "version": model_version,
                                "as_of": naive_utc(as_of)}).one_or_none()
    if row is None:
        return Lookup({}, {}, {}, {key: payload_hash})
    state = DealState.from_record(row)
    if row.in_force_id is not None and (row.in_force_content, row.in_force_version) == (payload_hash, model_version):
        record = s.get(ScoreRecord, row.in_force_id)
        if record is not None:
            return Lookup({key: StoredScore.from_record(record)}, {}, {deal_id: state}, {})
    previous = {} if row.previous_p_win is None else {deal_id: float(row.previous_p_win)}
    return Lookup({}, previous, {deal_id: state},
                  {key: _key_to_store(payload_hash, row.stored_id is not None, row.in_force_id)})


def _key_to_store(content_hash: str, taken: bool, in_force_id: int | None) -> str:
    """The key a fresh score of a payload is stored under: its hash, or, when a score of the same payload is
    stored already (``taken``: the deal came back to it), :func:`returned_hash` of it and the score in force."""
    return returned_hash(content_hash, in_force_id or 0) if taken else content_hash


def returned_hash(content_hash: str, after_id: int) -> str:
    """The key of a payload stored again after another score of its deal (``after_id``, the score it follows).

    Unique per (payload, score followed): two workers racing to store the same return both compute it, and
    the unique key keeps one row, as for any duplicate.
    """
    return hashlib.sha256(f"{content_hash}:after:{after_id}".encode()).hexdigest()


@dataclass(frozen=True)
class _InForce:
    id: int
    p_win: float
    content: str
    model_version: str


def _in_force(s: Session, deal_ids: Sequence[str], as_of: datetime) -> dict[str, _InForce]:
    """Each deal's score in force at ``as_of`` (none: never scored by then)."""
    out: dict[str, _InForce] = {}
    for i in range(0, len(deal_ids), 500):
        ranked = select(
            ScoreRecord.deal_id, ScoreRecord.id, ScoreRecord.p_win, _CONTENT.label("content"),
            ScoreRecord.model_version, _newest_first_within_deal(),
        ).where(ScoreRecord.deal_id.in_(list(deal_ids[i:i + 500])), ScoreRecord.as_of <= naive_utc(as_of)).subquery()
        for r in s.execute(select(ranked).where(ranked.c.rn == 1)):
            out[r.deal_id] = _InForce(int(r.id), float(r.p_win), str(r.content), str(r.model_version))
    return out


def _by_id(s: Session, ids: Mapping[tuple[str, str], int]) -> dict[tuple[str, str], StoredScore]:
    """Stored scores by id, under the keys given."""
    if not ids:
        return {}
    rows = {r.id: StoredScore.from_record(r) for r in s.scalars(select(ScoreRecord).where(
        ScoreRecord.id.in_(sorted(set(ids.values())))))}
    return {k: rows[i] for k, i in ids.items() if i in rows}


@functools.cache
def _upsert(dialect: str) -> Any:
    """The INSERT that skips rows already stored under the unique key, built once per database kind."""
    return _UPSERT_INSERTS[dialect](ScoreRecord.__table__).on_conflict_do_nothing(index_elements=_SCORE_KEY)


def _find(s: Session, keys: Sequence[tuple[str, str]], model_version: str) -> dict[tuple[str, str], StoredScore]:
    # by deal id as well as hash, so the unique key's index (deal, hash, version) answers it:
    # hash and version alone would scan the whole table on every request
    wanted = set(keys)
    pairs = sorted(wanted)
    out: dict[tuple[str, str], StoredScore] = {}
    for i in range(0, len(pairs), 500):
        chunk = pairs[i:i + 500]
        rows = s.scalars(_FIND, {"deal_ids": sorted({d for d, _ in chunk}), "hashes": sorted({h for _, h in chunk}),
                                 "version": model_version})
        for r in rows:
            if (r.deal_id, r.payload_hash) in wanted:
                out[(r.deal_id, r.payload_hash)] = StoredScore.from_record(r)
    return out


def _previous_p_wins(s: Session, deal_ids: Sequence[str], as_of: datetime) -> dict[str, float]:
    if len(deal_ids) == 1:
        # one deal (the single-score endpoint): its latest score is one seek on ix_scores_deal_latest,
        # where ranking all of the deal's scores would sort them on every request
        p = s.scalar(_LATEST_P_WIN, {"deal_id": deal_ids[0], "as_of": naive_utc(as_of)})
        return {} if p is None else {deal_ids[0]: float(p)}
    return {d: f.p_win for d, f in _in_force(s, deal_ids, as_of).items()}


_DEAL_ROW_COLUMNS = (
    "owner_id", "team", "account_id", "deal_name", "account_name", "owner_name",
    "payload_hash", "model_version", "as_of", "scored_at", "amount", "currency",
    "declared_stage", "inferred_stage", "p_win", "value_at_risk", "rank_group", "rank_key", "close_pmf",
)


@functools.cache
def _deal_upsert(dialect: str) -> Any:
    """INSERT of a deal's row, or UPDATE to the new score when it is at least as new as the stored one.

    A closed deal stays closed: its outcome decides, not the score.
    """
    ins = _UPSERT_INSERTS[dialect](DealRecord.__table__)
    t, ex = DealRecord.__table__.c, ins.excluded
    newer = (ex.as_of > t.as_of) | ((ex.as_of == t.as_of) & (ex.scored_at >= t.scored_at))
    values: dict[str, Any] = {c: ex[c] for c in _DEAL_ROW_COLUMNS}
    values["created_at"] = func.coalesce(ex.created_at, t.created_at)  # a score saved without it keeps the known one
    values["is_open"] = case((t.outcome.is_(None), ex.is_open), else_=False)
    return ins.on_conflict_do_update(index_elements=["deal_id"], set_=values, where=newer)


def _deal_row(item: ScoreToSave, scored_at: datetime) -> dict[str, Any]:
    r = item.result
    rank = rank_of(r)
    return {
        "deal_id": r.deal_id, "owner_id": r.owner_id, "team": r.team, "account_id": r.account_id,
        "deal_name": r.deal_name, "account_name": r.account_name, "owner_name": r.owner_name,
        "is_open": item.is_open, "outcome": None, "closed_at": None, "outcome_recorded_at": None,
        "payload_hash": item.payload_hash, "model_version": r.model_version, "as_of": naive_utc(r.as_of),
        "scored_at": scored_at, "amount": r.amount, "currency": r.currency, "declared_stage": r.declared_stage,
        "inferred_stage": r.inferred_stage, "p_win": float(r.p_win), "value_at_risk": rank.value_at_risk,
        "rank_group": rank.group, "rank_key": rank.key,
        "close_pmf": pmf_bytes(None if r.close_outlook is None else r.close_outlook.bucket_probabilities),
        "created_at": None if item.created_at is None else naive_utc(item.created_at),
    }


def _is_latest_of_deal() -> ColumnElement[bool]:
    """The score is its deal's latest (the one the ``deals`` row points at)."""
    return exists().where(DealRecord.deal_id == ScoreRecord.deal_id,
                          DealRecord.payload_hash == ScoreRecord.payload_hash,
                          DealRecord.model_version == ScoreRecord.model_version)


_DROP_OLD_TIMELINES = (
    update(ScoreRecord)
    .where(ScoreRecord.deal_id.in_(bindparam("deal_ids", expanding=True)),
           ScoreRecord.touchpoints.is_not(None) | ScoreRecord.stage_changes.is_not(None),
           ~_is_latest_of_deal())
    .values(touchpoints=None, stage_changes=None)
    .execution_options(synchronize_session=False)
)
_RETAINED = select(
    ScoreRecord.id, _newest_first_within_deal(),
).where(ScoreRecord.deal_id.in_(bindparam("deal_ids", expanding=True))).subquery()
_DROP_BEYOND_RETENTION = (
    delete(ScoreRecord)
    .where(ScoreRecord.id.in_(select(_RETAINED.c.id).where(_RETAINED.c.rn > bindparam("keep"))))
    .execution_options(synchronize_session=False)
)


def _deal_states(s: Session | Connection, deal_ids: list[str], *, for_update: bool = False) -> dict[str, DealState]:
    out: dict[str, DealState] = {}
    for i in range(0, len(deal_ids), 500):
        stmt = select(*_DEAL_STATE_COLUMNS).where(DealRecord.deal_id.in_(deal_ids[i:i + 500]))
        for r in s.execute(stmt.with_for_update() if for_update else stmt):
            out[r.deal_id] = DealState.from_record(r)
    return out


#: Serialises PostgreSQL writers of the same deals until their commit, whether or not the deals' rows exist yet
#: (a row lock cannot be taken on a deal not yet stored): one transaction-level advisory lock per deal, in key
#: order (no deadlock between two batches), in a key space of the store's own (the first argument).
_LOCK_DEALS = text(
    "SELECT pg_advisory_xact_lock(20251, k) FROM "
    "(SELECT DISTINCT hashtext(d) AS k FROM unnest(CAST(:deal_ids AS text[])) AS d ORDER BY k) AS locks"
)


def _locked_states(conn: Connection, deal_ids: Sequence[str]) -> dict[str, DealState]:
    """The stored states of the deals a write transaction is about to change, held until it commits.

    SQLite: the write has already taken the database's one write lock (the scores' INSERT comes first), so
    no other writer can commit before this one. PostgreSQL: concurrent writers of the same deals wait for
    each other's commit on :data:`_LOCK_DEALS`, and the existing rows are locked too (an outcome recorded
    meanwhile waits, or is read). What this returns is therefore what the write will change.
    """
    ids = sorted(set(deal_ids))
    if not ids:
        return {}
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        conn.execute(_LOCK_DEALS, {"deal_ids": ids})
    return _deal_states(conn, ids, for_update=postgres)


#: A datetime column as ISO text, per database: SQLite stores it so; PostgreSQL formats it (explicitly, whatever
#: the server's DateStyle). Building a datetime object per row, then parsing them again, cost more than the read.
_ISO_TEXT: dict[str, Any] = {
    "sqlite": lambda col: type_coerce(col, String()),
    "postgresql": lambda col: func.to_char(col, 'YYYY-MM-DD"T"HH24:MI:SS.US'),
}
#: What :meth:`ScoreStore.forecast_inputs` reads of each open deal's row, and the names it gives them.
_FORECAST_COLUMNS = (DealRecord.deal_id, DealRecord.team, DealRecord.owner_id, DealRecord.amount, DealRecord.p_win,
                     DealRecord.as_of, DealRecord.close_pmf)
_FORECAST_FIELDS = ("deal_id", "team", "owner_id", "amount", "p_win", "as_of", "pmf")


def _bucket_probabilities(s: Session, deal_ids: list[str]) -> dict[str, list[float] | None]:
    """The close outlook's bucket probabilities in the JSON of these deals' latest scores (a JSON path per row)."""
    buckets = ScoreRecord.result["close_outlook"]["bucket_probabilities"]
    out: dict[str, list[float] | None] = {}
    for i in range(0, len(deal_ids), 500):
        stmt = (select(ScoreRecord.deal_id, buckets)
                .join(DealRecord, and_(DealRecord.deal_id == ScoreRecord.deal_id,
                                       DealRecord.payload_hash == ScoreRecord.payload_hash,
                                       DealRecord.model_version == ScoreRecord.model_version))
                .where(DealRecord.deal_id.in_(deal_ids[i:i + 500])))
        out.update((d, b) for d, b in s.execute(stmt))
    return out


def _visible(principal: Principal | None) -> list[ColumnElement[bool]]:
    """The tenant boundary as a condition on ``deals``: a limited key sees its owners' and teams' deals."""
    if principal is None or not principal.limited:
        return []
    return [or_(DealRecord.owner_id.in_(sorted(principal.owners)), DealRecord.team.in_(sorted(principal.teams)))]


def _latest_open(stmt: Any, principal: Principal | None, *, ordered: bool = True) -> Any:
    """``stmt`` over the latest score of every open deal visible to the key (the forecast's rows)."""
    stmt = (stmt.select_from(ScoreRecord)
            .join(DealRecord, and_(DealRecord.deal_id == ScoreRecord.deal_id,
                                   DealRecord.payload_hash == ScoreRecord.payload_hash,
                                   DealRecord.model_version == ScoreRecord.model_version))
            .where(*_matching(DealFilter(), principal)))
    return stmt.order_by(ScoreRecord.deal_id) if ordered else stmt


def _matching(filters: DealFilter, principal: Principal | None) -> list[ColumnElement[bool]]:
    """Open deals matching the filters and visible to the key."""
    where: list[ColumnElement[bool]] = [DealRecord.is_open.is_(True), *_visible(principal)]
    if filters.owner is not None:
        where.append(DealRecord.owner_id == filters.owner)
    if filters.team is not None:
        where.append(DealRecord.team == filters.team)
    if filters.declared_stage is not None:
        where.append(DealRecord.declared_stage == filters.declared_stage)
    if filters.min_amount is not None:
        where.append(DealRecord.amount >= filters.min_amount)
    if filters.currency is not None:
        where.append(DealRecord.currency == filters.currency)
    return where


def _order_by(req: ListRequest) -> list[Any]:
    """The ORDER BY of a list page; every order ends on the deal id, so pages tile."""
    desc = req.order == "desc"
    if req.sort == "rank":
        if desc:
            return [DealRecord.rank_group.asc(), DealRecord.rank_key.asc(), DealRecord.deal_id.asc()]
        return [DealRecord.rank_group.desc(), DealRecord.rank_key.desc(), DealRecord.deal_id.desc()]
    col: Any = SORT_COLUMNS[req.sort]
    if req.sort in ("declared_stage", "inferred_stage") and req.stage_order is not None:
        known = case(*((col == name, literal(i)) for name, i in req.stage_order.items()), else_=literal(9_999))
        col = case((col.is_(None), literal(None)), else_=known) if req.stage_order else col
    return [col.is_(None).asc(), col.desc() if desc else col.asc(),
            DealRecord.deal_id.desc() if desc else DealRecord.deal_id.asc()]


@dataclass(frozen=True)
class _ListSummary:
    """What a list page shows besides its rows, over every deal matching its filters and visible to the key."""

    open_deals: int
    pipeline_value: float
    at_risk: int
    value_at_risk: float
    #: the last (rank key, deal id) of the ``high`` and of the ``medium`` level (:func:`_level`)
    thresholds: tuple[tuple[float, str], ...]
    by_currency: tuple[CurrencyTotals, ...] = ()


def _list_summary(s: Session, where: list[ColumnElement[bool]]) -> _ListSummary:
    """The totals and the risk-level cut-offs of the deals matching ``where`` (a scan of their index entries)."""
    # one definition of each figure for the flat totals and the per-currency ones, so the latter add up to the former
    at_risk_flag = DealRecord.rank_group < NOT_AT_RISK
    pipeline_sum = func.coalesce(func.sum(DealRecord.amount), 0.0)
    at_risk_count = func.coalesce(func.sum(case((at_risk_flag, 1), else_=0)), 0)
    at_risk_sum = func.coalesce(func.sum(case((at_risk_flag, DealRecord.value_at_risk), else_=0.0)), 0.0)
    totals = select(
        func.count(), pipeline_sum, at_risk_count,
        func.coalesce(func.sum(case((DealRecord.rank_group == 0, 1), else_=0)), 0),
        at_risk_sum,
        func.min(DealRecord.currency), func.max(DealRecord.currency), func.count(DealRecord.currency),
    ).where(*where)
    n_open, pipeline, n_risk, n_amount, var, lowest, highest, n_with = s.execute(totals).one()
    if lowest == highest and n_with in (0, n_open):  # one currency (or none given): these totals are its totals
        by_currency = [CurrencyTotals(currency=lowest, open_deals=int(n_open), pipeline_value=float(pipeline),
                                      value_at_risk=float(var), deals_at_risk=int(n_risk))] if n_open else []
    else:  # mixed: summed per currency (a GROUP BY's sort of index entries, only for lists that need it)
        per_currency = (select(DealRecord.currency, func.count(), pipeline_sum, at_risk_sum, at_risk_count)
                        .where(*where).group_by(DealRecord.currency))
        by_currency = sorted((CurrencyTotals(currency=c, open_deals=int(n), pipeline_value=float(p),
                                             value_at_risk=float(v), deals_at_risk=int(r))
                              for c, n, p, v, r in s.execute(per_currency)),
                             key=lambda t: (-t.pipeline_value, t.currency or ""))
    return _ListSummary(open_deals=int(n_open), pipeline_value=float(pipeline), at_risk=int(n_risk),
                        value_at_risk=float(var), by_currency=tuple(by_currency),
                        thresholds=_level_thresholds(s, where, level_bounds(int(n_amount))))


def _level_thresholds(
    s: Session, where: list[ColumnElement[bool]], bounds: tuple[int, int],
) -> tuple[tuple[float, str], ...]:
    """The last deal (rank key, deal id) of the ``high`` and of the ``medium`` level in the filtered ranking.

    ``bounds`` come from a count taken in an earlier statement (each statement of a read sees its own
    snapshot): deals closed or moved in between can leave fewer than ``n`` ranked entries. The level then
    ends at the ranking's last entry (every deal still ranked is within the top ``n``), never an error.
    """
    ranked = select(DealRecord.rank_key, DealRecord.deal_id).where(*where, DealRecord.rank_group == 0)
    out = []
    for n in bounds:
        if n <= 0:
            out.append((float("inf"), ""))
            continue
        row = s.execute(ranked.order_by(DealRecord.rank_key.asc(), DealRecord.deal_id.asc())
                        .limit(1).offset(n - 1)).first()
        if row is None:
            row = s.execute(ranked.order_by(DealRecord.rank_key.desc(), DealRecord.deal_id.desc()).limit(1)).first()
        if row is None:  # nothing ranked any more: no listed deal is levelled by this cut
            out.append((float("inf"), ""))
            continue
        out.append((float(row[0]), str(row[1])))
    return tuple(out)


def _deals_revision(s: Session) -> int | None:
    """The ``deals`` table's revision (``None`` if its row is missing: then nothing is reused)."""
    return s.scalar(_REVISION)


def _visibility_key(principal: Principal | None) -> Hashable:
    """What of the key decides which deals it sees (:func:`_visible`), as part of a cache key."""
    if principal is None or not principal.limited:
        return None
    return principal.owners, principal.teams


def _level(row: Any, thresholds: list[tuple[float, str]]) -> str | None:
    """A listed deal's risk level: at or above the high cut ``high``, then ``medium``; without an amount ``low``."""
    if row.rank_group == NOT_AT_RISK:
        return None
    if row.rank_group == AT_RISK_NO_AMOUNT:
        return "low"
    for level, (value, deal_id) in zip(("high", "medium"), thresholds, strict=True):
        if row.rank_key < value or (row.rank_key == value and row.deal_id <= deal_id):
            return level
    return "low"


def _row(item: ScoreToSave, scored_at: datetime) -> dict[str, Any]:
    r = item.result
    return {
        "deal_id": r.deal_id, "payload_hash": item.payload_hash, "content_hash": item.content_hash or item.payload_hash,
        "model_version": r.model_version, "as_of": naive_utc(r.as_of), "scored_at": scored_at,
        "account_id": r.account_id, "owner_id": r.owner_id,
        "team": r.team, "amount": r.amount, "declared_stage": r.declared_stage, "inferred_stage": r.inferred_stage,
        "stage_mismatch": r.stage_mismatch, "p_win": float(r.p_win), "grade": r.grade,
        "value_at_risk": r.value_at_risk, "is_open": item.is_open, "warnings": [w.code for w in r.warnings],
        "result": r.model_dump(mode="json"), "touchpoints": item.touchpoints, "stage_changes": item.stage_changes,
    }


__all__ = ["DealFilter", "Lookup", "ScoreStore", "ScoreToSave", "StoredScore", "returned_hash"]
