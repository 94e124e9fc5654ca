"""Stage norms of won deals, read as the CRM showed the deals while they were open."""

from __future__ import annotations

import pandas as pd
import pytest

from dealscore.data.history import from_frames
from dealscore.training.stage_stats import learn_stage_stats


def _history(stage_rows: list[tuple[str, str, str, str | None]], touches: list[tuple[str, str]] = ()) -> object:
    """Won deal D (1 Jan to 1 Mar) with stage rows (deal, stage, changed_at, recorded_at) and touches."""
    accounts = pd.DataFrame({"account_id": ["A1"], "industry": ["software"]})
    deals = pd.DataFrame({"deal_id": ["D"], "account_id": ["A1"], "owner_id": ["o1"], "created_at": ["2024-01-01"],
                          "amount": [1000.0], "closed_at": ["2024-03-01"], "outcome": ["won"]})
    sh = pd.DataFrame(stage_rows, columns=["deal_id", "stage", "changed_at", "recorded_at"])
    acts = pd.DataFrame([(d, t, "email", f"a{i}") for i, (d, t) in enumerate(touches)],
                        columns=["deal_id", "occurred_at", "type", "activity_id"])
    return from_frames({"accounts": accounts, "deals": deals, "stage_history": sh, "activities": acts},
                       cut_at="2024-06-01")


def _norm(h: object, stage: str, key: str = "median_days_in_stage_won") -> float:
    return learn_stage_stats(h, pd.Index(["D"]), {}, min_deals=1)["stages"][stage][key]


def test_a_row_that_only_updates_the_deal_does_not_start_a_new_visit() -> None:
    # proposal from 1 Jan; an amount update on 11 Jan keeps the stage (days_in_stage does not reset)
    h = _history([("D", "proposal", "2024-01-01", None), ("D", "proposal", "2024-01-11", None),
                  ("D", "negotiation", "2024-01-31", None)])
    assert _norm(h, "proposal") == pytest.approx(30.0)
    assert _norm(h, "negotiation") == pytest.approx(30.0)  # 31 Jan to the 1 Mar close


def test_a_stage_entered_after_the_close_never_counted() -> None:
    # the negotiation row is dated 21 Jan but was entered on 10 Mar, after the close: while the deal was open the
    # CRM showed proposal for all of its 60 days
    h = _history([("D", "proposal", "2024-01-01", None), ("D", "negotiation", "2024-01-21", "2024-03-10")])
    assert _norm(h, "proposal") == pytest.approx(60.0)
    assert learn_stage_stats(h, pd.Index(["D"]), {}, min_deals=1)["stages"].get("negotiation") is None


def test_a_back_dated_change_ends_the_visit_when_the_crm_showed_it() -> None:
    # negotiation dated 21 Jan, entered 31 Jan: the deal showed 30 days in proposal before the change appeared
    h = _history([("D", "proposal", "2024-01-01", None), ("D", "negotiation", "2024-01-21", "2024-01-31")])
    assert _norm(h, "proposal") == pytest.approx(30.0)
    assert _norm(h, "negotiation") == pytest.approx(40.0)  # counted from 21 Jan, as days_in_stage counts


def test_a_touch_gap_counts_for_the_stage_shown_at_the_later_touch() -> None:
    h = _history([("D", "proposal", "2024-01-01", None), ("D", "negotiation", "2024-01-21", "2024-02-05")],
                 touches=[("D", "2024-01-02"), ("D", "2024-01-12"), ("D", "2024-02-01"), ("D", "2024-02-11")])
    stats = learn_stage_stats(h, pd.Index(["D"]), {}, min_deals=1)["stages"]
    # gaps 10 (12 Jan) and 20 (1 Feb: negotiation not yet shown) are proposal's; 10 (11 Feb) is negotiation's
    assert stats["proposal"]["p90_gap_days"] == pytest.approx(19.0)
    assert stats["negotiation"]["p90_gap_days"] == pytest.approx(10.0)
