"""The ``deals`` table: the at-risk list paged by the database, bounded score history, migration 0004's fill."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from datetime import datetime

import pytest
from sqlalchemy import event, text

from dealscore.scoring import at_risk
from dealscore.scoring.result import ScoreResult
from dealscore_service.auth import Principal, Scope
from dealscore_service.store import DealFilter, ListRequest, ScoreStore, ScoreToSave
from dealscore_service.store.migrate import downgrade, migrate
from dealscore_service.store.ranking import rank_of

MakeResult = Callable[..., ScoreResult]
TEAMS = ("east", "west", None)
STAGES = ("qualification", "proposal", "negotiation")


def _population(make_result: MakeResult, n: int = 60, seed: int = 3) -> list[ScoreResult]:
    """Deals at risk with and without amounts, safe ones, ties, several warnings and previous scores."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        amount = None if i % 11 == 0 else float(rng.choice([1000, 5000, 5000, 20000, 80000]))
        r = make_result(f"d{i:03d}", p_win=rng.choice([0.1, 0.2, 0.3, 0.45, 0.6, 0.8]), amount=amount,
                        owner=f"r{i % 4}", team=TEAMS[i % 3], stage=STAGES[i % 3],
                        typical=rng.choice([0.4, 0.5, None]),
                        warnings=tuple(rng.sample(["gone_quiet", "single_threaded", "stalled"], rng.randint(0, 2))))
        if i % 5 == 0:
            r = r.model_copy(update={"previous_p_win": min(1.0, r.p_win + 0.2)})
        out.append(r)
    return out


def _saved(store: ScoreStore, results: list[ScoreResult]) -> None:
    store.save([ScoreToSave(r, f"h-{r.deal_id}", True) for r in results])


@pytest.mark.parametrize("filters", [DealFilter(), DealFilter(team="east"), DealFilter(owner="r1"),
                                     DealFilter(declared_stage="proposal", min_amount=4000)])
def test_list_page_is_the_librarys_ranking(store: ScoreStore, make_result: MakeResult, filters: DealFilter) -> None:
    results = _population(make_result)
    _saved(store, results)
    keep = [r for r in results if (filters.team is None or r.team == filters.team)
            and (filters.owner is None or r.owner_id == filters.owner)
            and (filters.declared_stage is None or r.declared_stage == filters.declared_stage)
            and (filters.min_amount is None or (r.amount is not None and r.amount >= filters.min_amount))]
    expected = at_risk(keep)
    page = store.list_page(ListRequest(filters=filters, limit=500))
    assert [i.result.deal_id for i in page.items] == [r.deal_id for r in expected]
    assert [i.result.risk_level for i in page.items] == [r.risk_level for r in expected]
    assert [i.result.priority for i in page.items] == pytest.approx([r.priority for r in expected])
    assert page.at_risk == len(expected) and page.open_deals == len(keep)
    assert page.value_at_risk == pytest.approx(sum(r.value_at_risk or 0 for r in expected))
    assert page.pipeline_value == pytest.approx(sum(r.amount or 0 for r in keep))
    tiles = [i.result.deal_id for o in range(0, len(expected), 7)
             for i in store.list_page(ListRequest(filters=filters, limit=7, offset=o)).items]
    assert tiles == [r.deal_id for r in expected]
    # other sorts keep each deal's level; missing values last either way
    by_amount = store.list_page(ListRequest(filters=filters, sort="amount", order="asc", limit=500)).items
    levels = {r.deal_id: r.risk_level for r in expected}
    assert {i.result.deal_id: i.result.risk_level for i in by_amount} == levels
    amounts = [i.result.amount for i in by_amount]
    present = [a for a in amounts if a is not None]
    assert present == sorted(present) and amounts[len(present):] == [None] * (len(amounts) - len(present))


def test_list_page_all_open_deals_and_visibility(store: ScoreStore, make_result: MakeResult) -> None:
    results = _population(make_result)
    _saved(store, results)
    everything = store.list_page(ListRequest(include_not_at_risk=True, limit=500)).items
    ranked = at_risk(results)
    risky = {r.deal_id for r in ranked}
    rest = sorted((r for r in results if r.deal_id not in risky), key=lambda r: (-(r.amount or 0.0), r.deal_id))
    assert [i.result.deal_id for i in everything] == [r.deal_id for r in ranked] + [r.deal_id for r in rest]
    reverse = store.list_page(ListRequest(include_not_at_risk=True, order="asc", limit=500)).items
    assert [i.result.deal_id for i in reverse] == [i.result.deal_id for i in reversed(everything)]
    east = Principal("east", frozenset({Scope.read}), teams=frozenset({"east"}))
    visible = store.list_page(ListRequest(include_not_at_risk=True, limit=500), east).items
    assert {i.result.team for i in visible} == {"east"}
    assert store.filter_choices(east)[1] == ["east"]
    assert store.filter_choices()[1] == ["east", "west"]


