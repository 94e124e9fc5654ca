"""Shared fixtures for the scoring tests: hand-built feature rows and tiny histories (the trained bundle on the
small seed-5 history is suite-wide: ``trained`` in ``tests/conftest.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from dealscore.data.history import DealHistory, from_frames
from dealscore.taxonomy import StageTaxonomy, default_taxonomy

#: A healthy discovery-stage deal: recent replies, decision maker met, three contacts.
HEALTHY: dict[str, Any] = {
    "deal_id": "D1", "as_of": pd.Timestamp("2024-06-01"),
    "declared_stage": "discovery", "declared_stage_order": 3, "days_in_stage": 10.0, "deal_age_days": 30.0,
    "days_since_last_touch": 2.0, "days_since_last_inbound": 2.0, "n_outbound_unanswered": 0.0,
    "n_contacts": 3.0, "decision_maker_engaged": 1.0, "champion_engaged": 1.0, "has_meeting": 1.0,
    "has_demo": 0.0, "has_proposal": 0.0, "has_contract": 0.0, "days_to_expected_close": 40.0,
    "close_date_pushes": 0.0, "stage_time_ratio": 0.5, "amount": 20000.0, "n_touches_30d": 8.0,
    "pricing_discussed": 0.0,
}

STAGE_STATS: dict[str, Any] = {
    s: {"win_rate": w, "median_days_in_stage_won": m, "p90_days_in_stage_won": p, "p90_gap_days": g}
    for s, w, m, p, g in [
        ("prospecting", 0.10, 7, 20, 10), ("qualification", 0.18, 10, 25, 9), ("discovery", 0.25, 14, 30, 9),
        ("solution", 0.35, 14, 30, 8), ("proposal", 0.45, 10, 31, 7), ("negotiation", 0.6, 10, 25, 6),
    ]
}


def _feature_frame(*rows: dict[str, Any]) -> pd.DataFrame:
    """A feature frame from partial rows layered over the healthy deal."""
    tax = default_taxonomy()
    full = [{**HEALTHY, "deal_id": f"D{i + 1}", **r} for i, r in enumerate(rows)]
    frame = pd.DataFrame(full)
    frame["declared_stage"] = pd.Categorical(frame["declared_stage"], categories=tax.names)
    return frame


@pytest.fixture
def taxonomy() -> StageTaxonomy:
    return default_taxonomy()


def _one_hot_stage(stages: list[str], taxonomy: StageTaxonomy, p: float = 0.8) -> np.ndarray:
    """Stage probabilities putting ``p`` on each row's stage and the rest spread evenly."""
    k = len(taxonomy.names)
    out = np.full((len(stages), k), (1 - p) / (k - 1))
    for i, s in enumerate(stages):
        out[i, taxonomy.names.index(s)] = p
    return out


def _tiny_history() -> DealHistory:
    """Two open deals: D1 with a champion already met, D2 with no activity at all."""
    accounts = pd.DataFrame({"account_id": ["A1"], "industry": ["software"]})
    deals = pd.DataFrame({
        "deal_id": ["D1", "D2"], "account_id": ["A1", "A1"], "owner_id": ["o1", "o2"],
        "created_at": ["2024-01-01", "2024-02-01"], "amount": [1000.0, 2000.0],
    })
    sh = pd.DataFrame({"deal_id": ["D1", "D2"], "stage": ["discovery", "prospecting"],
                       "changed_at": ["2024-01-01", "2024-02-01"]})
    acts = pd.DataFrame({
        "activity_id": ["a1", "a2", "a3"], "deal_id": ["D1", "D1", "D1"],
        "occurred_at": ["2024-01-05", "2024-01-10", "2024-01-20"], "type": ["email", "call", "meeting"],
        "direction": ["outbound", "inbound", "inbound"], "contact_id": ["c1", "c2", "c2"],
        "contact_role": ["other", "champion", "champion"],
    })
    return from_frames({"accounts": accounts, "deals": deals, "stage_history": sh, "activities": acts},
                       cut_at="2024-03-01")


@pytest.fixture
def make_frame() -> Any:
    """``make_frame(row, ...)``: a feature frame of partial rows over a healthy discovery deal."""
    return _feature_frame


@pytest.fixture
def stage_proba(taxonomy: StageTaxonomy) -> Any:
    """``stage_proba(["discovery", ...], p=0.8)``: stage-model output putting p on each row's stage."""
    return lambda stages, p=0.8: _one_hot_stage(stages, taxonomy, p)


@pytest.fixture
def stage_stats() -> dict[str, Any]:
    return STAGE_STATS


@pytest.fixture
def tiny_history() -> DealHistory:
    return _tiny_history()
