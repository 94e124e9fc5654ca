"""``POST /v1/score`` and ``POST /v1/score/batch``: score deals, store every score.

The flow is the same for one deal and a thousand: authorize each deal against
the key's owners/teams, validate the payload through the library into a
``DealHistory``, return stored results for payloads already scored by this
model version (idempotency), score the rest with the loaded ``Scorer``, and
persist them, with the touchpoints and stage changes they were scored on (the
deal page's timeline), in one transaction before answering.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache, partial

from fastapi import APIRouter, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from dealscore.errors import StoreUnavailableError
from dealscore.models.data_fit import data_mismatch
from dealscore.scoring import value_at_risk
from dealscore.scoring.result import ScoreResult
from dealscore.taxonomy import StageTaxonomy, default_taxonomy
from dealscore.times import naive_utc
from dealscore_service.auth import Principal
from dealscore_service.deps import ScoreKey, Services, ServicesDep
from dealscore_service.errors import DealChangedError, DealClosedError, PermissionDeniedError
from dealscore_service.jsonbody import StrictJSONRoute
from dealscore_service.model_loader import LoadedModel
from dealscore_service.payload import ConvertedDeals, to_history
from dealscore_service.schemas import (
    BatchScoreRequest,
    BatchScoreResponse,
    DealPayload,
    ScoreRequest,
    ScoreResponse,
    SentTime,
    api_result,
    error_responses,
    ignored_fields,
)
from dealscore_service.store import DealEvent, DealState, ScoreToSave, StoredScore
from dealscore_service.store.timeline import deal_timelines

router = APIRouter(prefix="/v1", tags=["score"], route_class=StrictJSONRoute)


@lru_cache(maxsize=1)
def _default_taxonomy() -> StageTaxonomy:
    return default_taxonomy()


def _authorize_payload(principal: Principal, deals: Sequence[DealPayload], batch: bool) -> None:
    """A team- or owner-limited key may only send deals of its own owners or teams (checked before parsing)."""
    for i, d in enumerate(deals):
        if not principal.can_see(d.owner_id, d.team):
            where = f"deals[{i}] " if batch else ""
            raise PermissionDeniedError(
                f"the API key {principal.name!r} may not score {where}deal {d.deal_id!r} "
                f"(owner {d.owner_id!r}, team {d.team!r}): it is limited to other owners or teams",
                fix="use a key allowed for this owner or team",
            )


def _authorize(
    principal: Principal, deals: Sequence[DealPayload], states: dict[str, DealState], batch: bool,
) -> list[DealEvent]:
    """The tenant boundary on writes, judged on the STORED owner and team of each deal, not the payload's.

    A limited key may create deals of its owners/teams, and re-score deals it
    may see now. Changing a stored deal's owner or team is a move: it needs a
    key that may see the deal both before and after (an admin key, an
    unlimited key, or one limited to both teams), and is recorded as an event.
    A closed deal is not scored again. Returns the moves to record.
    """
    moves: list[DealEvent] = []
    for i, d in enumerate(deals):
        where = f"deals[{i}] " if batch else ""
        state = states.get(d.deal_id)
        if state is not None and not principal.can_see(state.owner_id, state.team):
            raise PermissionDeniedError(
                f"the API key {principal.name!r} may not score {where}deal {d.deal_id!r}: the stored deal "
                "belongs to an owner or team this key is not allowed to see",
                fix="use a key allowed for the deal's current owner or team; an admin key moves a deal between teams",
            )
        if state is None:
            continue
        if not state.is_open:
            raise DealClosedError(
                f"{where}deal {d.deal_id!r} was closed ({state.outcome or 'closed'}"
                + (f" on {state.closed_at:%Y-%m-%d}" if state.closed_at else "") + "); closed deals are not scored",
                fix="stop sending the deal; a deal reopened in the CRM needs a new deal id",
            )
        if (state.owner_id, state.team) != (d.owner_id, d.team):
            moves.append(DealEvent(d.deal_id, "moved", principal.name, {
                "from": {"owner_id": state.owner_id, "team": state.team},
                "to": {"owner_id": d.owner_id, "team": d.team}}))
    return moves


def _authorize_again(
    principal: Principal, deals: Sequence[DealPayload], states: dict[str, DealState], batch: bool,
    written: dict[str, DealState], *, as_of: datetime, backfills: Sequence[str],
) -> list[DealEvent]:
    """:func:`_authorize` inside the write's transaction, on the stored states of the deals it writes.

    The first check read the states before the deals were scored; another request
    may since have created, moved or closed one (two teams' keys sending the same
    new deal id at once both passed it, and the deal ended in whichever team wrote
    last). The store holds these states until the commit (``ScoreStore.add``), so
    what is judged here is what the write changes. A deal no longer this key's to
    score is a 409 (the request was valid when it came); the moves to record are
    the ones against these states. So is a deal that another request scored at a
    later time meanwhile, making this score a back-fill stored under the payload's
    owner and team (:func:`_owned`): sent again, it is stored as one.
    """
    now = {**states, **written}
    try:
        moves = _authorize(principal, deals, now, batch)
    except PermissionDeniedError as exc:
        raise DealChangedError(
            f"another request created or moved the deal while this one was scored, and nothing was written: "
            f"{exc.message}",
            fix=exc.detail.get("fix"),
        ) from exc
    late = sorted(set(_backfills(now, written, as_of)) - set(backfills))
    if late:
        raise DealChangedError(
            f"another request scored deal {late[0]!r} at a later as-of time while this one was scored, and nothing "
            "was written",
            fix="send the request again",
        )
    return moves


def _backfills(states: dict[str, DealState], deal_ids: Iterable[str], as_of: datetime) -> list[str]:
    """The deals of ``deal_ids`` scored at an as-of time older than their latest stored score's (a back-fill)."""
    when = naive_utc(as_of)
    return [d for d in deal_ids
            if (s := states.get(d)) is not None and s.as_of is not None and when < naive_utc(s.as_of)]


