"""Value at risk and the at-risk ranking."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from dealscore.scoring.at_risk import at_risk, risk_boost, value_at_risk
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


def test_value_at_risk_formula() -> None:
    assert value_at_risk(10000, 0.2, 0.45) == pytest.approx(2500)
    assert value_at_risk(10000, 0.5, 0.45) == 0.0
    assert value_at_risk(None, 0.2, 0.45) == 0.0
    assert value_at_risk(10000, 0.2, 0.45, [HIGH, MED]) == pytest.approx(2500 * 1.3)
    # a 10-point drop adds 20%
    assert value_at_risk(10000, 0.2, 0.45, previous_p_win=0.3) == pytest.approx(2500 * 1.2)
    assert risk_boost([HIGH] * 10, 0.2, 0.9) == pytest.approx(4.0)  # both boosts are capped


def test_ranking_filters_and_boosts() -> None:
    results = [
        _result("big_gap", 0.1, 0.45, 10000),  # 3500
        _result("above_par", 0.6, 0.45, 1e6),  # not at risk at all
        _result("small_gap_warned", 0.35, 0.45, 20000, warnings=[HIGH, HIGH, MED]),  # 2000 × 1.5 = 3000
        _result("no_amount", 0.1, 0.45, None),
        _result("other_owner", 0.1, 0.45, 1e6, owner="o2"),
    ]
    ranked = at_risk(results, owner="o1")
    assert [r.deal_id for r in ranked] == ["big_gap", "small_gap_warned", "no_amount"]
    assert ranked[0].value_at_risk == pytest.approx(3500)
    assert ranked[1].value_at_risk == pytest.approx(3000)
    # last week's score of small_gap_warned was much higher: the drop moves it to the top
    ranked = at_risk(results, owner="o1", previous={"small_gap_warned": 0.8}, top=1)
    assert [r.deal_id for r in ranked] == ["small_gap_warned"]
    assert ranked[0].previous_p_win == 0.8 and ranked[0].value_at_risk == pytest.approx(2000 * 1.5 * 1.9)
    assert at_risk(results, top=0) == []
