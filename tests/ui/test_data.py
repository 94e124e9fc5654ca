"""The page's query parsing and the deal timeline."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

from dealscore.scoring.result import ScoreResult
from dealscore.taxonomy import default_taxonomy
from dealscore_service.auth import Principal, Scope
from dealscore_service.store import DealFilter, ScoreStore
from dealscore_service.ui.data import (
    MAX_TOUCHPOINTS,
    ListQuery,
    ParsedResults,
    build_deal,
    build_list,
    stage_change_events,
    timeline,
    touch_summary,
    touchpoint_events,
)
from dealscore_service.ui.data.query import MAX_PAGE
from tests.ui.ui_helpers import T0, result, save

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
    assert "Unknown stage 'closing'" in bad.problems[0]
    # every dropped value says so, as the page promises: not only the filters but also the list's own settings
    assert [p.split(" ")[0] for p in bad.problems] == ["Unknown", "Minimum", "Show", "Sort", "Order", "Page", "'7'"]
    reviewer = ListQuery.from_params({"per": "500", "sort": "value", "order": "up", "page": "abc", "show": "ALL"}, TAX)
    assert len(reviewer.problems) == 5 and "'500' deals a page is not offered: pick 25, 50, 100." in reviewer.problems
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
    assert [(e.when, e.text, e.detail, e.channel, e.direction) for e in events] == [
        (datetime(2025, 5, 6, 13, 30), "Meeting with the decision maker", "contact c7", "meeting", None),
        (datetime(2025, 5, 2, 10, 0), "Outbound email", None, "email", "outbound"),
    ]
    events, hidden, _ = touchpoint_events(stored, limit=1)
    assert len(events) == 1 and hidden == 1
    assert len(touchpoint_events(stored, limit=None)[0]) == 2
    assert touchpoint_events(SimpleNamespace()) == ([], 0, False)  # a store that does not keep them
    assert touchpoint_events(SimpleNamespace(touchpoints=None)) == ([], 0, False)  # a score stored before 0002
    [other] = touchpoint_events(SimpleNamespace(touchpoints=[
        {"occurred_at": "2025-05-02T10:00:00", "type": "webinar", "direction": "inbound", "contact_role": "other"}]))[0]
    assert other.text == "Inbound webinar with another contact" and other.channel == "webinar"


def test_touch_summary_counts_every_touchpoint() -> None:
    stored = SimpleNamespace(touchpoints=[
        {"occurred_at": "2025-05-01T10:00:00", "type": "email", "direction": "inbound"},
        {"occurred_at": "2025-05-03T10:00:00", "type": "email", "direction": "outbound"},
        {"occurred_at": "2025-05-02T10:00:00", "type": "call", "direction": "inbound"},
        {"occurred_at": "2025-05-04T10:00:00", "type": "meeting"},
    ])
    summary = touch_summary(stored)
    assert summary is not None
    assert (summary.total, summary.by_type, summary.inbound) == (4, [("email", 2), ("call", 1), ("meeting", 1)], 2)
    assert summary.last_inbound == datetime(2025, 5, 2, 10)
    assert touch_summary(SimpleNamespace(touchpoints=None)) is None
    assert touch_summary(SimpleNamespace(touchpoints=[])).total == 0  # type: ignore[union-attr]


def test_stage_changes_read_as_the_crm_recorded_them() -> None:
    stored = SimpleNamespace(stage_changes=[
        {"changed_at": "2025-03-20T15:00:00", "stage": "proposal", "amount": 48_000.0, "expected_close_date": None},
        {"changed_at": "2025-03-03T09:12:00", "stage": "qualification", "amount": 40_000.0,
         "expected_close_date": "2025-06-30"},
        {"changed_at": "2025-03-25T09:00:00", "stage": "proposal", "amount": None, "expected_close_date": None},
        {"changed_at": "2025-04-02T09:00:00", "stage": "proposal", "amount": None, "expected_close_date": "2025-07-31"},
        {"changed_at": "2025-04-10T09:00:00", "stage": "discovery", "amount": 48_000.0, "expected_close_date": None},
        {"changed_at": "never", "stage": "negotiation"},
    ])
    events, kept = stage_change_events(stored, TAX)
    assert kept
    assert [(e.when.date().isoformat(), e.text, e.detail) for e in events] == [
        ("2025-04-10", "CRM stage moved back from proposal to discovery", None),
        ("2025-04-02", "CRM deal updated (stage still proposal)", "expected close 30 Jun 2025 → 31 Jul 2025"),
        # 25 Mar: same stage, nothing new (empty amount and date keep the last known ones): no event
        ("2025-03-20", "CRM stage moved from qualification to proposal", "amount 40,000 → 48,000"),
        ("2025-03-03", "CRM stage set to qualification", "amount 40,000; expected close 30 Jun 2025"),
    ]
    assert {e.kind for e in events} == {"stage"} and {e.channel for e in events} == {"stage"}
    assert stage_change_events(SimpleNamespace(stage_changes=None)) == ([], False)


def test_deal_timeline_merges_touchpoints_stage_changes_and_scores(store: ScoreStore) -> None:
    touches = [{"occurred_at": (T0 - timedelta(hours=i)).isoformat(), "type": "email",
                "direction": "outbound" if i % 2 else "inbound"} for i in range(MAX_TOUCHPOINTS + 5)]
    stages = [{"changed_at": (T0 - timedelta(days=20)).isoformat(), "stage": "proposal"},
              {"changed_at": (T0 - timedelta(days=3)).isoformat(), "stage": "negotiation"}]
    save(store, result("M1", p_win=0.50, as_of=T0 - timedelta(days=10)))
    save(store, result("M1", p_win=0.30, as_of=T0, declared="negotiation"), touchpoints=touches,
         stage_changes=stages)
    manager = Principal("m", frozenset({Scope.read}))
    view = build_deal(store, manager, "M1", TAX)
    assert view is not None and view.touchpoints_kept and view.stage_changes_kept
    assert view.touchpoints_hidden == 5 and view.touch_summary is not None and view.touch_summary.total == 65
    kinds = [e.kind for e in view.events]
    assert kinds.count("touch") == MAX_TOUCHPOINTS
    whens = [e.when for e in view.events]
    assert whens == sorted(whens, reverse=True)  # newest first across kinds
    texts = [e.text for e in view.events]
    # the CRM's dated change replaces "the stage differed from the previous score" (dated at the score)
    assert "CRM stage moved from proposal to negotiation" in texts
    [moved] = [e for e in view.events if e.text == "CRM stage moved from proposal to negotiation"]
    assert moved.when == T0 - timedelta(days=3)
    assert "Win probability fell from 50% to 30%" in texts and "First scored: 50% (grade B)" in texts
    everything = build_deal(store, manager, "M1", TAX, all_touchpoints=True)
    assert everything is not None and everything.touchpoints_hidden == 0
    assert [e.kind for e in everything.events].count("touch") == 65
    # a deal whose latest score was stored without a timeline keeps the score-to-score stage event
    save(store, result("M2", as_of=T0 - timedelta(days=7)))
    save(store, result("M2", as_of=T0, declared="negotiation"))
    old = build_deal(store, manager, "M2", TAX)
    assert old is not None and not old.touchpoints_kept and old.touch_summary is None
    assert "CRM stage moved from proposal to negotiation" in [e.text for e in old.events]


MANAGER = Principal("manager", frozenset({Scope.read}))


def test_a_page_past_any_count_shows_the_last_page(store: ScoreStore) -> None:
    """A page whose row offset overflows the database's integers (SQLite raised OverflowError: a 500)."""
    save(store, *[result(f"P{i:02d}", amount=1000.0 * (i + 1)) for i in range(30)])
    q = ListQuery.from_params({"page": "9223372036854775807"}, TAX)
    assert q.page == MAX_PAGE
    page = build_list(store, MANAGER, q, TAX)
    assert (page.page, page.pages, [r.result.deal_id for r in page.rows]) == (2, 2, ["P04", "P03", "P02", "P01", "P00"])
    assert page.query.page == 2


