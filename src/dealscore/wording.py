"""How numbers read in the product's sentences: one rule for every layer that words a probability.

It sits below the layers (beside ``times``) because the forecast's close-time model, the scorer's
reasons and warnings, the CLI and the pages all put probabilities into words, and each must show a
0.3 % chance as "<1%", never as a "0%" that tells a manager the deal is already lost.

Settings read alike too: the training config's checks and the LightGBM parameter checks beneath
them show a value as the config file writes it and say what a type accepts in the same words.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["is_kind", "kind_text", "percent_text", "points_text", "setting_text"]


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


def points_text(points: float | None) -> str:
    """A change in probability points as a rep reads it: ``+6 pts``, ``−0.5 pts``, ``+1 pt``, ``0 pts``.

    One rule for the reasons, the actions and the pages: the page once said "+1 pts" where the API said
    "+1 pt", and a steady trend read "+0.0 pts".
    """
    if points is None or points != points:
        return "—"
    shown = f"{abs(points):.0f}" if abs(points) >= 0.95 else f"{abs(points):.1f}"
    if shown == "0.0":
        return "0 pts"
    return f"{'+' if points >= 0 else '−'}{shown} {'pt' if shown == '1' else 'pts'}"


_KIND_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


def setting_text(value: Any) -> str:
    """A setting's value as a YAML or JSON config writes it (``true``, ``null``, ``"many"``), for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(setting_text(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {setting_text(v)}" for k, v in value.items()) + "}"
    return repr(value)


def kind_text(kind: type) -> str:
    """What a setting of type ``kind`` accepts, in words: ``int`` → "a whole number"."""
    return _KIND_WORDS.get(kind, kind.__name__)


def is_kind(value: Any, kind: type) -> bool:
    """Whether a config value is of a setting's type: a bool is no number (YAML's ``yes`` is not 1), a whole
    number is a number."""
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind is float:
        return isinstance(value, int | float)
    return isinstance(value, kind)
