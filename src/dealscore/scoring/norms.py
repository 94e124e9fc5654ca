"""What is normal for a stage, as learned from closed deals (``bundle.stage_stats``).

Warnings and the at-risk ranking compare a deal against these norms ("won deals
left proposal within 31 days"). The models layer learns them from deals closed
before the training cut; this module only reads them, fills documented defaults
where a stage had too few won deals to learn from, and remembers which figure
was learned and which is a default so that a warning can say so.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

#: Fallbacks used when the history gave no figure for a stage (documented in docs/scoring.md).
DEFAULT_GAP_DAYS = 7.0
DEFAULT_STALL_DAYS = 45.0


@dataclass(frozen=True)
class Norm:
    """One threshold and where it comes from (shown beside the warning)."""

    value: float
    learned: bool

    def source(self, what: str, stage: str | None) -> str:
        """Human wording of the provenance, e.g. '90th percentile of won deals in proposal'."""
        if self.learned:
            return f"{what} of won deals in {stage}, learned from the training history"
        return f"default {what} (too few won deals in {stage} to learn from)"


F = TypeVar("F", bound=Callable[..., Any])


def _memoized(method: F) -> F:
    """Cache a per-stage figure on the (frozen) norms: the figures never change once read from the bundle."""
    name = method.__name__

    @functools.wraps(method)
    def wrapper(self: StageNorms, stage: str | None) -> Any:
        key = (name, stage)
        memo = self._memo
        if key not in memo:
            memo[key] = method(self, stage)
        return memo[key]
    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class StageNorms:
    """Per-stage norms with defaults; keys are canonical stage names."""

    stats: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    overall: Mapping[str, Any] = field(default_factory=dict)
    #: answers already given per (figure, stage): the rules ask for the same few on every deal scored
    _memo: dict[tuple[str, str | None], Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def from_stage_stats(cls, stage_stats: Mapping[str, Any] | None) -> StageNorms:
        """Accept ``{stage: {...}}`` or ``{"stages": {stage: {...}}, "overall": {...}}``."""
        raw = dict(stage_stats or {})
        if isinstance(raw.get("stages"), Mapping):
            stages = raw["stages"]
            overall = raw.get("overall") or {}
        else:
            overall = raw.pop("overall", None) or raw.pop("_overall", None) or {}
            # keys starting with "_" hold other learned tables (e.g. "_response_rates"), not stages
            stages = {k: v for k, v in raw.items() if isinstance(v, Mapping) and not str(k).startswith("_")}
        return cls(stats=stages, overall=overall)

    def _get(self, stage: str | None, key: str) -> float | None:
        row = self.stats.get(stage) if stage is not None else None
        for source in (row, self.overall):
            if source is None:
                continue
            val = source.get(key)
            if val is not None and not (isinstance(val, float) and math.isnan(val)):
                return float(val)
        return None

    def _learned(self, stage: str | None, key: str) -> bool:
        row = self.stats.get(stage) if stage is not None else None
        return row is not None and row.get(key) is not None and not _isnan(row.get(key))

    @_memoized
    def gap_days(self, stage: str | None) -> Norm:
        """Longest usual silence between touchpoints (90th percentile gap in won deals)."""
        val = self._get(stage, "p90_gap_days")
        return Norm(max(val, 1.0), self._learned(stage, "p90_gap_days")) if val else Norm(DEFAULT_GAP_DAYS, False)

    @_memoized
    def stall_days(self, stage: str | None) -> Norm:
        """Days in stage beyond which won deals rarely stayed (90th percentile in won deals)."""
        val = self._get(stage, "p90_days_in_stage_won")
        if val:
            return Norm(max(val, 1.0), self._learned(stage, "p90_days_in_stage_won"))
        med = self._get(stage, "median_days_in_stage_won")
        return Norm(2.0 * med, False) if med else Norm(DEFAULT_STALL_DAYS, False)

    @_memoized
    def median_days(self, stage: str | None) -> float | None:
        """Median days won deals spent in the stage (None when unknown)."""
        return self._get(stage, "median_days_in_stage_won")

    @_memoized
    def win_rate(self, stage: str | None) -> float | None:
        """Historical win rate of deals in the declared stage: the 'typical p_win' of at-risk."""
        return self._get(stage, "win_rate")


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)
