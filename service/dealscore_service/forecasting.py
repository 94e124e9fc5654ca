"""The forecast use case behind ``GET /v1/forecast`` and the Forecast page: stored scores → bookings with a range.

It reads the latest score of every open deal the key may see (only the columns the
forecast needs: :meth:`ScoreStore.forecast_inputs`), and hands them to
:func:`dealscore.forecast.engine.forecast_pipeline` with the pipeline-creation
model the bundle carries (the service holds no history to learn creation from).
A team- or owner-limited key gets only its groups: its deals, and the future
pipeline of its teams (or owners), never the company's. A key limited to owners
forecasts by owner only (:func:`groupings`).

By owner, the store says who is in which team now, not the creation model (which
knows the owners and teams of the history it was fitted on): a team-limited key has
a row for every owner of its open deals (a rep new since training: open deals only,
named in a note) and the future pipeline of the owners its teams have now
(:func:`owner_teams`; the training history's team only for an owner with no open
deal in the store), never that of an owner who moved to another team (:func:`owner_scope`).

Amounts are added as they come, whatever their currency (the data contract's amounts
carry none; the store keeps each deal's from its payload): the answer names the
currencies it drew from (:func:`forecast_currencies`) rather than forecast each apart.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from dealscore.errors import ModelNotReadyError
from dealscore.forecast.creation import GROUP_COLUMNS, NO_GROUP
from dealscore.forecast.engine import DEFAULT_SIMS, Forecast, booked_so_far, forecast_pipeline, pipeline_from_columns
from dealscore.forecast.periods import PERIOD_KINDS, current_and_next
from dealscore.times import naive_utc, shown_apart
from dealscore_service.auth import Principal
from dealscore_service.deps import Services
from dealscore_service.errors import InvalidQueryError, query_field
from dealscore_service.payload import in_the_future, now_utc
from dealscore_service.schemas import (
    ForecastDriver,
    ForecastFanPoint,
    ForecastResponse,
    ForecastRow,
    mixes_currencies,
)
from dealscore_service.store import ScoreStore
from dealscore_service.store.placements import owner_teams

#: Forecasts kept per store (one per app), keyed by model version, the stored scores they read (the data cut)
#: and the request. Per store, because the rows' id fingerprint is only unique within one store: two stores
#: written in the same order share it. Held weakly, so a closed app's forecasts go with its store.
CACHE_SIZE = 32
_caches: weakref.WeakKeyDictionary[ScoreStore, OrderedDict[str, Forecast]] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()
STORE_NOTE = ("'booked' counts the deals whose win was recorded through the service (POST /v1/deals/{id}/outcome) "
              "with a close in the period so far; a deal won in the CRM without its outcome posted is not in it")


def groupings(principal: Principal) -> tuple[str, ...]:
    """The ``by`` values a key may forecast with: a key limited to owners has ``("owner",)`` only.

    Its deals are a part of their teams: a team's row would either count the other owners' deals and the
    team's future pipeline (which the key may not see) or show a part of the team under the team's name.
    Without a team row its by-team forecast was a company row of 0 open deals beside a by-owner forecast of
    its real deals. Unlimited and team-limited keys may ask either.
    """
    return ("owner",) if principal.owners else ("team", "owner")


def trained_teams(creation: Any) -> dict[str, str]:
    """Each owner's team in the history the by-owner creation model was fitted on (empty without one)."""
    return dict(getattr(creation, "pool_of_", None) or {})


