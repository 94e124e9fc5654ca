"""Payload → DealHistory: the library's own validation, with errors pointing at JSON paths."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from dealscore.data.validate import validate_history
from dealscore_service.client import deal_payload
from dealscore_service.errors import InvalidPayloadError
from dealscore_service.payload import payload_hash, to_history
from dealscore_service.schemas import BatchScoreRequest, DealPayload, ScoreRequest

AS_OF = datetime(2024, 3, 1)


def deal(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "deal_id": "d1", "account_id": "a1", "owner_id": "r1", "team": "east", "created_at": "2024-01-01T09:00:00",
        "amount": 12000, "account": {"industry": "software", "employees": 120},
        "stage_history": [
            {"stage": "prospecting", "changed_at": "2024-01-01T09:00:00"},
            {"stage": "Discovery", "changed_at": "2024-01-20T10:00:00", "recorded_at": "2024-01-22T08:00:00"},
        ],
        "activities": [
            {"activity_id": "x1", "occurred_at": "2024-01-03T10:00:00", "type": "email", "direction": "outbound"},
            {"activity_id": "x2", "occurred_at": "2024-01-05T10:00:00", "type": "Meeting", "direction": "inbound",
             "contact_role": "decision_maker"},
        ],
    }
    body.update(changes)
    return body


def convert(*bodies: dict[str, Any], as_of: datetime | None = AS_OF, batch: bool = False, now: datetime | None = None):
    deals = [DealPayload.model_validate(b) for b in bodies]
    return to_history(deals, as_of=as_of, taxonomy=None, batch=batch, now=now)


def paths(exc: InvalidPayloadError) -> list[str]:
    return [f["path"] for f in exc.fields]


def test_payload_becomes_a_validated_history_with_canonical_names() -> None:
    c = convert(deal())
    h = c.history
    assert c.as_of == AS_OF and h.cut_at == pd.Timestamp(AS_OF)
    assert list(h.stage_history["stage"]) == ["prospecting", "discovery"]
    assert list(h.activities["type"]) == ["email", "meeting"]
    assert h.deals.loc[0, "team"] == "east" and h.accounts.loc[0, "employees"] == 120
    assert h.stage_history["changed_at"].dtype == "datetime64[ns]"


def test_round_trip_through_the_api_shape_matches_the_library(trained_model) -> None:
    """A deal sent over HTTP becomes exactly the history the library validated from the CSV folder."""
    history = trained_model.history
    ids = trained_model.open_ids[:3]
    bodies = [{k: v for k, v in deal_payload(history, d).items() if k != "as_of"} for d in ids]
    c = convert(*bodies, as_of=history.data_cut.to_pydatetime(), batch=True)
    expected, _ = validate_history(history.for_deals(ids).replace(
        accounts=history.accounts[history.accounts["account_id"].isin(history.for_deals(ids).deals["account_id"])],
        cut_at=history.data_cut))
    for table in ("accounts", "deals", "stage_history", "activities"):
        got = getattr(c.history, table)
        want = getattr(expected, table)
        key = [c_ for c_ in ("deal_id", "account_id", "changed_at", "occurred_at") if c_ in want][:2]
        got = _plain(got.sort_values(key, kind="stable").reset_index(drop=True)[list(want.columns)])
        want = _plain(want.sort_values(key, kind="stable").reset_index(drop=True))
        pd.testing.assert_frame_equal(got, want, check_dtype=False, obj=table)


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Same values, one missing-value convention (string columns may be str or object dtype)."""
    return frame.astype(object).where(frame.notna(), None)


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (lambda b: b["stage_history"][1].update(stage="won-ish"), "stage_history[1].stage", "not in the taxonomy"),
        (lambda b: b["activities"][0].update(type="zoom"), "activities[0].type", "activity types"),
        (lambda b: b["activities"][1].update(direction="sideways"), "activities[1].direction", "direction"),
        (lambda b: b["activities"][1].update(contact_role="ceo"), "activities[1].contact_role", "contact_role"),
        (lambda b: b["activities"][0].update(occurred_at="2023-12-01T00:00:00"), "activities[0].occurred_at",
         "before the deal was created"),
        (lambda b: b["stage_history"][0].update(changed_at="2023-12-01T00:00:00"), "stage_history[0].changed_at",
         "before the deal was created"),
        (lambda b: b["activities"][1].update(occurred_at="2024-04-01T00:00:00"), "activities[1].occurred_at",
         "after as_of"),
        (lambda b: b["stage_history"][1].update(recorded_at="2024-03-02T00:00:00"), "stage_history[1].recorded_at",
         "after as_of"),
        (lambda b: b.update(closed_at="2024-02-01T00:00:00", outcome="won"), "closed_at", "only open deals"),
        (lambda b: b["account"].update(account_id="other"), "account.account_id", "differs"),
        (lambda b: b["activities"][1].update(activity_id="x1"), "activities[0]", "unique"),
    ],
)
def test_contract_violations_name_the_json_path(change: Any, path: str, words: str) -> None:
    body = deal()
    change(body)
    with pytest.raises(InvalidPayloadError) as err:
        convert(body)
    assert any(p.startswith(path) for p in paths(err.value)), paths(err.value)
    assert words in str(err.value) or any(words in f["message"] for f in err.value.fields)
    assert err.value.http_status == 422
    assert all(f.get("fix") for f in err.value.fields)


