"""How numbers read in the product's sentences: one rule for every layer that words a probability.

It sits below the layers (beside ``times``) because the forecast's close-time model, the scorer's
reasons and warnings, the CLI and the pages all put probabilities into words, and each must show a
0.3 % chance as "<1%", never as a "0%" that tells a manager the deal is already lost.
"""

from __future__ import annotations

__all__ = ["percent_text"]


def percent_text(p: float | None, digits: int = 0) -> str:
    """A probability as people read it: ``37%``, and ``<1%`` / ``>99%`` rather than a false ``0%`` or ``100%``.

    A win probability of 0.3 % is not zero, and "0%" tells a manager the deal is
    already lost; calibrated probabilities are bounded away from 0 and 1 (see
    :func:`dealscore.models.calibration.probability_bounds`) and rounding must not
    undo that on the page or in the API. Exactly 0 or 1 (a share, not an
    estimate) reads as itself.
    """
    if p is None or p != p:
        return "—"
    unit = 10.0 ** -digits  # the last digit shown, in percent
    if 0 < 100 * p < unit:
        return f"<{unit:g}%"
    if 100 - unit < 100 * p < 100:
        return f">{100 - unit:g}%"
    return f"{100 * p:.{digits}f}%"
