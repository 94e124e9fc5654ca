"""How numbers, dates and codes read on the page (Jinja filters).

Amounts carry no currency in the data contract, so they are shown as plain
numbers with thousands separators; totals get a compact form (1.24M).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jinja2 import Environment

from dealscore.wording import percent_text, points_text

MISMATCH_LABELS = {
    "ahead_of_evidence": "CRM ahead of evidence",
    "behind_evidence": "CRM behind evidence",
    "consistent": "consistent",
    "unknown": "not enough evidence",
}
SOURCE_LABELS = {
    "registry": "MLflow registry (champion)",
    "local_copy": "local copy (registry unreachable)",
    "path": "bundle folder (DEALSCORE_MODEL_PATH)",
}


def money(value: float | None) -> str:
    if value is None or value != value:
        return "—"
    return f"{value:,.0f}"


def compact(value: float | None) -> str:
    if value is None or value != value:
        return "—"
    v = abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if v >= limit:
            return f"{value / limit:,.2f}".rstrip("0").rstrip(".") + suffix
    return f"{value:,.0f}"


def pct(value: float | None, digits: int = 0) -> str:
    """A probability or share as a percentage: '37%', '<1%' / '>99%' instead of a rounded 0% or 100%
    (the same rule as the API's ``p_win_display``)."""
    return percent_text(value, digits)


def pts(value: float | None) -> str:
    """Signed probability points: +6 pts, −0.5 pts, +1 pt (:func:`dealscore.wording.points_text`)."""
    return points_text(value)


def day(value: datetime | str | None) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    return f"{value:%d %b %Y}"


def when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return f"{value:%d %b %Y %H:%M} UTC"


def num(value: Any, digits: int = 3) -> str:
    if not isinstance(value, int | float) or value != value:
        return "—"
    return f"{value:.{digits}f}"


def mismatch_label(code: str | None) -> str:
    return MISMATCH_LABELS.get(code or "unknown", code or "unknown")


def sentence(text: str | None) -> str:
    """Library messages start lower-case (they are often embedded); on the page they stand alone."""
    if not text:
        return ""
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?", ")")) else text + "."


def source_label(code: str | None) -> str:
    return SOURCE_LABELS.get(code or "", code or "—")


def install(env: Environment) -> None:
    """Register the filters on a Jinja environment."""
    env.filters.update(money=money, compact=compact, pct=pct, pts=pts, day=day, when=when, num=num,
                       mismatch_label=mismatch_label, source_label=source_label, sentence=sentence)