def test_batch_paths_point_into_the_right_deal() -> None:
    bad = deal(deal_id="d2", account_id="a2")
    for i, act in enumerate(bad["activities"]):
        act["activity_id"] = f"y{i}"
    bad["activities"][1]["type"] = "telepathy"
    with pytest.raises(InvalidPayloadError) as err:
        convert(deal(), bad, batch=True)
    assert paths(err.value) == ["deals[1].activities[1].type"]


def test_two_deals_of_one_account_must_agree_on_its_profile() -> None:
    other = deal(deal_id="d2", account={"industry": "retail"})
    for i, act in enumerate(other["activities"]):  # the two deals' touchpoints have their own ids
        act["activity_id"] = f"y{i}"
    with pytest.raises(InvalidPayloadError) as err:
        convert(deal(), other, batch=True)
    assert paths(err.value) == ["deals[1].account"]
    assert "deals[0].account" in err.value.fields[0]["message"]


def test_time_zones_are_normalised_to_utc() -> None:
    """Every time with an offset (any offsets) or none with one: the same instants, the same deal."""
    shifted = copy.deepcopy(deal())
    shifted["created_at"] = "2024-01-01T11:00:00+02:00"
    for items in (shifted["stage_history"], shifted["activities"]):
        for item in items:
            for name in ("changed_at", "occurred_at", "recorded_at"):
                if name in item:
                    item[name] += "Z"
    a, b = convert(deal()), convert(shifted)
    assert a.history.deals.loc[0, "created_at"] == b.history.deals.loc[0, "created_at"]
    assert a.hashes == b.hashes


def test_one_time_with_an_offset_among_times_without_is_refused() -> None:
    """The data contract's zone rule, as the CLI applies it to a CSV file (``rules.zone_mix``)."""
    mixed = deal(created_at="2024-01-01T11:00:00+02:00")
    with pytest.raises(InvalidPayloadError) as e:
        convert(mixed)
    assert paths(e.value) == ["stage_history[0].changed_at", "stage_history[1].changed_at",
                              "stage_history[1].recorded_at", "activities[0].occurred_at",
                              "activities[1].occurred_at"]


def test_hash_covers_content_and_as_of() -> None:
    base = DealPayload.model_validate(deal())
    today = datetime(2024, 3, 1, 10)
    h = payload_hash(base, AS_OF, today)
    assert h == payload_hash(DealPayload.model_validate(deal()), AS_OF, today + timedelta(days=3))
    assert h != payload_hash(base, AS_OF + timedelta(seconds=1), today)
    assert h != payload_hash(DealPayload.model_validate(deal(amount=12001)), AS_OF, today)
    # without as_of: the same day replays, the next day is a new score
    assert payload_hash(base, None, today) == payload_hash(base, None, today + timedelta(hours=5))
    assert payload_hash(base, None, today) != payload_hash(base, None, today + timedelta(days=1))
    # one deal alone or inside a batch: same content, same hash
    single = ScoreRequest.model_validate({**deal(), "as_of": AS_OF.isoformat()})
    batch = BatchScoreRequest.model_validate({"deals": [deal()], "as_of": AS_OF.isoformat()})
    assert payload_hash(single, single.as_of, today) == payload_hash(batch.deals[0], batch.as_of, today) == h


