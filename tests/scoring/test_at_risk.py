"""Value at risk and the at-risk ranking."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pytest

from dealscore.scoring.at_risk import at_risk, risk_factors, value_at_risk, value_at_risk_array, warning_weight
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
    _, boost = risk_factors(0.2, 0.45, warning_weight([HIGH.severity] * 10), 0.9)
    assert boost == pytest.approx(4.0)  # both boosts are capped


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


def test_one_deal_and_a_block_compute_value_at_risk_by_the_same_rule() -> None:
    rng = np.random.default_rng(3)
    n = 200
    amount = np.where(rng.random(n) < 0.1, np.nan, rng.uniform(0, 1e5, n))
    p = rng.random(n)
    typical = np.where(rng.random(n) < 0.1, np.nan, rng.random(n))
    prev = np.where(rng.random(n) < 0.3, np.nan, rng.random(n))
    sev = [list(rng.choice(["high", "medium", "low"], size=rng.integers(0, 6))) for _ in range(n)]
    block = value_at_risk_array(amount, p, typical, [warning_weight(s) for s in sev], prev)
    one = [value_at_risk(None if np.isnan(a) else a, q, None if np.isnan(t) else t,
                         [DealWarning(code="c", title="t", evidence="e", severity=x) for x in s],
                         None if np.isnan(v) else v)
           for a, q, t, s, v in zip(amount, p, typical, sev, prev, strict=True)]
    np.testing.assert_allclose(block, one)