def test_history_is_bounded_and_only_the_latest_score_keeps_its_timeline(
    store_url: str, make_result: MakeResult,
) -> None:
    store = ScoreStore(store_url, keep_scores=3)
    store.migrate()
    touches = {"occurred_at": ["2024-04-02T09:00:00"], "type": ["email"], "direction": ["outbound"],
               "contact_role": [None], "contact_id": [None]}
    for day in range(1, 7):
        store.add([ScoreToSave(make_result("d1", as_of=f"2024-05-0{day}", p_win=day / 10), f"h{day}", True,
                               touchpoints=touches, stage_changes=None)])
    scores = store.deal_scores("d1", with_timeline=True)
    assert [s.p_win for s in scores] == [0.4, 0.5, 0.6] and store.count() == 3
    assert scores[-1].touchpoints == [dict(zip(touches, v, strict=True)) for v in zip(*touches.values(), strict=True)]
    with store.engine.connect() as conn:
        kept = conn.execute(text("SELECT count(*) FROM scores WHERE touchpoints IS NOT NULL")).scalar()
    assert kept == 1
    # a late score of an older day does not become the latest
    store.add([ScoreToSave(make_result("d1", as_of="2024-04-01", p_win=0.9), "late", True)])
    assert store.deal_states(["d1"])["d1"].p_win == 0.6
    store.dispose()


def test_migration_0004_fills_the_deals_table_from_stored_scores(store: ScoreStore, make_result: MakeResult) -> None:
    results = _population(make_result, n=20)
    _saved(store, [r.model_copy(update={"as_of": datetime(2024, 4, 1), "p_win": 0.99}) for r in results])
    store.save([ScoreToSave(r, f"late-{r.deal_id}", True) for r in results])
    before = store.list_page(ListRequest(include_not_at_risk=True, limit=500)).items
    downgrade(store.engine, "0003")
    migrate(store.engine)
    after = store.list_page(ListRequest(include_not_at_risk=True, limit=500)).items
    assert [i.result for i in after] == [i.result for i in before]
    assert [rank_of(i.result).group for i in after] == [rank_of(r).group for r in
                                                      [i.result for i in before]]


def _assert_is_the_librarys_list(store: ScoreStore, latest: dict[str, ScoreResult], filters: DealFilter) -> None:
    """The list's page, levels and totals equal the library's ranking of these open deals' latest results."""
    keep = [r for r in latest.values() if (filters.team is None or r.team == filters.team)
            and (filters.owner is None or r.owner_id == filters.owner)]
    expected = at_risk(keep)
    page = store.list_page(ListRequest(filters=filters, limit=500))
    assert [(i.result.deal_id, i.result.risk_level) for i in page.items] == [
        (r.deal_id, r.risk_level) for r in expected]
    assert (page.open_deals, page.at_risk) == (len(keep), len(expected))
    assert page.pipeline_value == pytest.approx(sum(r.amount or 0 for r in keep))
    assert page.value_at_risk == pytest.approx(sum(r.value_at_risk or 0 for r in expected))


@pytest.mark.parametrize("filters", [DealFilter(), DealFilter(owner="r1")])
def test_totals_and_levels_kept_between_pages_follow_every_change_from_any_worker(
    store: ScoreStore, make_result: MakeResult, filters: DealFilter,
) -> None:
    """The totals and level cut-offs are reused while ``deals`` is unchanged, never after a change.

    ``other`` is a second worker on the same database: what it writes must show
    on ``store``'s next page although ``store`` kept the totals of the page before.
    """
    latest = {r.deal_id: r for r in _population(make_result, n=40)}
    _saved(store, list(latest.values()))
    other = ScoreStore(store.url)
    try:
        _assert_is_the_librarys_list(store, latest, filters)
        _assert_is_the_librarys_list(store, latest, filters)  # from what it kept: the same
        # a new score: a safe deal of r1 becomes the largest at risk (totals, order and every cut-off move)
        safe = next(r for r in latest.values() if r.owner_id == "r1" and r.deal_id not in
                    {x.deal_id for x in at_risk(list(latest.values()))})
        latest[safe.deal_id] = make_result(safe.deal_id, p_win=0.05, amount=900_000.0, owner="r1", team=safe.team,
                                           as_of="2024-06-01")
        other.add([ScoreToSave(latest[safe.deal_id], "rescored", True)])
        _assert_is_the_librarys_list(store, latest, filters)
        # an outcome: the top deal closes and leaves the list
        other.record_outcome(safe.deal_id, "lost", datetime(2024, 6, 2), key_name="crm")
        del latest[safe.deal_id]
        _assert_is_the_librarys_list(store, latest, filters)
        # a move: an r2 deal at risk goes to r1 (the owner filter's totals change, the unfiltered ones do not)
        moved = next(r for r in at_risk(list(latest.values())) if r.owner_id == "r2")
        latest[moved.deal_id] = moved.model_copy(update={"owner_id": "r1", "as_of": datetime(2024, 6, 3),
                                                         "risk_level": None, "priority": None})
        other.add([ScoreToSave(latest[moved.deal_id], "moved", True)])
        _assert_is_the_librarys_list(store, latest, filters)
    finally:
        other.dispose()