def test_hash_ignores_key_order_and_spelling_of_the_same_content() -> None:
    today = datetime(2024, 3, 1, 10)
    body = deal()
    reordered = {k: body[k] for k in reversed(list(body))}
    reordered["activities"] = [{k: a[k] for k in reversed(list(a))} for a in body["activities"]]
    reordered["amount"] = 12000.0  # the same number written as a float
    h = payload_hash(DealPayload.model_validate(body), AS_OF, today)
    assert payload_hash(DealPayload.model_validate(reordered), AS_OF, today) == h
    # a field added to the account is different content
    moved = deal(account={"industry": "software", "employees": 120, "region": "r1"})
    assert payload_hash(DealPayload.model_validate(moved), AS_OF, today) != h


def test_hash_leaves_out_unknown_fields_at_every_level() -> None:
    """Unknown fields are ignored, but pydantic kept them in the hash in the order sent: the same deal with
    its CRM's extra fields in another order was stored as a second score."""
    today = datetime(2024, 3, 1, 10)
    h = payload_hash(DealPayload.model_validate(deal()), AS_OF, today)
    for first, second in ((1, 2), (2, 1), (3, "x")):
        body = deal()
        body.update({"crm_a": first, "crm_b": second} if first != 2 else {"crm_b": second, "crm_a": first})
        body["account"] = {**body["account"], "crm_id": second}
        body["stage_history"][0] = {"crm_note": first, **body["stage_history"][0]}
        body["activities"][1] = {**body["activities"][1], "mood": [first, second]}
        assert payload_hash(DealPayload.model_validate(body), AS_OF, today) == h, (first, second)
    single = ScoreRequest.model_validate({**deal(), "crm_a": 1, "as_of": AS_OF.isoformat(), "out_of_life": "drop"})
    assert payload_hash(single, single.as_of, today) == h
    assert payload_hash(DealPayload.model_validate(deal(amount=12001)), AS_OF, today) != h  # known fields count


def test_without_as_of_deals_are_scored_now_allowing_small_clock_skew() -> None:
    now = datetime(2024, 3, 1, 12, 0)
    c = convert(deal(), as_of=None, now=now)
    assert c.as_of == now
    ahead = deal()
    ahead["activities"][1]["occurred_at"] = "2024-03-01T12:02:00"  # the CRM's clock is 2 minutes ahead
    assert convert(ahead, as_of=None, now=now).as_of == datetime(2024, 3, 1, 12, 2)
    future = deal()
    future["activities"][1]["occurred_at"] = "2024-03-02T12:00:00"
    with pytest.raises(InvalidPayloadError) as err:
        convert(future, as_of=None, now=now)
    assert paths(err.value) == ["activities[1].occurred_at"]


def test_an_as_of_in_the_future_is_refused_at_as_of() -> None:
    now = datetime(2024, 3, 1, 12, 0)
    assert convert(deal(), as_of=datetime(2024, 3, 1, 12, 4), now=now).as_of == datetime(2024, 3, 1, 12, 4)
    for batch in (False, True):
        with pytest.raises(InvalidPayloadError) as err:
            convert(deal(), as_of=datetime(2030, 1, 1), now=now, batch=batch)
        assert paths(err.value) == ["as_of"]
        assert "in the future" in err.value.fields[0]["message"] and "omit as_of" in err.value.fields[0]["fix"]


def test_a_touchpoint_dated_after_as_of_is_refused_even_if_recorded_before() -> None:
    """The contract allows nothing dated after the data cut; a booked meeting is sent once it happened."""
    body = deal()
    body["activities"][1].update(occurred_at="2024-03-05T10:00:00", recorded_at="2024-02-20T10:00:00")
    with pytest.raises(InvalidPayloadError) as err:
        convert(body)
    assert paths(err.value) == ["activities[1].occurred_at"]


def test_an_expected_close_before_the_deal_was_created_is_scored_with_a_notice() -> None:
    """The CLI's load report warns of such a deal; the API scored it with no word, though it reads as overdue."""
    converted = convert(deal(expected_close_date="2023-12-31"), deal(deal_id="d2", expected_close_date="2024-01-01",
                                                                   activities=[]), batch=True)
    [notice] = converted.notices["d1"]
    assert notice.startswith("expected_close_date 2023-12-31 is before the day the deal was created (2024-01-01)")
    assert "d2" not in converted.notices and len(converted.history.deals) == 2
