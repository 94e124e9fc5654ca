"""Request and response bodies of the HTTP API (they are the OpenAPI schema).

A request carries one deal in the data contract's shape (DESIGN §3): the deal's
own fields, its account, its stage history and its touchpoints. The schema
checks types, sizes and obviously impossible values so that the client gets a
field path for each; the contract's business rules (known stages, time order,
outcomes) are then checked by the library's one validation path
(:mod:`dealscore_service.payload`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    computed_field,
    model_validator,
)
from pydantic_core import PydanticCustomError

from dealscore.data import rules
from dealscore.data.rules import text_has_zone
from dealscore.data.schema import MAX_DISPLAY_CHARS, MAX_ID_CHARS, MAX_NAME_CHARS, MAX_TEXT_CHARS, Outcome
from dealscore.scoring.result import DealWarning, NextAction, ScoreResult
from dealscore.times import naive_utc
from dealscore.wording import percent_text
from dealscore_service.errors import PATTERN_FIXES, field_path
from dealscore_service.limits import MAX_BATCH_DEALS, MAX_STAGE_CHANGES_PER_DEAL, MAX_TOUCHPOINTS_PER_DEAL

# the data contract's rules (dealscore.data.rules) checked field by field, so each error has its path
_Day = TypeVar("_Day", bound=date)
_WINDOW_ERROR = f"must be between {rules.EARLIEST.year} and {rules.LATEST.year}"


def _utc_naive(value: datetime) -> datetime:
    """Times with an offset are converted to UTC; times without one are taken as UTC already.

    A time at the edge of the calendar can leave it once its offset is applied
    (``0001-01-01T00:00:00+01:00`` is in year 0): refused like any time out of range.
    """
    try:
        value = naive_utc(value)
    except OverflowError:
        raise ValueError(f"{_WINDOW_ERROR} once converted to UTC") from None
    return _sane_date(value)


def _sane_date(value: _Day) -> _Day:
    if rules.date_outside_window(value):
        raise ValueError(_WINDOW_ERROR)
    return value


def _no_nul(value: str) -> str:
    if rules.holds_nul(value):
        raise ValueError("must not contain NUL characters")
    return value


def _unicode(value: str) -> str:
    """Refuse a lone UTF-16 surrogate (``"\\ud800"`` is valid JSON): no UTF-8 text holds one, so the history's
    Arrow columns and the database could not take it. pydantic refuses it in a plain ``str`` field, but
    not once a before-validator (the id's trim) has handed the string on."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (it holds a lone UTF-16 surrogate such as \\ud800)") from None
    return value


def _readable(value: str) -> str:
    """Refuse a name or id no one could read on a page (:func:`dealscore.data.rules.unreadable`)."""
    problem = rules.unreadable(value)
    if problem is not None:
        raise PydanticCustomError(
            "text_unreadable", "{problem}",
            {"problem": problem, "fix": "send the name as people read it, without invisible or bidirectional "
                                        "override characters (leave an optional field out if it has no value)"})
    return value


def _trimmed(value: object) -> object:
    return rules.trim(value) if isinstance(value, str) else value


def _utc_aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def api_result(result: ScoreResult) -> ScoreResult:
    """A result as the API returns it: times in UTC *with* the offset (RFC 3339, what the schema promises)."""
    return result.model_copy(update={"as_of": _utc_aware(result.as_of)})


Timestamp = Annotated[datetime, AfterValidator(_utc_naive)]
#: Times the API returns: UTC, serialised with their offset.
UtcTime = Annotated[datetime, AfterValidator(_utc_aware)]
Day = Annotated[date, AfterValidator(_sane_date)]
# the caps are the data contract's (dealscore.data.schema): a CSV cell and a JSON field are held to the same
Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS), AfterValidator(_no_nul)]
# an id is trimmed before its length is checked, as the loader trims it: the deal looked up for access is the one stored
Ident = Annotated[str, BeforeValidator(_trimmed), Field(min_length=1, max_length=MAX_ID_CHARS),
                  AfterValidator(_no_nul), AfterValidator(_unicode), AfterValidator(_readable)]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS), AfterValidator(_no_nul),
                 AfterValidator(_readable)]

