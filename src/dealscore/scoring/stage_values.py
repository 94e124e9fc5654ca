"""The change a customer's response makes to a deal, valued by the state it moves the deal to.

``bundle.stage_stats["_stage_values"]`` (learned by
:func:`dealscore.training.stage_values.learn_stage_values`) counts, per (real
stage, silence bucket), the training snapshots and how many of them went on to
win. :class:`StageValues` smooths those rates (``PRIOR_SNAPSHOTS``
pseudo-snapshots at the stage's rate, which itself leans on the overall rate)
and values a response as the move it makes:

    v_now    = Σ_s P(real stage s | deal now)       · V(s, silence now)
    v_after  = Σ_s P(real stage s | deal + response) · V(s, silence after the response)
    p_after  = sigmoid(logit(p_win) + logit(v_after) − logit(v_now))

The stage probabilities are the real-stage model's on the deal and on its what-if
(the response added now), so a response that completes the real stage's key step
moves the deal along, and a reply ends the customer's silence. The deal's own
win probability carries everything else the win model knows about it (a 3% deal
does not jump to its stage's average): the move is applied as a change of odds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dealscore.playbook import SILENCE_BUCKETS

#: pseudo-snapshots at the stage's rate added to each (stage, silence) cell: a thin cell says little
PRIOR_SNAPSHOTS = 20.0
#: probabilities are kept this far from 0 and 1 before taking log-odds
EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, EPS, 1.0 - EPS)
    return np.log(q) - np.log1p(-q)


@dataclass(frozen=True)
class StageValues:
    """Smoothed win rate per (real stage, silence bucket): rows in the taxonomy's stage order."""

    rates: np.ndarray  # (stages, len(SILENCE_BUCKETS))

    @classmethod
    def from_stage_stats(cls, stage_stats: Mapping[str, Any] | None, stages: Sequence[str]) -> StageValues | None:
        """The bundle's table, or None when it has none (a bundle trained before it existed)."""
        raw = (stage_stats or {}).get("_stage_values") or {}
        rows = raw.get("rows") or []
        if not rows:
            return None
        pos = {s: i for i, s in enumerate(stages)}
        col = {b: j for j, b in enumerate(SILENCE_BUCKETS)}
        n = np.zeros((len(stages), len(SILENCE_BUCKETS)))
        w = np.zeros_like(n)
        for r in rows:
            i, j = pos.get(r["stage"]), col.get(r["silence"])
            if i is not None and j is not None:
                n[i, j], w[i, j] = float(r["snapshots"]), float(r["won"])
        overall = (w.sum() + 1.0) / (n.sum() + 2.0)
        stage_rate = (w.sum(axis=1) + PRIOR_SNAPSHOTS * overall) / (n.sum(axis=1) + PRIOR_SNAPSHOTS)
        rates = (w + PRIOR_SNAPSHOTS * stage_rate[:, None]) / (n + PRIOR_SNAPSHOTS)
        return cls(rates=rates)

    def value(self, stage_proba: np.ndarray, bucket: np.ndarray) -> np.ndarray:
        """Σ_s P(stage s) · V(s, bucket) per row."""
        proba = np.asarray(stage_proba, dtype=float)
        return (proba * self.rates[:, np.asarray(bucket, dtype=np.int64)].T).sum(axis=1)

    def moved(self, p: np.ndarray, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        """Win probabilities ``p`` moved by the odds ratio of the state values ``after`` / ``before``."""
        z = _logit(np.asarray(p, dtype=float)) + _logit(np.asarray(after)) - _logit(np.asarray(before))
        return 1.0 / (1.0 + np.exp(-z))