def test_a_page_of_an_unchanged_list_reads_only_the_page(store: ScoreStore, make_result: MakeResult) -> None:
    """The second page does not count or sum the deals again, nor look for the level cut-offs."""
    _saved(store, _population(make_result))
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        store.list_page(ListRequest(limit=5))
        store.filter_choices()
        first = list(statements)
        statements.clear()
        store.list_page(ListRequest(limit=5, offset=5))
        store.filter_choices()
        second = list(statements)
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    assert any("count(" in s for s in first) and any("DISTINCT" in s for s in first)
    assert not any("count(" in s or "DISTINCT" in s or "rank_group = " in s for s in second), second
    assert len(second) == 3 + 1  # the revision, the page's ids, its rows with their results; the revision


def test_the_list_and_its_menus_read_deals_through_covering_indexes(store: ScoreStore,
                                                                   make_result: MakeResult) -> None:
    """On SQLite (whose plans do not depend on statistics), no statement of a list page scans ``deals``.

    The totals and the level cut-offs read only index entries, the ranked pages
    read the rank index in its order (no sort), the other sorts of every open
    deal sort index entries (not rows), and the menus read the owner and team indexes. A dropped
    column of an index or a changed WHERE shows up here as a ``SCAN``, a missing
    ``COVERING`` or a ``TEMP B-TREE``: the difference between milliseconds and
    seconds at 200,000 deals.
    """
    if store.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL chooses its plans from table statistics; its timings are in docs/service.md")
    _saved(store, _population(make_result))
    seen: list[tuple[str, object]] = []

    def record(_conn: object, _cursor: object, statement: str, parameters: object, *_args: object) -> None:
        seen.append((statement, parameters))

    def plans() -> list[tuple[str, str]]:
        statements = [(s, p) for s, p in seen if re.search(r"FROM deals\b", s) and not s.startswith("EXPLAIN")]
        with store.engine.connect() as conn:
            out = [(s, " | ".join(row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {s}", p)))
                   for s, p in statements]
        seen.clear()
        return out

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        for filters in (DealFilter(), DealFilter(team="east"), DealFilter(owner="r1"),
                        DealFilter(declared_stage="proposal"), DealFilter(min_amount=4000)):
            store.list_page(ListRequest(filters=filters, limit=5, offset=5))
        store.filter_choices()
        ranked = plans()
        for sort in ("amount", "p_win", "as_of", "account_id", "owner_id", "declared_stage", "inferred_stage"):
            for order in ("asc", "desc"):
                store.list_page(ListRequest(sort=sort, order=order, limit=5, offset=5,
                                            stage_order={name: i for i, name in enumerate(STAGES)}))
        sorted_otherwise = plans()
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    by_key = [(st, plan) for st, plan in ranked + sorted_otherwise if "JOIN scores" in st]
    ranked = [(st, plan) for st, plan in ranked if "JOIN scores" not in st]
    sorted_otherwise = [(st, plan) for st, plan in sorted_otherwise if "JOIN scores" not in st]
    assert len(by_key) >= 6 and len(ranked) >= 5 * 2 + 2 and len(sorted_otherwise) == 7 * 2
    for statement, plan in ranked:
        assert "SCAN deals" not in plan and "TEMP B-TREE" not in plan and "COVERING INDEX" in plan, (statement, plan)
    for statement, plan in sorted_otherwise:
        assert "SCAN deals" not in plan and "COVERING INDEX" in plan, (statement, plan)
    for statement, plan in by_key:  # the page's rows and results: a seek per deal
        assert "SEARCH deals USING INDEX sqlite_autoindex_deals_1 (deal_id=?)" in plan, (statement, plan)
        assert "(deal_id=? AND payload_hash=? AND model_version=?)" in plan, (statement, plan)