def _named(deal_id: str, name: str | None, account: str | None, owner_id: str, owner: str | None) -> ScoreResult:
    return result(deal_id, owner=owner_id).model_copy(
        update={"deal_name": name, "account_name": account, "owner_name": owner})


def test_name_columns_sort_by_the_names_shown(store: ScoreStore) -> None:
    """The deal, account and owner columns show names (the id without one), so they sort by that text."""
    save(store, _named("A1", "Zeta upgrade", "Yonder", "o1", "Carla"),
         _named("B2", "Alpha renewal", None, "o2", "Bob"),
         _named("C3", None, "delta", "o3", None))

    def order(sort: str) -> list[str]:
        page = build_list(store, MANAGER, ListQuery(sort=sort, order="asc", show="all"), TAX)
        return [r.result.deal_id for r in page.rows]
    assert order("deal") == ["B2", "C3", "A1"]  # "Alpha renewal" < "C3" (no name) < "Zeta upgrade"
    assert order("account") == ["B2", "C3", "A1"]  # "acct-B2" (no name) < "delta" < "Yonder", case aside
    assert order("owner") == ["B2", "A1", "C3"]  # "Bob" < "Carla" < "o3"


def test_the_owner_filter_offers_names(store: ScoreStore) -> None:
    save(store, _named("A1", None, None, "o1", "Carla"), _named("B2", None, None, "o2", "Bob"),
         _named("C3", None, None, "o3", None))
    page = build_list(store, MANAGER, ListQuery(owner="carla"), TAX)
    assert page.owners == [("o2", "Bob"), ("o1", "Carla"), ("o3", "o3")]
    # a name typed in the URL is not an id: the closest owners are offered by name, linking their ids
    assert page.unknown_filters == [("owner", "carla", [("o1", "Carla")])]