def owner_scope(principal: Principal, trained: Mapping[str, str], visible: Sequence[str],
                teams_now: Mapping[str, str], booked: Sequence[str] = (),
                ) -> tuple[list[str] | None, list[str] | None, list[str]]:
    """By owner: the rows a key gets, the owners whose deals not created yet it gets (None: all), and notes.

    ``visible`` are the owners (group names) of the open deals the key sees; ``teams_now`` each owner's team
    per the store (:func:`owner_teams`, over every open deal). An owner's future pipeline counts in the team
    the store has them in now (the training history's only for an owner with no open deal in the store), so
    exactly one team's key gets it: a team key gets it for its owners now, and a row for every owner of its
    deals (one who moved away: their open deals in its teams only). A key limited to owners gets its owners'.
    ``trained``: each owner's team in the history the creation model was fitted on (:func:`trained_teams`).
    ``booked``: the owners of the wins the key's forecast books; each has a row for them.
    """
    moved = sorted(o for o, team in teams_now.items() if o in trained and trained[o] != team)
    if not principal.limited:
        rows, future = None, None
        notes = [_moved_note(moved)] if moved else []
    else:
        team_of = {**trained, **teams_now}
        drawn = set(principal.owners) | {o for o, team in team_of.items() if team in principal.teams}
        rows, future = sorted(drawn | set(visible) | set(booked)), sorted(drawn)
        notes = [_moved_note(m)] if (m := [o for o in moved if o in drawn]) else []
        if away := sorted(set(visible) - drawn - {NO_GROUP}):
            notes.append(f"{_owners(away)} now {_verb(away, 'works', 'work')} in another team (per their latest "
                         "open deals in the score store): their rows here count their open deals in this key's teams "
                         "only, not their deals not created yet, which count in their team now")
    return rows, future, notes


def _owners(names: Sequence[str], shown: int = 10) -> str:
    listed = ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")
    return f"owner{'s' if len(names) > 1 else ''} {listed}"


def _verb(names: Sequence[str], one: str, many: str) -> str:
    return one if len(names) == 1 else many


def _moved_note(owners: Sequence[str]) -> str:
    return (f"{_owners(owners)} {_verb(owners, 'works', 'work')} in another team per the score store than in the "
            "history the pipeline-creation model was trained on: their deals not created yet count in their team "
            "now, drawn at the rate and from the wins learned before the move, until the model is retrained")


