"""The page's query parsing and the deal timeline."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

from dealscore_service.store import DealFilter, ScoreStore
from dealscore_service.ui.data import ListQuery, ParsedResults, timeline, touchpoint_events
from ui_helpers import T0, result, save

from dealscore.taxonomy import default_taxonomy

TAX = default_taxonomy()


def test_query_parsing_is_lenient_and_says_what_is_wrong() -> None:
    q = ListQuery.from_params({"owner": " ana ", "stage": "Proposal", "min_amount": "50_000", "per": "50",
                               "page": "3", "sort": "amount", "order": "asc", "show": "all"}, TAX)
    assert (q.owner, q.stage, q.min_amount, q.per, q.page, q.sort, q.order, q.show) == (
        "ana", "proposal", 50_000.0, 50, 3, "amount", "asc", "all")
    assert q.problems == ()
    bad = ListQuery.from_params({"stage": "closing", "min_amount": "-5", "per": "7", "page": "x", "sort": "evil",
                                 "order": "sideways", "show": "some"}, TAX)
    assert bad.stage is None and bad.min_amount is None
    assert (bad.per, bad.page, bad.sort, bad.order, bad.show) == (25, 1, "risk", "desc", "at_risk")
    assert len(bad.problems) == 2 and "Unknown stage 'closing'" in bad.problems[0]
    assert ListQuery.from_params({"min_amount": "nan"}, TAX).problems
    assert ListQuery.from_params({"min_amount": "inf"}, TAX).problems


def test_urls_keep_filters_and_drop_defaults() -> None:
    q = ListQuery.from_params({"team": "EMEA SMB", "min_amount": "1000", "page": "2"}, TAX)
    assert q.url() == "?team=EMEA+SMB&min_amount=1000&page=2"
    assert q.url(page=1) == "?team=EMEA+SMB&min_amount=1000"
    assert ListQuery().url() == "?"
    # sorting: first click on a column sorts its natural way and restarts at page 1, the next reverses
    assert q.sort_url("amount") == "?team=EMEA+SMB&min_amount=1000&sort=amount"
    assert q.sort_url("owner") == "?team=EMEA+SMB&min_amount=1000&sort=owner&order=asc"
    by_amount = ListQuery(sort="amount")
    assert by_amount.sort_url("amount") == "?sort=amount&order=asc"
    assert by_amount.aria_sort("amount") == "descending" and by_amount.aria_sort("owner") == "none"


def test_timeline_tells_what_changed(store: ScoreStore) -> None:
    save(store,
         result("T1", p_win=0.50, as_of=T0, warnings=[]),
         result("T1", p_win=0.51, as_of=T0 + timedelta(days=7), declared="negotiation", inferred="proposal"),
         result("T1", p_win=0.30, as_of=T0 + timedelta(days=14), declared="negotiation", inferred="negotiation",
                warnings=[]))
    events = timeline(store.deal_scores("T1"))
    texts = [e.text for e in events]
    assert texts == [
        "Evidence now points to negotiation (was proposal)",
        "Win probability fell from 51% to 30%",
        "No longer: Gone quiet",
        "CRM stage moved from proposal to negotiation",
        "Warning: Gone quiet",
        "First scored: 50% (grade B)",
    ]  # newest first; a one-point move is not an event
    fell = events[1]
    assert fell.kind == "down" and fell.detail == "−21 pts, grade B → C"
    assert events[0].when == T0 + timedelta(days=14) and events[-1].when == T0


def test_parsed_results_are_reused_and_bounded(store: ScoreStore) -> None:
    save(store, *[result(f"R{i}") for i in range(3)])
    parsed = ParsedResults(size=2)
    rows = store.latest_open_scores(DealFilter())
    first = [parsed.get(s) for s in rows]
    assert [r.deal_id for r in first] == ["R0", "R1", "R2"]
    assert parsed.get(rows[2]) is first[2]  # the same object: not parsed again
    assert parsed.get(rows[0]) is not first[0]  # evicted (only two are kept) and parsed anew
    assert parsed.get(rows[0]) == first[0]


def test_touchpoints_join_the_timeline_when_the_store_keeps_them() -> None:
    stored = SimpleNamespace(touchpoints=[
        {"occurred_at": "2025-05-02T10:00:00", "type": "email", "direction": "outbound"},
        {"occurred_at": "2025-05-06T15:30:00+02:00", "type": "meeting", "contact_role": "decision_maker",
         "contact_id": "c7"},
        {"occurred_at": "not a time", "type": "call"},
    ])
    events, hidden, kept = touchpoint_events(stored)
    assert kept and hidden == 0
    assert [(e.when, e.text, e.detail) for e in events] == [
        (datetime(2025, 5, 6, 13, 30), "Meeting with the decision maker", "contact c7"),
        (datetime(2025, 5, 2, 10, 0), "Outbound email", None),
    ]
    events, hidden, _ = touchpoint_events(stored, limit=1)
    assert len(events) == 1 and hidden == 1
    assert touchpoint_events(SimpleNamespace()) == ([], 0, False)  # a store that does not keep them
