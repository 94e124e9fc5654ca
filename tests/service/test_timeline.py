"""What the store keeps of a request for the timeline: taken from the validated history, canonical, columnar."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from dealscore.taxonomy import default_taxonomy
from dealscore_service.payload import to_history
from dealscore_service.schemas import EXAMPLE_DEAL, DealPayload
from dealscore_service.store.timeline import (
    STAGE_CHANGE_FIELDS,
    TOUCHPOINT_FIELDS,
    deal_timelines,
    empty,
    to_rows,
)

AS_OF = datetime(2025, 5, 6)


def deal(deal_id: str = "OPP-1", **changes: Any) -> DealPayload:
    body = copy.deepcopy(EXAMPLE_DEAL)
    body.update(deal_id=deal_id, **changes)
    return DealPayload.model_validate(body)


def test_one_deal_is_kept_in_the_librarys_canonical_spelling_oldest_first() -> None:
    """CRM spellings (aliases, capitals) are stored as the model saw them; order is by time whatever was sent."""
    acts = [
        {"occurred_at": "2025-04-08T13:00:00Z", "type": "Event", "direction": "Inbound",
         "contact_role": "Decision_Maker", "contact_id": "c9"},
        {"occurred_at": "2025-03-04T10:00:00+02:00", "type": "Sent Email", "direction": "outbound"},
        {"occurred_at": "2025-03-19T14:00:00.750Z", "type": "log a call"},
    ]
    stages = [{"stage": "Needs Analysis", "changed_at": "2025-03-20T15:00:00Z", "amount": 5000},
              {"stage": "qualified", "changed_at": "2025-03-03T09:12:00Z", "expected_close_date": "2025-06-30"}]
    converted = to_history([deal(activities=acts, stage_history=stages)], as_of=AS_OF,
                           taxonomy=default_taxonomy(), batch=False)
    tl = deal_timelines(converted.history)["OPP-1"]
    assert tl.touchpoints == {
        "occurred_at": ["2025-03-04T08:00:00", "2025-03-19T14:00:00", "2025-04-08T13:00:00"],  # UTC, to the second
        "type": ["email", "call", "meeting"],
        "direction": ["outbound", None, "inbound"],
        "contact_role": [None, None, "decision_maker"],
        "contact_id": [None, None, "c9"],
    }
    assert tl.stage_changes == {
        "changed_at": ["2025-03-03T09:12:00", "2025-03-20T15:00:00"],
        "stage": ["qualification", "discovery"],
        "amount": [None, 5000.0],
        "expected_close_date": ["2025-06-30", None],
    }


def test_a_batch_is_split_by_deal_and_only_the_asked_deals_are_kept() -> None:
    one = deal("A", activities=[{"occurred_at": "2025-03-04T10:00:00Z", "type": "email"}])
    two = deal("B", account_id="ACC-2", activities=[])
    three = deal("C", account_id="ACC-3")
    converted = to_history([one, two, three], as_of=AS_OF, taxonomy=default_taxonomy(), batch=True)
    every = deal_timelines(converted.history)
    assert list(every) == ["A", "B", "C"]
    assert every["A"].touchpoints["type"] == ["email"]
    assert every["B"].touchpoints == empty(TOUCHPOINT_FIELDS)  # none sent: kept as empty, not missing
    assert len(every["C"].touchpoints["type"]) == len(EXAMPLE_DEAL["activities"])
    assert every["C"].stage_changes["stage"] == ["qualification", "discovery", "proposal"]
    some = deal_timelines(converted.history, ["C", "B"])
    assert list(some) == ["C", "B"] and some["C"] == every["C"] and some["B"] == every["B"]
    # rows in any order (a history not sorted by the loader) give the same timelines
    h = converted.history
    shuffled = h.replace(activities=h.activities.iloc[::-1].reset_index(drop=True),
                         stage_history=h.stage_history.iloc[::-1].reset_index(drop=True))
    assert deal_timelines(shuffled) == every


def test_stored_columns_read_back_as_rows_leniently() -> None:
    cols = {"occurred_at": ["2025-03-04T08:00:00", "2025-03-05T08:00:00"], "type": ["email", "call"],
            "direction": ["inbound"], "contact_role": "not a list"}
    assert to_rows(cols, TOUCHPOINT_FIELDS) == [
        {"occurred_at": "2025-03-04T08:00:00", "type": "email", "direction": "inbound", "contact_role": None,
         "contact_id": None},
        {"occurred_at": "2025-03-05T08:00:00", "type": "call", "direction": None, "contact_role": None,
         "contact_id": None},
    ]
    assert to_rows(None, TOUCHPOINT_FIELDS) is None
    assert to_rows(empty(STAGE_CHANGE_FIELDS), STAGE_CHANGE_FIELDS) == []