#: ids no URL can carry as one path segment: RFC 3986 clients remove them as dot segments before sending,
#: and WHATWG ones (browsers, Node's fetch) even their percent-encoded forms ``%2E`` and ``%2E%2E``
_DOT_SEGMENTS = frozenset({".", ".."})


def _addressable(value: str) -> str:
    """Refuse a deal id that ``/v1/deals/{deal_id}/outcome``, ``/scores`` and ``/ui/deals/`` cannot address.

    Any other text reaches those routes once percent-encoded as one path segment (``/`` as ``%2F``, ``%`` as
    ``%25``). ``.`` and ``..`` do not: ``encodeURIComponent("..")`` is ``..``, which every client resolves away
    (``/v1/deals/../outcome`` is sent as ``/v1/outcome``), so such a deal would be scored, never closed nor
    read, and stay at risk for good. Refused where it is scored, before anything is stored.
    """
    if value in _DOT_SEGMENTS:
        raise PydanticCustomError(
            "deal_id_dot_segment",
            "a deal id may not be '.' or '..': URL clients remove such a path segment, so the deal could be scored "
            "but never closed (POST /v1/deals/{deal_id}/outcome) nor read",
            {"fix": "give the deal an id that is more than dots (e.g. the CRM's id with a prefix, 'OPP-1'); any other "
                    "text is accepted, percent-encoded in the URL as one path segment"})
    return value


#: a deal's id: an id that is also one segment of the deal's URLs
DealId = Annotated[Ident, AfterValidator(_addressable)]
def _not_bool(kind: str) -> BeforeValidator:
    """JSON ``true`` is not an amount or a count: pydantic's lax mode reads it as 1. ``kind``: the error type
    of the field's own type (``float_type``, ``int_type``), so the fix says what to send instead."""

    def check(value: object) -> object:
        if isinstance(value, bool):
            raise PydanticCustomError(kind, "Input should be a number, not true or false")
        return value

    return BeforeValidator(check)


Money = Annotated[float, _not_bool("float_type"), Field(ge=rules.LOWEST_AMOUNT, le=rules.HIGHEST_AMOUNT)]
OutOfLife = Literal["fail", "drop"]
OUT_OF_LIFE_DOC = (
    "touchpoints and stage changes dated before the deal was created: 'fail' answers 422 naming each one; "
    "'drop' scores the deal without them and lists them in the result's notices. Default: the server's "
    "DEALSCORE_OUT_OF_LIFE setting ('fail')")
#: A name shown to people (deal, account, owner, contact): display only, never a feature.
DisplayName = Annotated[str, Field(min_length=1, max_length=MAX_DISPLAY_CHARS), AfterValidator(_no_nul),
                        AfterValidator(_readable)]
#: An ISO 4217 code as the API and the page accept it (any case; kept upper case): one rule for the payload's
#: currency and the list's currency filter.
CURRENCY_PATTERN = r"^[A-Za-z]{3}$"
CURRENCY_FIX = "send a current ISO 4217 currency code, such as EUR, USD or GBP (any case)"
PATTERN_FIXES[CURRENCY_PATTERN] = CURRENCY_FIX


def currency_code(text: str) -> str | None:
    """``text`` as the currency code it is (upper case), or ``None`` when it is not a current ISO 4217 code
    (:func:`dealscore.data.rules.is_currency`): the one check of the payload's currency, the API's currency
    filters and the pages'."""
    return text.upper() if re.fullmatch(CURRENCY_PATTERN, text) and rules.is_currency(text) else None


