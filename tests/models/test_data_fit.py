"""The training-data profile and the named differences of a history scored with it."""

from __future__ import annotations

from dealscore.data.simulate import simulate
from dealscore.data.validate import validate_history
from dealscore.models.data_fit import data_mismatch, training_data_profile


def test_profile_then_differences_by_name() -> None:
    history, _ = validate_history(simulate(200, seed=3).history)
    stats = training_data_profile(history)
    assert stats["source"] == "dealscore simulator"
    assert data_mismatch(stats, history) is None
    narrow = {**stats, "stages_seen": ["prospecting", "qualification"], "team_seen": ["Nobody"]}
    found = data_mismatch(narrow, history)
    assert found is not None
    text = found.message
    assert "declared stages never seen in training: 'discovery'" in text
    assert "team:" in text and "deals have a value never seen in training" in text
    other = validate_history(simulate(200, seed=4).history)[0]
    other.meta["source"] = "pipedrive"
    found = data_mismatch(stats, other)
    assert found is not None and "'pipedrive'" in found.message


def test_a_bundle_without_a_profile_compares_nothing() -> None:
    history, _ = validate_history(simulate(100, seed=3).history)
    assert data_mismatch({"deals": 100}, history) is None
