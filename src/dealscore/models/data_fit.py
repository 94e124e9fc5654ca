"""Does a history look like the one a model learned from? Named differences, never a silent mismatch.

A model trained on the simulator's demo CRM scores a HubSpot export without
complaint: the features are built, the numbers come out, and they mean little,
because the model never saw those stages used that way, those teams or those
industries. Training records a small profile of its history in the bundle
(``history_stats``: where the data came from, the declared stages, teams and the
categories the features saw); :func:`data_mismatch` compares a history to score
with it and names each difference, so the CLI, the API response and the page can
say it once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from dealscore.data.history import DealHistory

#: The history's columns whose values a model learns per value (deals unless said otherwise).
_PROFILED = (("team", "deals"), ("industry", "accounts"), ("region", "accounts"), ("product", "deals"),
             ("source", "deals"))
#: A category differs when more than this share of the scored history's values were never seen in training.
UNSEEN_SHARE = 0.5
_MAX_PROFILE_VALUES = 500


def training_data_profile(history: DealHistory) -> dict[str, Any]:
    """What a bundle remembers of its training history: source, declared stages and category values.

    At most :data:`_MAX_PROFILE_VALUES` values per category are kept (the most frequent):
    enough to recognise a history, small enough for ``bundle.json``.
    """
    profile: dict[str, Any] = {"source": history.meta.get("source")}
    profile["stages_seen"] = _top(history.stage_history["stage"])
    for col, table in _PROFILED:
        frame = history.table(table)
        if frame is not None and col in frame:
            profile[f"{col}_seen"] = _top(frame[col])
    return profile


def _top(values: pd.Series) -> list[str]:
    counts = values.dropna().astype(str).value_counts()
    return sorted(counts.index[:_MAX_PROFILE_VALUES].tolist())


@dataclass(frozen=True)
class DataMismatch:
    """The ways a history differs from a model's training history, each in words."""

    differences: tuple[str, ...]

    @property
    def message(self) -> str:
        return ("the model was trained on a different history (" + "; ".join(self.differences)
                + "): its scores may not fit this data; train a model on this history with `dealscore train`")


def data_mismatch(history_stats: dict[str, Any], history: DealHistory) -> DataMismatch | None:
    """Compare ``history`` with the training profile in a bundle's ``history_stats``; ``None`` when alike.

    A bundle trained before profiles were recorded has nothing to compare: ``None``.
    Differences named: another source (the demo simulator against an import), declared
    stages the model never saw, and each category whose values are mostly unseen.
    """
    if not history_stats or "stages_seen" not in history_stats:
        return None
    out: list[str] = []
    trained_on, scoring = history_stats.get("source"), history.meta.get("source")
    if trained_on and scoring and trained_on != scoring:
        out.append(f"trained on data from {trained_on!r}, this history comes from {scoring!r}")
    stages = set(history.stage_history["stage"].dropna().astype(str))
    unseen_stages = sorted(stages - set(history_stats.get("stages_seen") or []))
    if unseen_stages:
        out.append(f"declared stages never seen in training: {_listed(unseen_stages)}")
    for col, table in _PROFILED:
        seen = history_stats.get(f"{col}_seen")
        frame = history.table(table)
        if seen is None or frame is None or col not in frame:
            continue
        values = frame[col].dropna().astype(str)
        if not len(values):
            continue
        unseen = ~values.isin(set(seen))
        if unseen.mean() > UNSEEN_SHARE:
            out.append(f"{col}: {int(unseen.sum())} of {len(values)} {table} have a value never seen in training "
                       f"({_listed(sorted(set(values[unseen])))})")
    return DataMismatch(tuple(out)) if out else None


def _listed(values: Iterable[str], n: int = 5) -> str:
    values = list(values)
    shown = ", ".join(repr(v) for v in values[:n])
    return shown + (f" and {len(values) - n} more" if len(values) > n else "")


__all__ = ["DataMismatch", "data_mismatch", "training_data_profile"]
