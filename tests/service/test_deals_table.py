"""The ``deals`` table: the at-risk list paged by the database, bounded score history, migration 0004's fill."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime

import pytest
from sqlalchemy import text

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
