"""State values: win rates per (real stage, silence) of the training snapshots, and how a response moves a deal."""

from __future__ import annotations

import numpy as np
import pytest

from dealscore.playbook import SILENCE_BUCKETS
from dealscore.scoring.stage_values import PRIOR_SNAPSHOTS, StageValues
from dealscore.training.stage_values import learn_stage_values

STAGES = ("discovery", "proposal")


def _table() -> dict:
    # (real stage, days since the customer's last inbound touch, won, deal)
    rows = [("discovery", 2.0, 1, "D1"), ("discovery", 3.0, 0, "D1"), ("discovery", 40.0, 0, "D2"),
            ("proposal", np.nan, 1, "D3"), ("proposal", 1.0, 1, "D4"), (None, 1.0, 1, "D5"),  # no label: left out
            ("discovery", 1.0, np.nan, "D6")]  # no outcome: left out
    stage, days, won, deal = (np.array(c, dtype=object) for c in zip(*rows, strict=True))
    return learn_stage_values(stage, days.astype(float), won.astype(float), deal, STAGES)


def test_snapshots_wins_and_deals_are_counted_per_cell() -> None:
    cells = {(r["stage"], r["silence"]): (r["snapshots"], r["won"], r["deals"]) for r in _table()["rows"]}
    assert cells == {("discovery", "under_7d"): (2, 1.0, 1), ("discovery", "over_30d"): (1, 0.0, 1),
                     ("proposal", "never"): (1, 1.0, 1), ("proposal", "under_7d"): (1, 1.0, 1)}


def test_nothing_to_learn_gives_no_table() -> None:
    assert learn_stage_values(np.array([None]), np.array([1.0]), np.array([1.0]), np.array(["D"]), STAGES) == {
        "rows": []}
    assert StageValues.from_stage_stats({"_stage_values": {"rows": []}}, STAGES) is None
    assert StageValues.from_stage_stats({}, STAGES) is None


def test_a_thin_cell_leans_on_its_stage_and_the_stage_on_all() -> None:
    v = StageValues.from_stage_stats({"_stage_values": _table()}, STAGES)
    assert v is not None and v.rates.shape == (2, len(SILENCE_BUCKETS))
    overall = (3.0 + 1) / (5 + 2)
    disc = (1.0 + PRIOR_SNAPSHOTS * overall) / (3 + PRIOR_SNAPSHOTS)
    col = SILENCE_BUCKETS.index
    assert v.rates[0, col("under_7d")] == pytest.approx((1.0 + PRIOR_SNAPSHOTS * disc) / (2 + PRIOR_SNAPSHOTS))
    assert v.rates[0, col("7_to_30d")] == pytest.approx(disc)  # no snapshot: the stage's own rate
    assert v.rates[1].min() > v.rates[0].max()  # proposal deals won more often here


def test_a_response_moves_the_odds_by_the_ratio_of_the_state_values() -> None:
    v = StageValues(rates=np.array([[0.2, 0.4, 0.3, 0.1], [0.5, 0.7, 0.6, 0.3]]))
    proba = np.array([[0.75, 0.25], [0.0, 1.0]])
    got = v.value(proba, np.array([3, 1]))
    assert got == pytest.approx([0.75 * 0.1 + 0.25 * 0.3, 0.7])
    before, after = np.array([0.2]), np.array([0.5])
    moved = v.moved(np.array([0.1]), before, after)
    odds = lambda p: p / (1 - p)  # noqa: E731
    assert odds(moved[0]) == pytest.approx(odds(0.1) * odds(0.5) / odds(0.2))
    assert v.moved(np.array([0.3]), after, after) == pytest.approx([0.3])  # no move, no change
    assert 0 < v.moved(np.array([0.0]), before, after)[0] < 1e-5  # kept off 0 and 1