def compute_forecast(services: Services, principal: Principal, *, period: str = "quarter", by: str = "team",
                     as_of: datetime | None = None, sims: int = DEFAULT_SIMS, seed: int = 0,
                     currency: str | None = None) -> Forecast:
    """The forecast from the latest stored scores (``as_of`` defaults to the newest score's time).

    ``currency`` (an ISO 4217 code, upper case) forecasts the open deals in that currency only, so that
    its figures add like money. Deals not created yet have no currency, so such a forecast leaves the
    future pipeline out (``new_expected`` 0) and says so.
    """
    allowed = groupings(principal)
    if by not in GROUP_COLUMNS:  # the API's schema refuses it first; the page passes its URL's value on
        message = f"by={by!r} is not a grouping: the forecast groups by {' or '.join(allowed)}"
        fix = f"ask by={' or by='.join(allowed)}"
        raise InvalidQueryError(message, fix=fix, fields=[query_field("by", message, fix, "unknown_grouping")])
    if by not in allowed:
        owners = sorted(principal.owners)
        message = (f"the API key {principal.name!r} is limited to owners {owners}: it forecasts by "
                   f"{' or '.join(allowed)}, not by {by} (a team's row would hold other owners' deals)")
        fix = f"ask by={allowed[0]} (its own deals, one row per owner); a key limited to teams may ask by=team"
        raise InvalidQueryError(message, fix=fix, fields=[query_field("by", message, fix, "grouping_not_allowed")])
    if period not in PERIOD_KINDS:  # the API's schema refuses it first; the page passes its URL's value on
        message = f"period={period!r} is not a forecast period: ask {' or '.join(PERIOD_KINDS)}"
        fix = f"ask period={' or period='.join(PERIOD_KINDS)}"
        raise InvalidQueryError(message, fix=fix, fields=[query_field("period", message, fix, "unknown_period")])
    current = services.models.current
    if current is None:
        raise ModelNotReadyError("no model is loaded yet; the forecast needs one",
                                 fix="retry shortly, or check GET /readyz")
    creation = (current.bundle.pipeline_creation or {}).get(by) if getattr(current.bundle, "pipeline_creation",
                                                                            None) else None
    left_out = None
    if currency is not None:  # its deals not created yet have no currency
        creation = None
        left_out = (f"only the open deals in {currency} are forecast, and deals not created yet have no currency "
                    "(ask without currency for them)")
    # by owner, a team key's owners are those the store has in its teams now (every open deal's, kept per
    # revision): the answer depends on them beyond the key's own deals, so the placements that decide its rows,
    # their future pipeline and its notes join the cache key (a write elsewhere that moves nobody keeps it)
    everyone = by == "owner" and bool(principal.teams)
    placed: dict[str, str] = services.store.owner_teams_now() if everyone else {}
    trained = trained_teams(creation)
    relevant = sorted((o, t) for o, t in placed.items()
                      if t in principal.teams or trained.get(o) in principal.teams)
    # one forecast time for every key (the store's newest fact), so a team key and the company forecast the same
    # moment; an explicit as_of may not be before it (the latest scores were not known then)
    newest = services.store.newest_fact()
    if as_of is not None:
        t = naive_utc(pd.Timestamp(as_of))
        _check_forecast_time(t, pd.Timestamp(newest) if newest is not None else None)
    else:
        t = pd.Timestamp(newest) if newest is not None else naive_utc(pd.Timestamp.now(tz="UTC"))
    periods = current_and_next(t, period)
    won = booked_wins(services.store, principal, t, period, currency)
    booked_rows = (won["deal_id"], [float(a or 0.0) for a in won["amount"]], [str(c) for c in won["closed_at"]],
                   won["team"], won["owner_id"])
    key = cache_key(current.version, services.store.forecast_fingerprint(principal), period=period, by=by,
                    as_of=t.isoformat(), sims=sims, seed=seed, placed=relevant, currency=currency, won=booked_rows,
                    scope=(sorted(principal.owners), sorted(principal.teams)))
    with _cache_lock:
        cache = _caches.setdefault(services.store, OrderedDict())
        hit = cache.get(key)
        if hit is not None:
            cache.move_to_end(key)
            return hit
    inputs = services.store.forecast_inputs(principal, currency=currency)
    pipe = pipeline_from_columns(inputs)
    groups: list[str] | None = sorted(principal.teams) if principal.limited else None
    new_groups: list[str] | None = None
    scope_notes: list[str] = []
    if by == "owner":
        # a key limited to owners only sees every deal of its owners: its own rows tell their teams
        teams_now = placed if everyone else owner_teams(pipe.owner_id, pipe.team, pipe.scored_at)
        # a rep whose only deal in the key's teams was just won has a row for that booking
        winners = sorted({str(o) for o in won["owner_id"] if o is not None})
        groups, new_groups, scope_notes = owner_scope(principal, trained, sorted(set(pipe.keys("owner"))),
                                                      teams_now, booked=winners)
    booked = booked_so_far(pd.DataFrame(won).astype({"closed_at": "datetime64[ns]", "amount": float}), t, periods, by)
    calibration = getattr(current.bundle, "forecast_calibration", None)
    fc = forecast_pipeline(pipe, t, kind=period, by=by, creation=creation, booked=booked, n_sims=sims, seed=seed,
                           groups=groups, calibration=calibration, new_groups=new_groups, new_left_out=left_out)
    fc.notes.extend(scope_notes)
    fc.notes.append(STORE_NOTE)
    if creation is None and left_out is None:
        fc.notes.append("the model bundle carries no pipeline-creation model: retrain it to include future deals")
    with _cache_lock:
        cache[key] = fc
        while len(cache) > CACHE_SIZE:
            cache.popitem(last=False)
    return fc


