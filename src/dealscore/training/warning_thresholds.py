"""Episode-warning thresholds learned for a stated precision on the training slice's closed deals.

A warning is right when the deal it flags goes on to be lost: the label a user can
check on their own CRM (no real CRM records "stalled" or "ghosting" episodes).
For each warning of :data:`dealscore.scoring.track_record.LEARNED_CODES` and each
declared stage, the training snapshots (weekly across each training deal's open
life, features as the model saw them) give the measure of
:func:`~dealscore.scoring.track_record.warning_measures` and whether the deal was
lost. Candidate thresholds run from low to high (quantiles of the measure); the
first one at which

- the flagged snapshots were followed by a loss at least ``required`` of the time, where
  ``required = max(target_precision, 1 − (1 − stage loss rate) · max_win_ratio)``: at least
  the stated precision, and flagged deals won at most ``max_win_ratio`` times as often as
  the stage's usual (in a stage where 80% of deals are lost anyway, "followed by a loss
  6 times in 10" would flag deals *better* than average), and
- at least ``min_support`` distinct closed deals were flagged,

is kept. A stage where no threshold gets there keeps the fixed rule (scoring says
so). Only the training slice chooses: deals created before the validation,
calibration and test periods, so nothing of an evaluation period moves a threshold.

The precision a warning *states* is not the one it was chosen on: the first
threshold to pass on the training slice passed partly by luck, so its training
precision flatters it. Each kept threshold is re-counted on the later deals the
choice never saw (the ``held_out`` snapshots: the validation and calibration
periods), and that figure, with its own support, is what the warning says.
Where fewer than :data:`MIN_HELD_OUT_DEALS` later deals were flagged the training
figure is stated instead and marked as such (``checked_on: "training deals"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dealscore.scoring.columns import Columns
from dealscore.scoring.track_record import LEARNED_CODES, warning_measures
from dealscore.scoring.warnings import EPISODE_WARNINGS
from dealscore.training.config import require

#: Candidate thresholds per (warning, stage): quantiles of the measure on the eligible snapshots.
N_CANDIDATES = 100
#: Later flagged deals needed before a warning states its later (held-out) precision rather than the training one.
MIN_HELD_OUT_DEALS = 10

#: Snapshots as (features, won, deal ids): one slice of the history.
Slice = tuple[pd.DataFrame, np.ndarray, np.ndarray]


def learn_warning_thresholds(
    features: pd.DataFrame, won: np.ndarray, deal_ids: np.ndarray, *, target_precision: float = 0.6,
    max_win_ratio: float = 0.5, min_support: int = 30, held_out: Slice | None = None,
) -> dict[str, Any]:
    """The thresholds table stored in ``bundle.stage_stats["_warning_thresholds"]`` (see module docstring).

    ``features``, ``won`` and ``deal_ids`` are the training slice's snapshots only
    (the caller selects them); ``won`` is 1 for a deal later won, 0 for lost.
    ``held_out`` is a later slice in the same form, only counted, never chosen on.
    """
    require("warnings.target_precision", target_precision)
    lost = np.asarray(won, dtype=float) == 0
    deal_ids = np.asarray(deal_ids, dtype=object)
    stage = (features["declared_stage"].astype(object).to_numpy() if "declared_stage" in features.columns
             else np.full(len(features), None, dtype=object))
    measures = warning_measures(Columns(features))
    codes: dict[str, dict[str, dict[str, Any]]] = {}
    stages = sorted({s for s in stage.tolist() if isinstance(s, str)})
    for code in LEARNED_CODES:
        value, eligible = measures[code]
        codes[code] = {}
        for s in stages:
            in_stage = stage == s
            base = float(lost[in_stage].mean())
            required = max(target_precision, 1.0 - (1.0 - base) * max_win_ratio)
            rows = in_stage & eligible & ~np.isnan(value)
            codes[code][s] = {"base_loss_rate": base, "required_precision": required,
                              **_lowest_threshold(value[rows], lost[rows], deal_ids[rows], required, min_support)}
    _count_later(codes, held_out)
    return {"target_precision": target_precision, "max_win_ratio": max_win_ratio, "min_support": min_support,
            "label": "followed by a loss", "source": "snapshots of the training slice's closed deals",
            "stated_on": f"later deals (at least {MIN_HELD_OUT_DEALS} flagged), else the training deals",
            "codes": codes}


def _count_later(codes: dict[str, dict[str, dict[str, Any]]], held_out: Slice | None) -> None:
    """Re-count every kept threshold on the later slice; state that figure where it rests on enough deals."""
    if held_out is not None:
        features, won, deal_ids = held_out
        lost = np.asarray(won, dtype=float) == 0
        deal_ids = np.asarray(deal_ids, dtype=object)
        stage = (features["declared_stage"].astype(object).to_numpy() if "declared_stage" in features.columns
                 else np.full(len(features), None, dtype=object))
        measures = warning_measures(Columns(features))
    for code, by_stage in codes.items():
        for s, entry in by_stage.items():
            if entry.get("threshold") is None:
                continue
            entry["fit_precision"], entry["fit_support"] = entry["precision"], entry["support"]
            entry["checked_on"] = "training deals"
            if held_out is None:
                continue
            value, eligible = measures[code]
            flagged = (stage == s) & eligible & (np.nan_to_num(value, nan=-np.inf) >= entry["threshold"])
            support = len(np.unique(deal_ids[flagged]))
            if support >= MIN_HELD_OUT_DEALS:
                entry.update(precision=float(lost[flagged].mean()), support=support, checked_on="later deals")


def _lowest_threshold(value: np.ndarray, lost: np.ndarray, deal: np.ndarray, required: float,
                      min_support: int) -> dict[str, Any]:
    """The lowest candidate threshold whose flagged rows reach ``required`` precision on enough deals."""
    none = {"threshold": None, "precision": None, "support": len(np.unique(deal))}
    if not len(value):
        return none
    candidates = np.unique(np.quantile(value, np.linspace(0.0, 0.99, N_CANDIDATES), method="lower"))
    # rows sorted by measure: the rows at or above a candidate are a suffix
    order = np.argsort(value, kind="stable")
    v, lo = value[order], lost[order]
    lost_above = np.cumsum(lo[::-1])[::-1]
    codes, first = pd.factorize(deal[order])[0], None
    # distinct deals in each suffix: a deal counts from its highest-measure row down
    last_pos = np.full(codes.max() + 1, -1)
    last_pos[codes] = np.arange(len(codes))  # the last (largest-measure) row of each deal
    deals_from = np.bincount(last_pos, minlength=len(codes))
    deals_above = np.cumsum(deals_from[::-1])[::-1]
    for t in candidates:
        k = int(np.searchsorted(v, t, side="left"))
        if k >= len(v):
            break
        support = int(deals_above[k])
        if support < min_support:
            break
        precision = float(lost_above[k] / (len(v) - k))
        if precision >= required:
            first = {"threshold": float(t), "precision": precision, "support": support}
            break
    return first or none


def episode_track_record(probabilities: np.ndarray, lost: np.ndarray, deal_ids: np.ndarray, at: float
                         ) -> dict[str, dict[str, Any]]:
    """How often each episode-model warning was followed by a loss on closed snapshots it would have fired on.

    ``probabilities``: the episode model's state probabilities per snapshot (later deals than the model was
    fitted on); ``lost``: whether each snapshot's deal was lost. Precision is over the flagged snapshots,
    support the distinct deals among them; the base rate is the loss rate of all of them.
    """
    known = ~np.isnan(probabilities).any(axis=1)
    filled = np.where(known[:, None], probabilities, 0.0)
    out: dict[str, dict[str, Any]] = {}
    for code, states, _ in EPISODE_WARNINGS:
        fired = known & (filled[:, list(states)].sum(axis=1) >= at)
        out[code] = {"at": at, "precision": float(lost[fired].mean()) if fired.any() else None,
                     "support": int(pd.unique(deal_ids[fired]).size),
                     "base_loss_rate": float(lost.mean()) if len(lost) else None}
    return out