def _authorize_backfill(
    principal: Principal, deals: Sequence[DealPayload], then: dict[str, StoredScore], as_of: datetime, batch: bool,
) -> None:
    """A back-fill is stored under the owner and team the deal had then (:func:`_owned`): the key must be
    allowed for them, not only for the deal's current ones. A key limited to the team a deal moved to would
    otherwise write into the history of the team it came from, and read its owner and team in the answer."""
    for i, d in enumerate(deals):
        old = then.get(d.deal_id)
        if old is not None and not principal.can_see(old.owner_id, old.team):
            where = f"deals[{i}] " if batch else ""
            raise PermissionDeniedError(
                f"the API key {principal.name!r} may not back-fill {where}deal {d.deal_id!r} as of "
                f"{naive_utc(as_of):%Y-%m-%d}: the deal belonged then to an owner or team this key is not allowed "
                "to see",
                fix="leave out the scores from before the deal came to this key's owners or teams, or send them "
                    "with a key allowed for both (an admin key)",
            )


def _owned(result: ScoreResult, d: DealPayload, then: StoredScore | None) -> ScoreResult:
    """The result as stored: under the payload's owner and team, or a back-fill's under the deal's at the time.

    The payload is the authority on who owns a deal now: a newer score under
    another owner or team moves it (:func:`_authorize`, recorded as an event),
    and access control reads the stored owner and team. A back-fill (``then``:
    the deal's score in force at its as-of time, ``ScoreStore.scores_in_force``)
    moves nothing, and its payload usually carries the CRM's current owner and
    team rather than those of its as-of time: stored under them, the history of
    a deal moved since would show it in its new team before it came there. So a
    back-fill keeps the owner and team the store knows the deal had then, and
    its result says so when the payload said otherwise (an answer and a stored
    notice, not a refusal: back-filling a batch of moved deals must not fail on
    what every CRM export carries).
    """
    update: dict[str, object] = {"owner_id": d.owner_id, "team": d.team,
                                 "account_id": result.account_id or d.account_id}
    if then is not None and (then.owner_id, then.team) != (d.owner_id, d.team):
        as_of, old = naive_utc(result.as_of), naive_utc(then.as_of)
        known = (f"its score in force then, as of {old:%Y-%m-%d}" if old <= as_of
                 else f"its earliest stored score, as of {old:%Y-%m-%d}; the store knows no older one")
        update.update(owner_id=then.owner_id, team=then.team, notices=[*result.notices, (
            f"Back-fill: scored as of {as_of:%Y-%m-%d}, before the deal's latest score, so stored under owner "
            f"{then.owner_id!r} and team {then.team!r}, the deal's at the time ({known}), not the payload's owner "
            f"{d.owner_id!r} and team {d.team!r}; a back-fill does not move a deal.")])
        if then.owner_id != d.owner_id:  # the payload's owner name is another person's
            update["owner_name"] = then.result.get("owner_name")
    return result.model_copy(update=update)