def test_two_owners_with_one_name_are_told_apart_in_the_menu(store: ScoreStore) -> None:
    """Two "Ana Silva" entries offered the manager a coin toss."""
    save(store, _named("A1", None, None, "R0011", "Ana Silva"), _named("B2", None, None, "R0042", "Ana Silva"),
         _named("C3", None, None, "R0050", "Bo"))
    page = build_list(store, MANAGER, ListQuery(), TAX)
    assert page.owners == [("R0011", "Ana Silva (R0011)"), ("R0042", "Ana Silva (R0042)"), ("R0050", "Bo")]


def test_timeline_and_chart_tooltips_read_percent_as_the_header_does(store: ScoreStore) -> None:
    """One percent rule on the page: a win probability under 1% reads "<1%", never "0%"."""
    save(store, result("T2", p_win=0.20, as_of=T0), result("T2", p_win=0.004, as_of=T0 + timedelta(days=7)))
    texts = [e.text for e in timeline(store.deal_scores("T2"))]
    assert "Win probability fell from 20% to <1%" in texts
    view = build_deal(store, MANAGER, "T2", TAX)
    assert view is not None and view.history[-1].label.startswith(f"{T0 + timedelta(days=7):%d %b %Y}: <1% ")


def test_a_closed_deal_has_an_outcome_and_nothing_at_risk(store: ScoreStore) -> None:
    save(store, result("C5", p_win=0.20, amount=100_000, typical=0.45))
    assert store.record_outcome("C5", "lost", T0 + timedelta(days=2), key_name="crm") is not None
    view = build_deal(store, MANAGER, "C5", TAX)
    assert view is not None and not view.is_open
    assert (view.value_at_risk, view.outcome, view.closed_at) == (0.0, "lost", T0 + timedelta(days=2))
