"""Warning thresholds learned for a stated precision, and each warning's track record.

A fixed rule ("stalled beyond the 90th percentile of won deals") fires on many
deals that go on to be won, and a manager stops believing it. Training learns,
per episode warning and declared stage, the lowest threshold on the rule's
*measure* at which the company's own closed training deals flagged that way were
followed by a loss at least a stated share of the time
(:func:`dealscore.training.warning_thresholds.learn_warning_thresholds`). The
table lives in ``bundle.stage_stats["_warning_thresholds"]``; this module reads
it and defines the measures, so that training and scoring compute them with the
same array expressions (one code path for one deal, a batch and the API).

Measures (each with the rows it is eligible on):

- ``stalled_in_stage``: days since the last touchpoint of any kind, on deals the
  rep is not chasing (at most ``WarningRules.stalled_max_unanswered`` outbound
  touches without a reply): the deal has stopped moving, on both sides;
- ``gone_quiet``: days since the customer last replied (since creation if never);
- ``ghosting``: outbound touches in a row without a customer reply;
- ``single_threaded``: customer replies so far while at most one contact ever
  took part: the more the customer talked, the more telling that it was always
  the same person.

A stage whose training deals never reach the precision with enough support
keeps the fixed rule of :mod:`dealscore.scoring.warnings` and says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dealscore.scoring.columns import Columns, nan_to_zero

#: The episode warnings whose thresholds are learned, in the order they are learned and reported.
LEARNED_CODES = ("stalled_in_stage", "gone_quiet", "ghosting", "single_threaded")
#: Outbound touches without reply above which a silent deal is being chased (ghosting), not stalled.
STALLED_MAX_UNANSWERED = 3


def warning_measures(cols: Columns) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each learned warning's measure and eligibility per row (higher measure = more alarming)."""
    age = cols.num("deal_age_days")
    since_touch = cols.num("days_since_last_touch")
    since_reply = cols.num("days_since_last_inbound")
    unanswered = nan_to_zero(cols.num("n_outbound_unanswered"))
    contacts = nan_to_zero(cols.num("n_contacts"))
    everyone = np.ones(cols.n, dtype=bool)
    return {
        "stalled_in_stage": (np.where(np.isnan(since_touch), age, since_touch),
                             unanswered <= STALLED_MAX_UNANSWERED),
        "gone_quiet": (np.where(np.isnan(since_reply), age, since_reply), everyone),
        "ghosting": (unanswered, everyone),
        "single_threaded": (nan_to_zero(cols.num("n_inbound_total")), contacts <= 1),
    }


@dataclass(frozen=True)
class LearnedThreshold:
    """One warning's threshold in one stage and how often it was right on closed training deals."""

    value: float
    precision: float
    support: int
    base_loss_rate: float | None = None
    #: The precision was counted on later deals than the threshold was chosen on (else on the same, flattering).
    later: bool = False

    def record(self, what: str) -> str:
        """'stalled warnings like this were followed by a loss 7 times in 10, on 143 later closed deals'."""
        deals = f"deal{'s' if self.support != 1 else ''}"
        where = (f"later closed {deals} than the ones it was set on" if self.later
                 else f"closed {deals} of the training history it was set on")
        return f"{what} like this were followed by a loss {_in_ten(self.precision)}, on {self.support:,} {where}"


def _in_ten(p: float) -> str:
    k = round(10 * p)
    return "every time" if k >= 10 else f"{k} time{'s' if k != 1 else ''} in 10"


@dataclass
class WarningThresholds:
    """Lookup of :class:`LearnedThreshold` per (warning code, declared stage)."""

    table: Mapping[str, Mapping[str, LearnedThreshold]] = field(default_factory=dict)
    target: float | None = None
    #: The episode model's warnings (one threshold, a probability, for every stage): how often they were right
    #: on later closed deals than the model learned from (``stage_stats["_episodes"]["track_record"]``).
    episodes: Mapping[str, LearnedThreshold] = field(default_factory=dict)

    @classmethod
    def from_stage_stats(cls, stage_stats: Mapping[str, Any] | None) -> WarningThresholds:
        raw = (stage_stats or {}).get("_warning_thresholds") or {}
        codes = raw.get("codes") or {}
        table = {code: {stage: LearnedThreshold(float(v["threshold"]), float(v["precision"]), int(v["support"]),
                                                v.get("base_loss_rate"), v.get("checked_on") == "later deals")
                        for stage, v in (codes.get(code) or {}).items() if v.get("threshold") is not None}
                 for code in LEARNED_CODES}
        record = ((stage_stats or {}).get("_episodes") or {}).get("track_record") or {}
        episodes = {code: LearnedThreshold(float(v["at"]), float(v["precision"]), int(v["support"]),
                                           v.get("base_loss_rate"), later=True)
                    for code, v in record.items() if v.get("precision") is not None and v.get("support")}
        return cls(table=table, target=raw.get("target_precision"), episodes=episodes)

    def get(self, code: str, stage: str | None) -> LearnedThreshold | None:
        """The learned threshold of ``code`` in ``stage``, None when the fixed rule applies there."""
        return self.table.get(code, {}).get(stage) if stage is not None else None

    def limits(self, code: str, stage: np.ndarray) -> np.ndarray:
        """Per row: the learned threshold of its stage, NaN where the fixed rule applies."""
        by_stage = self.table.get(code) or {}
        if not by_stage:
            return np.full(len(stage), np.nan)
        return np.array([t.value if (t := by_stage.get(s)) is not None else np.nan for s in stage.tolist()],
                        dtype=float)
