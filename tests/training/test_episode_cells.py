"""Counting rows per cell by their episode probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from dealscore.models.episodes import EPISODES
from dealscore.training.episode_cells import count_by_episode


def test_rows_count_for_each_episode_by_probability_and_deals_by_their_likeliest_episode() -> None:
    w = np.zeros((3, len(EPISODES)))
    w[0, 0] = 1.0  # D1: active
    w[1, 0], w[1, 3] = 0.25, 0.75  # D2: most likely quiet
    w[2, 3] = 1.0  # D2 again, later: quiet
    table = count_by_episode({"stage": np.array(["a", "a", "a"], dtype=object)}, w,
                             np.array(["D1", "D2", "D2"], dtype=object), {"won": np.array([1.0, 0.0, 0.0])})
    got = {k: (r.weight, r.won, r.deals) for k, r in table.iterrows()}
    assert got == {("a", "active"): (1.25, 1.0, 1), ("a", "quiet"): (1.75, 0.0, 1)}
    assert table["weight"].sum() == pytest.approx(3.0)  # no row lost or added