def _iso_currency(value: str | None) -> str | None:
    """A currency that matches the pattern and is a real ISO 4217 code, upper case (``None`` passes: not given).

    ``ZZZ`` or a typo such as ``EUE`` matched the three-letter pattern: as a filter it listed nothing, as a
    payload's currency it made a total of its own."""
    if value is None:
        return None
    code = currency_code(value)
    if code is None:
        raise PydanticCustomError("currency_unknown", "'{given}' is not an ISO 4217 currency code",
                                  {"given": value, "fix": CURRENCY_FIX})
    return code


Currency = Annotated[str, Field(pattern=CURRENCY_PATTERN, description="ISO 4217 code, e.g. EUR"),
                     AfterValidator(_iso_currency)]
#: A query's currency filter: the same check; not given is no filter.
CurrencyFilter = Annotated[str | None, AfterValidator(_iso_currency)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class _Forgiving(BaseModel):
    """A request body part that accepts fields it does not know: they are listed back in ``ignored_fields``.

    A CRM integration sends what its CRM has; refusing a deal for an extra field
    (``deal_name`` once was one) makes every schema change of ours a breaking change.
    """

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


class AccountPayload(_Forgiving):
    """The customer profile (contract table ``accounts``)."""

    account_id: Ident | None = Field(default=None, description="defaults to the deal's account_id; must match it")
    industry: Annotated[Text, Field(min_length=1)]
    employees: Annotated[int, _not_bool("int_type"), Field(ge=0, le=10_000_000)] | None = None
    annual_revenue: Money | None = None
    region: Text | None = None
    created_at: Timestamp | None = None
    account_name: DisplayName | None = Field(default=None, description="the customer's name (display only)")


class StageChangePayload(_Forgiving):
    """One change of the CRM stage (contract table ``stage_history``)."""

    stage: Name = Field(description="a configured stage name or alias, e.g. 'discovery'")
    changed_at: Timestamp
    recorded_at: Timestamp | None = Field(default=None, description="when the change was entered, if later")
    amount: Money | None = Field(default=None, description="amount as recorded at this change")
    expected_close_date: Day | None = Field(default=None, description="close date as recorded at this change")


class ActivityPayload(_Forgiving):
    """One touchpoint (contract table ``activities``)."""

    activity_id: Ident | None = None
    occurred_at: Timestamp
    type: Name = Field(description="email, call, meeting, demo, proposal, contract, note, or a configured type")
    direction: Name | None = Field(default=None, description="inbound | outbound")
    contact_id: Ident | None = None
    contact_role: Name | None = Field(
        default=None, description="decision_maker | champion | influencer | user | other"
    )
    recorded_at: Timestamp | None = Field(default=None, description="when the touchpoint was logged, if later")
    contact_name: DisplayName | None = Field(default=None, description="the contact's name (display only)")


#: (path below the deal, the value as sent, whether it carried a zone) of each of a deal's timestamps
SentTime = tuple[tuple[str | int, ...], str, bool]
_TIME_FIELDS = {"stage_history": ("changed_at", "recorded_at"), "activities": ("occurred_at", "recorded_at")}


def _sent_zone(value: object) -> bool | None:
    """Whether a timestamp as sent carried a zone (None: not a timestamp the schema would take)."""
    if isinstance(value, str):
        return text_has_zone(value)
    if isinstance(value, datetime):
        return value.tzinfo is not None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return True  # seconds since the epoch are UTC by definition
    return None


def sent_times(data: dict[str, Any], top: tuple[str, ...]) -> list[SentTime]:
    """Every timestamp of a deal as sent (its fields ``top``, its account's and its tables'), before the schema
    turns them all into naive UTC."""
    out: list[SentTime] = []

    def one(loc: tuple[str | int, ...], value: object) -> None:
        zoned = _sent_zone(value)
        if zoned is not None:
            out.append((loc, str(value), zoned))

    for name in top:
        one((name,), data.get(name))
    account = data.get("account")
    if isinstance(account, dict):
        one(("account", "created_at"), account.get("created_at"))
    for table, fields in _TIME_FIELDS.items():
        items = data.get(table)
        if isinstance(items, list):
            for i, item in enumerate(items):
                if isinstance(item, dict):
                    for name in fields:
                        one((table, i, name), item.get(name))
    return out


class DealPayload(_Forgiving):
    """One deal with everything needed to score it, in the data contract's shape."""

    #: the deal's timestamps as sent: whether each carried a zone is lost once parsed, and the data
    #: contract's rule (all with an offset, or none) is judged on it (``payload.to_history``)
    _sent_times: list[SentTime] = PrivateAttr(default_factory=list)
    #: the deal's own timestamp fields (a request that is one deal adds its ``as_of``)
    _time_fields: ClassVar[tuple[str, ...]] = ("created_at", "closed_at")

    @model_validator(mode="wrap")
    @classmethod
    def _keep_sent_times(cls, data: Any, handler: ModelWrapValidatorHandler[DealPayload]) -> DealPayload:
        deal = handler(data)
        if isinstance(data, dict):
            deal._sent_times = sent_times(data, cls._time_fields)
        return deal

    deal_id: DealId
    account_id: Ident
    owner_id: Ident
    team: Ident | None = Field(default=None, description="the owner's team (access control, filters)")
    created_at: Timestamp
    amount: Money | None = None
    product: Text | None = None
    source: Text | None = None
    expected_close_date: Day | None = None
    closed_at: Timestamp | None = Field(default=None, description="close time; empty while open")
    outcome: Outcome | None = Field(default=None, description="won | lost; empty while open")
    deal_name: DisplayName | None = Field(default=None, description="the deal's name in the CRM (display only)")
    owner_name: DisplayName | None = Field(default=None, description="the owner's name (display only)")
    currency: Currency | None = Field(default=None, description="ISO 4217 code of amount (display only)")
    account: AccountPayload
    stage_history: list[StageChangePayload] = Field(default_factory=list, max_length=MAX_STAGE_CHANGES_PER_DEAL)
    activities: list[ActivityPayload] = Field(
        default_factory=list, max_length=MAX_TOUCHPOINTS_PER_DEAL,
        description=f"touchpoints, at most {MAX_TOUCHPOINTS_PER_DEAL} per deal",
    )


EXAMPLE_DEAL: dict[str, Any] = {
    "deal_id": "OPP-1042", "deal_name": "Globex Growth rollout", "account_id": "ACC-77", "owner_id": "rep-ana",
    "owner_name": "Ana Silva", "team": "EMEA Mid-Market", "currency": "EUR",
    "created_at": "2025-03-03T09:12:00Z", "amount": 48000, "product": "Growth", "source": "inbound",
    "expected_close_date": "2025-06-30",
    "account": {"account_name": "Globex GmbH", "industry": "software", "employees": 420,
                "annual_revenue": 61000000, "region": "EMEA"},
    "stage_history": [
        {"stage": "qualification", "changed_at": "2025-03-03T09:12:00Z", "amount": 48000},
        {"stage": "discovery", "changed_at": "2025-03-20T15:00:00Z"},
        {"stage": "proposal", "changed_at": "2025-04-22T10:30:00Z"},
    ],
    "activities": [
        {"occurred_at": "2025-03-04T10:00:00Z", "type": "email", "direction": "outbound", "contact_role": "champion"},
        {"occurred_at": "2025-03-05T08:40:00Z", "type": "email", "direction": "inbound", "contact_role": "champion"},
        {"occurred_at": "2025-03-19T14:00:00Z", "type": "meeting", "direction": "inbound",
         "contact_role": "decision_maker"},
        {"occurred_at": "2025-04-08T13:00:00Z", "type": "demo", "direction": "outbound", "contact_role": "user"},
        {"occurred_at": "2025-04-22T10:30:00Z", "type": "proposal", "direction": "outbound",
         "contact_role": "decision_maker"},
    ],
}


def unknown_fields(deal: DealPayload) -> Iterator[tuple[tuple[str | int, ...], list[str]]]:
    """Where a deal carries fields the schema does not know: (location below the deal, their names), for
    every part that has some. Unknown fields are ignored: neither scored, nor part of the payload's hash."""
    if deal.model_extra:
        yield (), list(deal.model_extra)
    if deal.account.model_extra:
        yield ("account",), list(deal.account.model_extra)
    for table, items in (("stage_history", deal.stage_history), ("activities", deal.activities)):
        for i, item in enumerate(items):
            extra = item.__pydantic_extra__
            if extra:
                yield (table, i), list(extra)


def ignored_fields(deal: DealPayload, prefix: str = "") -> list[str]:
    """Paths of the fields a deal carries that the schema does not know (``account.crm_url``, ...)."""
    return [f"{prefix}{field_path([*loc, k])}" for loc, names in unknown_fields(deal) for k in names]


class ScoreRequest(DealPayload):
    """``POST /v1/score``: one deal, scored as of ``as_of`` (default: now)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{**EXAMPLE_DEAL, "as_of": "2025-05-06T00:00:00Z"}]})
    # as_of is one of the request's times: the zone rule holds it to the deal's
    _time_fields: ClassVar[tuple[str, ...]] = ("created_at", "closed_at", "as_of")

    as_of: Timestamp | None = Field(
        default=None,
        description="score the deal as it stood at this time; default now. Every fact sent must be known by then.",
    )
    out_of_life: OutOfLife | None = Field(default=None, description=OUT_OF_LIFE_DOC)


class ScoreResponse(ScoreResult):
    """``POST /v1/score``: the deal's score, and the request fields the service did not use."""

    ignored_fields: list[str] = Field(
        default_factory=list, description="paths of request fields the service does not know and ignored")


class BatchScoreRequest(_Forgiving):
    """``POST /v1/score/batch``: up to 1,000 deals, all scored as of the same time."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"deals": [EXAMPLE_DEAL], "as_of": "2025-05-06T00:00:00Z"}]}
    )

    #: the batch's own timestamps as sent (its as_of), held to the zone rule with its deals' (``payload.to_history``)
    _sent_times: list[SentTime] = PrivateAttr(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_sent_times(cls, data: Any, handler: ModelWrapValidatorHandler[BatchScoreRequest]) -> BatchScoreRequest:
        batch = handler(data)
        if isinstance(data, dict):
            zoned = _sent_zone(data.get("as_of"))
            batch._sent_times = [] if zoned is None else [(("as_of",), str(data["as_of"]), zoned)]
        return batch

    deals: list[DealPayload] = Field(min_length=1, max_length=MAX_BATCH_DEALS)
    as_of: Timestamp | None = Field(default=None, description="default now")
    out_of_life: OutOfLife | None = Field(default=None, description=OUT_OF_LIFE_DOC)


class BatchScoreResponse(BaseModel):
    """The batch's results in request order."""

    results: list[ScoreResult]
    model_version: str
    scored: int = Field(description="deals scored by this request")
    replayed: int = Field(description="deals whose identical payload was already scored (stored result returned)")
    ignored_fields: list[str] = Field(
        default_factory=list, description="paths of request fields the service does not know and ignored")


Trend = Literal["improving", "steady", "declining", "unknown"]


class ScorePoint(BaseModel):
    """One past score of a deal (a point of its trend)."""

    as_of: UtcTime
    scored_at: UtcTime
    p_win: float
    grade: str
    declared_stage: str | None
    inferred_stage: str
    value_at_risk: float | None
    model_version: str
    warnings: list[str]


class DealScoresResponse(BaseModel):
    """``GET /v1/deals/{deal_id}/scores``: the deal's score history and where it is heading."""

    deal_id: str
    trend: Trend
    trend_change: float | None = Field(
        description="change in win probability (points) between the first and last of the recent scores"
    )
    scores: list[ScorePoint] = Field(description="oldest first")
    latest: ScoreResult


class AtRiskItem(BaseModel):
    """One open deal in the at-risk list (its latest score)."""

    deal_id: str
    account_id: str | None
    owner_id: str | None
    team: str | None
    amount: float | None
    currency: str | None = Field(default=None, description="ISO 4217 code of amount and value_at_risk, from the "
                                 "scoring payload; null when it gave none (amounts are never converted)")
    p_win: float
    grade: str
    declared_stage: str | None
    inferred_stage: str
    stage_mismatch: str
    value_at_risk: float | None = Field(description="money: amount × (stage's usual win rate − p_win), ≤ amount")
    priority: float | None = Field(default=None, description="orders the list: value at risk × warning and drop "
                                                             "urgency (not money)")
    risk_level: str | None = Field(default=None, description="high: top decile of priority among the deals at "
                                                             "risk matching the filters; medium: next two deciles")
    previous_p_win: float | None = Field(description="the deal's score before this one")
    stage_typical_p_win: float | None = Field(description="usual win rate of deals in the declared stage")
    top_warning: DealWarning | None
    top_action: NextAction | None
    as_of: UtcTime
    scored_at: UtcTime
    model_version: str
    recent_p_win: list[float] = Field(description="the last few win probabilities, oldest first (trend line)")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def p_win_display(self) -> str:
        """``p_win`` as shown to people: '37%', '<1%' or '>99%' (never a false 0% or 100%)."""
        return percent_text(self.p_win)


#: The longest text a query filter takes (an owner, a team): the API's limit, and the web page's, so a longer
#: value is refused in both rather than cut to another owner.
MAX_QUERY_TEXT = 200


def mixes_currencies(currencies: Sequence[str | None]) -> bool:
    """Whether amounts of these currencies may not be added: more than one, a missing one (``None``) counting as
    its own, since nothing says it is any of the others. The one rule behind every ``mixed_currencies`` field."""
    return len(set(currencies)) > 1


class CurrencyTotal(BaseModel):
    """The at-risk list's totals over the matching deals of one currency: the figures a reader may add up."""

    currency: str | None = Field(description="ISO 4217 code from the scoring payloads; null: the deals scored "
                                 "without one (kept apart: their currency is unknown)")
    open_deals: int = Field(description="open deals in this currency matching the filters, at risk or not")
    pipeline_value: float = Field(description="sum of their amounts, in this currency")
    value_at_risk: float = Field(description="sum of the value at risk of those at risk, in this currency")
    deals_at_risk: int = Field(description="how many of them are at risk (below their stage's usual win rate, "
                               "those without an amount included): the deals value_at_risk sums; over all "
                               "currencies these add up to total")


_ADDED_AS_GIVEN = ("; amounts are added as given, whatever their currency (never converted): when "
                   "mixed_currencies is true this adds unlike money, read by_currency instead")


class AtRiskResponse(BaseModel):
    """``GET /v1/deals/at-risk``: one page of the ranking and totals over every matching deal.

    Amounts carry the currency their scoring payload gave and are never converted, so the money totals are also
    given per currency (``by_currency``); the flat totals stay for the clients that read them.
    """

    items: list[AtRiskItem]
    total: int = Field(description="deals at risk matching the filters (all pages)")
    open_deals: int = Field(description="open deals matching the filters, at risk or not")
    limit: int
    offset: int
    pipeline_value: float = Field(description="sum of the amounts of the open deals matching the filters"
                                  + _ADDED_AS_GIVEN)
    value_at_risk: float = Field(description="sum of the value at risk of the deals at risk" + _ADDED_AS_GIVEN)
    by_currency: list[CurrencyTotal] = Field(
        default_factory=list, description="open deals, deals at risk, pipeline_value and value_at_risk per "
        "currency over every matching deal (all pages), largest pipeline first: one entry when the deals share a "
        "currency, none when no deal matches")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def mixed_currencies(self) -> bool:
        """True when the matching deals are in more than one currency (those without one count as another):
        pipeline_value and value_at_risk then add unlike money."""
        return mixes_currencies([t.currency for t in self.by_currency])


class RepHabit(BaseModel):
    """One rep's recording habits, learned with the real-stage labels."""

    rep_id: str
    stage_entries: int = Field(description="stage entries whose record and evidence were compared")
    lag_days: float = Field(description="typical days between a stage's evidence and the rep typing it in")
    ahead_share: float = Field(description="share of stages typed in before their evidence")
    skipped_share: float = Field(description="share of stages with evidence the rep never recorded")


class RecordingHabits(BaseModel):
    """How the company's reps record stages (largest lag first), for coaching."""

    company: dict[str, float] = Field(default_factory=dict)
    reps: list[RepHabit] = Field(default_factory=list)
    summary: list[str] = Field(default_factory=list, description="the same in plain sentences")


class StateValueStage(BaseModel):
    """One real stage's smoothed win rate per customer silence (every episode and chase together) and per episode."""

    stage: str
    snapshots: int = Field(description="training snapshots in this real stage")
    win_rates: dict[str, float] = Field(description="per silence bucket (days since the customer's last reply)")
    snapshots_by_silence: dict[str, int]
    win_rates_by_episode: dict[str, float] = Field(
        default_factory=dict, description="per episode (active, slow, stalled, quiet, unreplied: the episode model's "
        "reading of the touch pattern), every silence and chase together")
    snapshots_by_episode: dict[str, int] = Field(default_factory=dict)


class StateValueChase(BaseModel):
    """Outbound touches in a row without a reply, over every stage and silence."""

    chase: str
    snapshots: int
    win_rate: float | None = Field(description="none when no training snapshot had that chase")


class StateValues(BaseModel):
    """What the next-best actions are priced with: past win rates by the state a deal is in."""

    silence_buckets: list[str] = Field(default_factory=list)
    stages: list[StateValueStage] = Field(default_factory=list)
    chase: list[StateValueChase] = Field(default_factory=list)
    prior_snapshots: float | None = Field(default=None, description="pseudo-snapshots a thin cell is smoothed with")
    reading: list[str] = Field(default_factory=list, description="the same in plain sentences")


class EpisodePace(BaseModel):
    """One hidden state of the episode model: how busy a deal in it is."""

    state: Literal["active", "slow", "stalled", "quiet"]
    rep_touches_per_week: float
    customer_touches_per_week: float
    other_touches_per_week: float = Field(description="meetings, demos, notes (touches without a direction)")
    typical_days: float = Field(description="how long a spell in this state typically lasts")


class EpisodePaces(BaseModel):
    """What the stalled, gone-quiet and ghosting warnings read: the paces learned from the company's deals."""

    deals: int = Field(default=0, description="training deals the paces were learned from (0: no episode model)")
    states: list[EpisodePace] = Field(default_factory=list)
    fires_at: float | None = Field(default=None, description="the probability of an episode at which its warning "
                                   "fires")
    reading: list[str] = Field(default_factory=list, description="the same in plain sentences")


class OutcomeRequest(_Strict):
    """``POST /v1/deals/{deal_id}/outcome``: the CRM says the deal closed."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"outcome": "won",
                                                               "closed_at": "2025-06-27T16:40:00Z"}]})

    outcome: Outcome = Field(description="how the deal closed")
    closed_at: Timestamp = Field(description=(
        "when it closed (ISO 8601; without an offset it is UTC): not before the deal's created_at, nor in the "
        "future beyond the clock-skew allowance (422 at closed_at)"))


class OutcomeResponse(BaseModel):
    """The deal's recorded outcome; it has left the at-risk list."""

    deal_id: str
    outcome: Outcome
    closed_at: UtcTime
    recorded_at: UtcTime
    is_open: bool = Field(description="always false: a deal with an outcome is closed")
    last_p_win: float | None = Field(description="the win probability of the deal's latest score (monitoring)")
    model_version: str | None = Field(description="the model of that latest score")


class ModelInfo(BaseModel):
    """``GET /v1/model``: the model in use and where it came from."""

    loaded: bool
    name: str
    version: str | None = None
    source: Literal["registry", "local_copy", "path"] | None = Field(
        default=None, description="registry; local_copy (registry unreachable); path (DEALSCORE_MODEL_PATH)"
    )
    loaded_at: UtcTime | None = None
    training_window: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    recording_habits: RecordingHabits = Field(default_factory=RecordingHabits)
    state_values: StateValues = Field(default_factory=StateValues,
                                      description="past win rates per deal state: what a response is worth")
    episodes: EpisodePaces = Field(default_factory=EpisodePaces,
                                   description="the paces of active, slow, stalled and quiet deals the episode "
                                   "warnings are judged by")
    message: str | None = Field(default=None, description="why the model is missing or came from the local copy")


class ReloadResponse(BaseModel):
    """``POST /v1/model/reload``: what was loaded and whether it changed."""

    previous_version: str | None
    changed: bool
    model: ModelInfo


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    model: bool
    store: bool
    problems: list[str] = Field(default_factory=list)


class FieldError(BaseModel):
    loc: list[str | int]
    path: str
    message: str
    type: str | None = None
    fix: str | None = None


class ErrorBody(BaseModel):
    type: str = Field(description="error class, e.g. RequestValidationError, StoreUnavailableError")
    message: str
    fix: str | None = None
    fields: list[FieldError] = Field(default_factory=list)
    detail: dict[str, Any] = Field(default_factory=dict)
    request_id: str | None = None


class ErrorResponse(BaseModel):
    """Every error the API returns has this shape."""

    error: ErrorBody


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the error statuses a route can return."""
    text = {
        401: "missing or unknown API key", 403: "the key lacks the scope or may not see this deal",
        404: "not found", 409: "the deal was closed: it is no longer scored",
        413: "request body over its route's cap (POST /v1/score 4 MiB, batch 8 MiB, others 1 MiB; after gzip "
        "decoding)",
        422: "invalid request (field paths in error.fields)",
        503: "model not loaded or score store unavailable (see Retry-After)",
    }
    return {c: {"model": ErrorResponse, "description": text.get(c, "error")} for c in codes}


class ForecastRow(BaseModel):
    """Bookings of one group in one period: already won, expected from open and future deals, and the range."""

    group: str = Field(description="'company', a team or an owner id")
    period: str = Field(description="e.g. 2025-Q3 or 2025-08")
    start: UtcTime
    end: UtcTime
    booked: float = Field(description="already won in the period (0 from stored scores: the store holds open deals)")
    open_expected: float = Field(description="expected bookings from deals open now")
    new_expected: float = Field(description="expected bookings from deals not created yet")
    expected: float
    p10: float
    p50: float
    p90: float
    open_deals: int


class ForecastFanPoint(BaseModel):
    """Cumulative bookings through the end of one month: quantiles over the draws."""

    group: str
    month: str
    q05: float
    q10: float
    q25: float
    q50: float
    q75: float
    q90: float
    q95: float


class ForecastDriver(BaseModel):
    """An open deal that makes the current period's range wide (its share of the variance)."""

    deal_id: str
    group: str
    amount: float | None = Field(description="the deal's amount; null when the CRM sent none")
    p_win: float
    p_this_period: float
    share_of_variance: float


class ForecastResponse(BaseModel):
    """``GET /v1/forecast``: bookings per period with a range, from the latest stored scores."""

    as_of: UtcTime
    period: Literal["month", "quarter"]
    by: Literal["team", "owner"]
    sims: int
    seed: int
    model_version: str
    rows: list[ForecastRow]
    fan: list[ForecastFanPoint]
    drivers: list[ForecastDriver]
    notes: list[str]
    currencies: list[str | None] = Field(
        default_factory=list, description="currencies of the open deals the forecast draws from, largest pipeline "
        "first (null: deals scored without one). Every figure adds amounts as given, never converted")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def mixed_currencies(self) -> bool:
        """True when the open deals are in more than one currency (those without one count as another): the
        figures then add unlike money, and no per-currency forecast is made."""
        return mixes_currencies(self.currencies)
