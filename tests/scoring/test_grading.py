"""Grade cut-offs."""

from __future__ import annotations

import numpy as np
import pytest

from dealscore.errors import ConfigError
from dealscore.scoring.grading import DEFAULT_GRADE_CUTOFFS, check_cutoffs, grade, grades


@pytest.mark.parametrize(("p", "g"), [(0.9, "A"), (0.6, "A"), (0.59, "B"), (0.35, "B"), (0.2, "C"),
                                      (0.15, "C"), (0.149, "D"), (0.0, "D")])
def test_grade(p: float, g: str) -> None:
    assert grade(p) == g
    assert grades(np.array([p]))[0] == g


def test_custom_cutoffs_are_checked() -> None:
    assert check_cutoffs({"A": 0.5, "B": 0.3, "C": 0.1}) == {"A": 0.5, "B": 0.3, "C": 0.1}
    with pytest.raises(ConfigError, match="1 > A > B > C > 0"):
        check_cutoffs({"A": 0.3, "B": 0.5, "C": 0.1})
    with pytest.raises(ConfigError, match="exactly the keys"):
        check_cutoffs({"A": 0.5})
    assert grade(0.55, {"A": 0.5, "B": 0.3, "C": 0.1}) == "A" != grade(0.55, DEFAULT_GRADE_CUTOFFS)
