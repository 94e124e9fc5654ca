"""How the product words numbers: one rule each for probabilities and probability points."""

from __future__ import annotations

import pytest

from dealscore.wording import percent_text, points_text


@pytest.mark.parametrize(("p", "text"), [(0.004, "<1%"), (0.0, "0%"), (0.37, "37%"), (0.996, ">99%"), (1.0, "100%"),
                                         (None, "—"), (float("nan"), "—")])
def test_probabilities_never_round_to_a_false_certainty(p: float | None, text: str) -> None:
    assert percent_text(p) == text


@pytest.mark.parametrize(("points", "text"), [
    (6.0, "+6 pts"), (-2.4, "−2 pts"), (-0.5, "−0.5 pts"), (1.0, "+1 pt"), (-0.96, "−1 pt"), (0.0, "0 pts"),
    (0.04, "0 pts"), (0.3, "+0.3 pts"), (None, "—"),
])
def test_points_read_alike_in_reasons_actions_and_pages(points: float | None, text: str) -> None:
    """The page once said "+1 pts" where the API said "+1 pt", and a steady trend "+0.0 pts"."""
    assert points_text(points) == text
