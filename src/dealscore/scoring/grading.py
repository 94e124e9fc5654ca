"""Letter grades A–D from the calibrated win probability.

A grade is a coarse, stable label for people who scan a pipeline: it must not
flicker with every tenth of a point, so the cut-offs are few and absolute (the
probability is calibrated, so 0.6 means six in ten such deals are won, whatever
the stage). They are documented in docs/scoring.md and can be overridden per
:class:`~dealscore.scoring.scorer.Scorer`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from dealscore.errors import ConfigError
from dealscore.scoring.result import Grade

#: Lower bound of p_win for each grade; anything below the last bound is "D".
DEFAULT_GRADE_CUTOFFS: dict[str, float] = {"A": 0.60, "B": 0.35, "C": 0.15}


def check_cutoffs(cutoffs: Mapping[str, float]) -> dict[str, float]:
    """Validate user cut-offs: exactly A, B, C, strictly decreasing, inside (0, 1)."""
    if set(cutoffs) != {"A", "B", "C"}:
        raise ConfigError(f"grade cut-offs need exactly the keys A, B and C (D is the rest); got {sorted(cutoffs)}")
    a, b, c = (float(cutoffs[k]) for k in ("A", "B", "C"))
    if not 1.0 > a > b > c > 0.0:
        raise ConfigError(f"grade cut-offs must satisfy 1 > A > B > C > 0; got A={a}, B={b}, C={c}")
    return {"A": a, "B": b, "C": c}


def grade(p_win: float, cutoffs: Mapping[str, float] = DEFAULT_GRADE_CUTOFFS) -> Grade:
    """The grade of one probability."""
    if p_win >= cutoffs["A"]:
        return "A"
    if p_win >= cutoffs["B"]:
        return "B"
    if p_win >= cutoffs["C"]:
        return "C"
    return "D"


def grades(p_win: np.ndarray, cutoffs: Mapping[str, float] = DEFAULT_GRADE_CUTOFFS) -> np.ndarray:
    """Grades of many probabilities at once (object array of 'A'..'D')."""
    p = np.asarray(p_win, dtype=float)
    out = np.full(p.shape, "D", dtype=object)
    out[p >= cutoffs["C"]] = "C"
    out[p >= cutoffs["B"]] = "B"
    out[p >= cutoffs["A"]] = "A"
    return out
