"""Labels: the outcome, and the real stage from audits (inferred later in training where none exist)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dealscore.data.history import from_frames
from dealscore.data.validate import validate_history
from dealscore.features import make_labels, make_snapshots

from .conftest import day, hand_history, random_history, simulator_available, snapshot


def _history(with_truth: bool = False):
    h = hand_history(
        deals=[{"deal_id": "W", "created_at": 0, "closed_at": 40, "outcome": "won"},
               {"deal_id": "L", "created_at": 0, "closed_at": 30, "outcome": "lost"},
               {"deal_id": "O", "created_at": 0}],
        stages=[{"deal_id": "W", "stage": "qualification", "changed_at": 0},
                {"deal_id": "W", "stage": "solution", "changed_at": 20},
                {"deal_id": "W", "stage": "negotiation", "changed_at": 38},
                {"deal_id": "L", "stage": "discovery", "changed_at": 5},
                {"deal_id": "L", "stage": "prospecting", "changed_at": 30},  # clean-up edit at the close
                {"deal_id": "O", "stage": "proposal", "changed_at": 50}],
        cut=60,
    )
    if with_truth:
        truth = pd.DataFrame({"deal_id": ["W", "W"], "as_of": [day(1), day(25)], "stage": ["discovery", "proposal"]})
        h, _ = validate_history(from_frames({**h.tables(), "stage_truth": truth}, cut_at=h.cut_at))
    return h


def test_won_is_the_outcome_and_nan_while_open() -> None:
    h = _history()
    lab = make_labels(h, snapshot(["W", "L", "O"], 10))
    assert lab["won"].iloc[:2].tolist() == [1.0, 0.0] and np.isnan(lab["won"].iloc[2])


def test_without_audits_the_real_stage_is_left_to_the_estimator() -> None:
    h = _history()
    snaps = snapshot(["W", "W", "W", "L", "L", "O", "O"], [1, 10, 30, 10, 20, 30, 40])
    lab = make_labels(h, snaps)
    # no fixed rule ("the stage recorded 14 days later") stands in for an audit any more
    assert lab["real_stage"].isna().all()
    assert lab.index.equals(snaps.index)


def test_stage_truth_wins_when_an_audit_exists_at_or_before_the_snapshot() -> None:
    h = _history(with_truth=True)
    lab = make_labels(h, snapshot(["W", "W", "W", "L"], [0.5, 10, 30, 10]))
    assert lab["real_stage"].tolist() == [None, "discovery", "proposal", None]


def test_labels_for_training_snapshots_of_a_random_history() -> None:
    h = random_history(3, n_deals=20)
    snaps = make_snapshots(h)
    lab = make_labels(h, snaps)
    assert len(lab) == len(snaps)
    assert set(lab["won"].dropna().unique()) <= {0.0, 1.0}
    assert set(lab["real_stage"].dropna()) <= set(h.stage_truth["stage"])
    open_ids = set(h.deals.loc[h.deals["outcome"].isna(), "deal_id"])
    assert lab.loc[snaps["deal_id"].isin(open_ids), "won"].isna().all()


@pytest.mark.skipif(not simulator_available(), reason="dealscore.data.simulate not available")
def test_simulator_stage_truth_is_used() -> None:
    from dealscore.data.simulate import simulate

    h, _ = validate_history(simulate(120, seed=2).history)
    snaps = make_snapshots(h)
    lab = make_labels(h, snaps)
    assert lab["real_stage"].notna().mean() > 0.9