def _score_fresh(
    model: LoadedModel, converted: ConvertedDeals, deal_ids: list[str], previous: dict[str, float],
) -> dict[str, ScoreResult]:
    """Score the deals not scored before: the full result (reasons, warnings, actions) for each.

    One deal goes through ``Scorer.score``; a batch through ``score_many`` (one
    vectorised pass). The deal's previous stored score is attached so that a drop
    counts in its at-risk priority, as the at-risk ranking counts it.
    """
    if not deal_ids:
        return {}
    history = converted.history
    if len(history.deals) == 1:
        results = [model.scorer.score(history, as_of=converted.as_of)]
    else:
        results = model.scorer.score_many(history, converted.as_of, explain=True, actions=True, deal_ids=deal_ids)
    out: dict[str, ScoreResult] = {}
    for r in results:
        prev = previous.get(r.deal_id)
        if prev is not None:
            var = value_at_risk(r.amount, r.p_win, r.stage_typical_p_win)
            r = r.model_copy(update={"previous_p_win": prev, "value_at_risk": var})
        out[r.deal_id] = r
    return out


def _with_notices(model: LoadedModel, converted: ConvertedDeals, fresh: dict[str, ScoreResult]) -> None:
    """Say what the service did to each payload, and whether the model knows data like it (stored with the score)."""
    mismatch = data_mismatch(model.bundle.history_stats, converted.history) if fresh else None
    for deal_id, r in fresh.items():
        notes = [*converted.notices.get(deal_id, []), *([mismatch.message] if mismatch else [])]
        if notes:
            fresh[deal_id] = r.model_copy(update={"notices": notes})


def score_deals(
    services: Services, principal: Principal, deals: Sequence[DealPayload], as_of: datetime | None, *, batch: bool,
    out_of_life: str | None = None, request_times: Sequence[SentTime] = (),
) -> tuple[list[ScoreResult], int, str]:
    """Score and persist; returns results in request order, how many were replays, and the model version.

    ``request_times`` are the request's own timestamps as sent, outside its deals (a batch's ``as_of``).
    """
    _authorize_payload(principal, deals, batch)
    current = services.models.current
    taxonomy = current.taxonomy if current is not None else _default_taxonomy()
    converted = to_history(deals, as_of=as_of, taxonomy=taxonomy, batch=batch,
                           out_of_life=out_of_life or services.settings.out_of_life, request_times=request_times)
    model = services.models.require()
    keys = [(d.deal_id, h) for d, h in zip(deals, converted.hashes, strict=True)]
    stored, previous, states, store_keys = services.store.lookup(keys, model.version, converted.as_of)
    _authorize(principal, deals, states, batch)  # before scoring; judged again in the write (its moves recorded)
    todo = [d.deal_id for d, k in zip(deals, keys, strict=True) if k not in stored]
    backfills = _backfills(states, todo, converted.as_of)
    then = services.store.scores_in_force(backfills, converted.as_of) if backfills else {}
    # a replay answers with the stored score, which a back-fill stored under the team of its time: judged alike
    replays = {d.deal_id: stored[k] for d, k in zip(deals, keys, strict=True) if k in stored}
    _authorize_backfill(principal, deals, {**then, **replays}, converted.as_of, batch)
    fresh = _score_fresh(model, converted, todo, previous)
    _with_notices(model, converted, fresh)
    # what was scored (the validated history), kept for the timeline in the score's own row
    timelines = deal_timelines(converted.history, list(fresh)) if fresh else {}
    to_save = []
    for d, h in zip(deals, converted.hashes, strict=True):
        if d.deal_id in fresh:
            result = fresh[d.deal_id] = _owned(fresh[d.deal_id], d, then.get(d.deal_id))
            tl = timelines[d.deal_id]
            to_save.append(ScoreToSave(result=result, payload_hash=store_keys[(d.deal_id, h)], content_hash=h,
                                       is_open=True, touchpoints=tl.touchpoints, stage_changes=tl.stage_changes,
                                       created_at=d.created_at))
    try:
        services.store.add(to_save, recheck=partial(_authorize_again, principal, deals, states, batch,
                                                    as_of=converted.as_of, backfills=backfills))
    except StoreUnavailableError:
        services.metrics.store_errors.inc()
        raise
    results = [api_result(stored[k].score_result() if k in stored else fresh[d.deal_id])
               for d, k in zip(deals, keys, strict=True)]
    replayed = len(deals) - len(todo)
    if todo:
        services.metrics.scores.labels(model_version=model.version, kind="fresh").inc(len(todo))
    if replayed:
        services.metrics.scores.labels(model_version=model.version, kind="replayed").inc(replayed)
    return results, replayed, model.version


