"""Value at risk (money), priority (urgency) and the at-risk ranking."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pytest

from dealscore.scoring.at_risk import (
    at_risk,
    kept_by_filter,
    risk_factors,
    risk_levels,
    value_at_risk,
    value_at_risk_array,
    warning_weight,
)
from dealscore.scoring.result import DealWarning, ScoreResult


def _result(deal_id: str, p: float, typical: float | None, amount: float | None, owner: str = "o1",
            warnings: list[DealWarning] | None = None, **kw: Any) -> ScoreResult:
    return ScoreResult(
        deal_id=deal_id, as_of=datetime(2024, 6, 1), owner_id=owner, amount=amount, p_win=p, grade="C",
        declared_stage="proposal", inferred_stage="proposal", inferred_stage_probability=0.8,
        stage_mismatch="consistent", mismatch_explanation="", stage_typical_p_win=typical,
        warnings=warnings or [], model_version="t", **kw,
    )


HIGH = DealWarning(code="gone_quiet", title="Gone quiet", evidence="x", severity="high")
MED = DealWarning(code="single_threaded", title="Single", evidence="x", severity="medium")


def test_value_at_risk_is_money_never_more_than_the_amount() -> None:
    assert value_at_risk(10000, 0.2, 0.45) == pytest.approx(2500)
    assert value_at_risk(10000, 0.5, 0.45) == 0.0
    assert value_at_risk(None, 0.2, 0.45) == 0.0
    assert value_at_risk(10000, 0.2, None) == 0.0
    assert value_at_risk(169000, 0.0, 1.0) == pytest.approx(169000)  # never more than the amount
    _, boost = risk_factors(0.2, 0.45, warning_weight([HIGH.severity] * 10), 0.9)
    assert boost == pytest.approx(4.0)  # both boosts are capped


def test_ranking_orders_by_priority_while_value_at_risk_stays_money() -> None:
    results = [
        _result("big_gap", 0.1, 0.45, 10000),  # 3500, priority 3500
        _result("above_par", 0.6, 0.45, 1e6),  # not at risk at all
        _result("small_gap_warned", 0.35, 0.45, 20000, warnings=[HIGH, HIGH, MED]),  # 2000, priority 3000
        _result("no_amount", 0.1, 0.45, None),
        _result("other_owner", 0.1, 0.45, 1e6, owner="o2"),
    ]
    ranked = at_risk(results, owner="o1")
    assert [r.deal_id for r in ranked] == ["big_gap", "small_gap_warned", "no_amount"]
    assert ranked[0].value_at_risk == pytest.approx(3500) and ranked[0].priority == pytest.approx(3500)
    assert ranked[1].value_at_risk == pytest.approx(2000) and ranked[1].priority == pytest.approx(3000)
    assert ranked[2].value_at_risk == 0.0 and ranked[2].risk_level == "low"
    # last week's score of small_gap_warned was much higher: the drop moves it to the top, its money stays
    ranked = at_risk(results, owner="o1", previous={"small_gap_warned": 0.8}, top=1)
    assert [r.deal_id for r in ranked] == ["small_gap_warned"]
    assert ranked[0].previous_p_win == 0.8 and ranked[0].value_at_risk == pytest.approx(2000)
    assert ranked[0].priority == pytest.approx(2000 * 1.5 * 1.9)
    assert at_risk(results, top=0) == []


def test_risk_levels_discriminate() -> None:
    assert risk_levels(0) == []
    assert risk_levels(3) == ["high", "low", "low"]
    levels = risk_levels(25)
    assert levels.count("high") == 3 and levels.count("medium") == 5 and levels.count("low") == 17
    results = [_result(f"d{k:02d}", 0.1, 0.5, 1000.0 * (k + 1), warnings=[HIGH] * 3) for k in range(40)]
    ranked = at_risk(results)
    assert [r.risk_level for r in ranked].count("high") == 4
    assert all(r.risk_level == "high" for r in ranked[:4])


def test_one_deal_and_a_block_compute_value_at_risk_by_the_same_rule() -> None:
    rng = np.random.default_rng(3)
    n = 200
    amount = np.where(rng.random(n) < 0.1, np.nan, rng.uniform(0, 1e5, n))
    p = rng.random(n)
    typical = np.where(rng.random(n) < 0.1, np.nan, rng.random(n))
    block = value_at_risk_array(amount, p, typical)
    one = [value_at_risk(None if np.isnan(a) else a, q, None if np.isnan(t) else t)
           for a, q, t in zip(amount, p, typical, strict=True)]
    np.testing.assert_allclose(block, one)
    assert (block <= np.nan_to_num(amount)).all()


def test_the_owner_and_team_filter_is_one_rule_for_the_list_and_its_callers() -> None:
    results = [_result("a", 0.1, 0.5, 1.0, owner="o1", team="east"), _result("b", 0.1, 0.5, 1.0, owner="o2",
                                                                            team="east"),
               _result("c", 0.1, 0.5, 1.0, owner="o1", team="west")]
    assert [r.deal_id for r in kept_by_filter(results)] == ["a", "b", "c"]
    assert [r.deal_id for r in kept_by_filter(results, owner="o1")] == ["a", "c"]
    assert [r.deal_id for r in kept_by_filter(results, owner="o1", team="west")] == ["c"]
    assert kept_by_filter(results, team="north") == []
    for owner, team in ((None, None), ("o1", None), (None, "east"), ("o2", "west")):
        listed = {r.deal_id for r in at_risk(results, owner=owner, team=team)}
        assert listed == {r.deal_id for r in kept_by_filter(results, owner, team)}
