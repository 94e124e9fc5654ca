"""Response rates: attempts and answers per (stage, silence, role, first engagement), and their lookup."""

from __future__ import annotations

import pandas as pd
import pytest

from dealscore.data.history import from_frames
from dealscore.scoring.response import ResponseRates, shrink
from dealscore.training.response_rates import learn_response_rates


def _history() -> object:
    accounts = pd.DataFrame({"account_id": ["A1"], "industry": ["software"]})
    deals = pd.DataFrame({
        "deal_id": ["D1", "D2"], "account_id": ["A1", "A1"], "owner_id": ["o1", "o1"],
        "created_at": ["2024-01-01", "2024-01-01"], "amount": [1000.0, 1000.0],
        "closed_at": ["2024-04-01", "2024-04-01"], "outcome": ["won", "lost"],
    })
    sh = pd.DataFrame({"deal_id": ["D1", "D2"], "stage": ["discovery", "discovery"],
                       "changed_at": ["2024-01-01", "2024-01-01"]})
    rows = [  # deal, day, direction, role
        ("D1", "2024-01-02", "outbound", "other"), ("D1", "2024-01-04", "inbound", "other"),  # answered
        ("D1", "2024-01-10", "outbound", "decision_maker"), ("D1", "2024-01-12", "inbound", "decision_maker"),
        ("D1", "2024-01-20", "outbound", "decision_maker"),  # known DM, never answered again
        ("D2", "2024-01-02", "outbound", "other"),  # nobody ever answers D2
        ("D2", "2024-02-20", "outbound", "other"),
    ]
    acts = pd.DataFrame(rows, columns=["deal_id", "occurred_at", "direction", "contact_role"]).assign(
        type="email", activity_id=[f"a{i}" for i in range(len(rows))], contact_id="c")
    return from_frames({"accounts": accounts, "deals": deals, "stage_history": sh, "activities": acts},
                       cut_at="2024-06-01")


def test_attempts_and_answers_are_counted_per_cell() -> None:
    h = _history()
    table = learn_response_rates(h, pd.Index(["D1", "D2"]))
    cells = {(r["silence"], r["role"], r["new"]): (r["attempts"], r["answered"], r["deals"]) for r in table["rows"]}
    # outreach to anyone else: D1's first (answered), D2's two (no reply ever: both while never answered)
    assert cells[("never", "other", False)] == (3, 1, 2)
    # before the decision maker first answered (D1, 12 Jan), every attempt counts for the DM's *new* cell:
    # D1 2 Jan (the DM answered 10 days later), D2's two (no DM ever); D1 10 Jan came 6 days after a reply
    assert cells[("never", "decision_maker", True)] == (3, 1, 2)
    assert cells[("under_7d", "decision_maker", True)] == (1, 1, 1)
    # the 20 Jan e-mail went to a known decision maker, 8 days after the last reply: unanswered
    assert cells[("7_to_30d", "decision_maker", False)] == (1, 0, 1)
    assert sum(a for a, _, _ in cells.values()) >= 5


def test_lookup_shrinks_thin_cells_and_counts_the_deals() -> None:
    table = learn_response_rates(_history(), pd.Index(["D1", "D2"]))
    rates = ResponseRates.from_stage_stats({"_response_rates": table})
    r = rates.lookup("discovery", float("nan"), "other")
    assert 0 < r.low <= r.p <= r.high < 1 and r.deals == 2
    # the discovery cell (3 attempts, 1 answer) leans on all stages' cell (the same here) with 10 pseudo-attempts
    assert r.p == pytest.approx((1 + 10 * (1 + 1) / (3 + 2)) / (3 + 10))
    empty = ResponseRates.from_stage_stats({})
    assert empty.lookup("discovery", 3.0, "champion").deals == 0
    assert shrink(0) == 0 and shrink(10) == 0.5 and shrink(1000) > 0.99