@router.post(
    "/score", response_model=ScoreResponse, summary="Score one deal",
    responses=error_responses(401, 403, 409, 413, 422, 503),
)
async def score(body: ScoreRequest, principal: ScoreKey, services: ServicesDep) -> Response:
    """Score one deal (its account, stage history and touchpoints) and store the score.

    Re-sending the same payload (same content, same ``as_of`` or the same day
    when ``as_of`` is omitted) under the same model, while its score is still the
    deal's score in force, returns that score with the header
    ``Idempotent-Replay: true`` and adds no row. Sent again after another payload
    of the deal, it is the deal changing back: scored and stored anew.
    """
    results, replayed, _version = await run_in_threadpool(
        score_deals, services, principal, [body], body.as_of, batch=False, out_of_life=body.out_of_life)
    headers = {"Idempotent-Replay": "true"} if replayed else None
    # no re-validation of the result: the response adds one list to the fields it already has
    response = ScoreResponse.model_construct(**dict(results[0]), ignored_fields=ignored_fields(body))
    return _json(response, headers)


@router.post(
    "/score/batch", response_model=BatchScoreResponse, summary="Score up to 1,000 deals",
    responses=error_responses(401, 403, 409, 413, 422, 503),
)
async def score_batch(body: BatchScoreRequest, principal: ScoreKey, services: ServicesDep) -> Response:
    """Score a batch of deals as of the same time; all of them are stored, or none (one transaction)."""
    results, replayed, version = await run_in_threadpool(
        score_deals, services, principal, body.deals, body.as_of, batch=True, out_of_life=body.out_of_life,
        request_times=body._sent_times)
    ignored = list(body.model_extra or {})
    for i, d in enumerate(body.deals):
        ignored += ignored_fields(d, f"deals[{i}].")
    return _json(BatchScoreResponse(results=results, model_version=version, scored=len(results) - replayed,
                                    replayed=replayed, ignored_fields=ignored))


def _json(model: BaseModel, headers: dict[str, str] | None = None) -> Response:
    """The response body, serialised once from the model the endpoint built.

    The endpoints are ``async def`` and hand the scoring (CPU, then the store's
    I/O) to the thread pool themselves, in one hop. A plain ``def`` endpoint
    would cost FastAPI two hops per request (the endpoint, then validating the
    returned model against ``response_model``), and that validation only
    re-checks what pydantic built a moment earlier. ``response_model`` still
    documents the body in the OpenAPI schema, which the schema tests hold the
    responses to.
    """
    return Response(content=model.model_dump_json(), media_type="application/json", headers=headers)