def _check_forecast_time(t: pd.Timestamp, newest: pd.Timestamp | None) -> None:
    """A forecast time the stored scores can answer: not before the newest of them, not in the future.

    The forecast draws every deal from its latest stored score. As of an earlier time it would count deals
    created since and read scores that were not known then (a forecast of 2024 holding 2025's deals); as of a
    later year every deal would be drawn as if its close outlook had not moved. A past forecast reads the
    history as it stood then: ``dealscore forecast HISTORY --as-of TIME``.
    """
    problem = None
    if newest is not None and t < newest:
        shown, known = shown_apart(t, newest)
        problem = (f"{shown} is before the newest fact the score store holds ({known}, a score or a close): the "
                   "forecast reads each deal's latest score and outcome, which were not known then",
                   "omit as_of (the store's newest time); for a past time, run `dealscore forecast HISTORY --as-of "
                   "TIME` on the CRM export, which reads it as it stood then")
    elif (future := in_the_future(t.to_pydatetime(), now_utc())) is not None:
        problem = (future, "omit as_of, or ask for a time up to now")
    if problem is not None:
        message, fix = problem
        raise InvalidQueryError(f"as_of {message}", fix=fix, fields=[query_field("as_of", message, fix)])


def cache_key(model_version: str, fingerprint: tuple[int, ...], **request: Any) -> str:
    """What a forecast depends on: the model version, the stored rows it reads (their id fingerprint), the request.

    The forecast is deterministic given these (same seed, same draws), so a page
    reload or a second manager asking between two scoring runs is served from
    memory, and any new or closed score changes the fingerprint
    (:meth:`ScoreStore.forecast_fingerprint`). The request holds the resolved forecast
    time (the store's newest fact by default) and the won deals it books, so a close
    recorded, corrected or withdrawn changes the key too.
    """
    h = hashlib.blake2b(digest_size=20)
    h.update(repr((str(model_version), tuple(fingerprint), sorted(request.items()))).encode())
    return h.hexdigest()


def forecast_currencies(store: ScoreStore, principal: Principal, fc: Forecast) -> list[str | None]:
    """The currencies of the deals in ``fc``'s figures (those the key sees): the open deals it draws from,
    largest pipeline first (:meth:`ScoreStore.open_currencies`), then those of the wins it books
    (:func:`booked_wins`), which a forecast of the open deals' currencies alone summed as if they were one."""
    found = store.open_currencies(principal)
    won = booked_wins(store, principal, fc.as_of, fc.kind)
    return [*found, *dict.fromkeys(c for c in won["currency"] if c not in found)]


def booked_wins(store: ScoreStore, principal: Principal, t: pd.Timestamp, period: str,
                currency: str | None = None) -> dict[str, list[Any]]:
    """The wins the key sees recorded with a close in the current period up to ``t``: what the forecast books."""
    return store.won_between(principal, current_and_next(t, period)[0].start.to_pydatetime(), t.to_pydatetime(),
                             currency=currency)


def forecast_response(fc: Forecast, model_version: str, currencies: Sequence[str | None] = ()) -> ForecastResponse:
    """The API's JSON form of a forecast, with the currencies of its deals (:func:`forecast_currencies`).

    Mixed currencies add a note to the answer's notes, not to ``fc``'s, which the cache shares.
    """
    def records(frame: pd.DataFrame, leave_out: str = "") -> list[dict[str, Any]]:
        # column by column (``tolist`` gives Python numbers): ``to_dict("records")`` walked the rows in pandas,
        # a tenth of a first request's time
        names = [c for c in frame.columns if c != leave_out]
        return [dict(zip(names, row, strict=True)) for row in zip(*(frame[c].tolist() for c in names), strict=True)]

    return ForecastResponse(
        as_of=fc.as_of.to_pydatetime(), period=fc.kind, by=fc.by, sims=fc.n_sims, seed=fc.seed,  # type: ignore[arg-type]
        model_version=model_version,
        rows=[ForecastRow(**r) for r in records(fc.table)],
        fan=[ForecastFanPoint(**r) for r in records(fc.fan, leave_out="end")],
        drivers=[ForecastDriver(**r) for r in records(fc.drivers)],
        notes=[*fc.notes, *_currency_notes(currencies)], currencies=list(currencies),
    )


def _currency_notes(currencies: Sequence[str | None]) -> list[str]:
    """The sentence a reader of the notes gets when the figures add unlike money (none otherwise)."""
    if not mixes_currencies(currencies):
        return []
    named = ", ".join(c or "no currency given" for c in currencies)
    return [f"the open deals are in several currencies ({named}): every figure adds their amounts as given, "
            "not converted"]
