"""The change a customer's response makes to a deal, valued by the state it moves the deal to.

``bundle.stage_stats["_stage_values"]`` (learned by
:func:`dealscore.training.stage_values.learn_stage_values`) counts, per (real
stage, silence, chase) cell, the training snapshots and how many of them went on
to win. *Silence* is the days since the customer's last inbound touch (the
response rates' buckets); *chase* is how many outbound touches in a row went
unanswered (:data:`dealscore.playbook.CHASE_BUCKETS`): a customer who stopped answering while the rep
keeps writing is in another state than one who is merely between meetings.
:class:`StageValues` smooths the rates down a hierarchy (``PRIOR_SNAPSHOTS``
pseudo-snapshots at the rate of the cell's (stage, silence), which leans on the
stage's, which leans on the overall rate) and values a response as the move it makes:

    v_now    = Σ_s P(real stage s | deal now)       · V(s, silence now, chase now)
    v_after  = Σ_s P(real stage s | deal + response) · V(s, silence after, chase after)
    p_after  = sigmoid(logit(p_win) + logit(v_after) − logit(v_now))

The stage probabilities are the real-stage model's on the deal and on its what-if
(the response added now), so a response that completes the real stage's key step
moves the deal along, and a reply ends the customer's silence and the chase. The deal's own
win probability carries everything else the win model knows about it (a 3% deal
does not jump to its stage's average): the move is applied as a change of odds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit, logit

from dealscore.playbook import CHASE_BUCKETS, SILENCE_BUCKETS

#: pseudo-snapshots at the broader rate added to each cell: a thin cell says little
PRIOR_SNAPSHOTS = 20.0

#: probabilities are kept this far from 0 and 1 before taking log-odds
EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    return logit(np.clip(np.asarray(p, dtype=float), EPS, 1.0 - EPS))


@dataclass(frozen=True)
class StageValues:
    """Smoothed win rate per (real stage, silence bucket, chase bucket): stages in the taxonomy's order."""

    rates: np.ndarray  # (stages, len(SILENCE_BUCKETS), len(CHASE_BUCKETS))
    stages: tuple[str, ...] = ()
    silence_rates: np.ndarray | None = None  # (stages, len(SILENCE_BUCKETS)): every chase together
    snapshots: np.ndarray | None = None  # raw counts behind ``rates``

    @classmethod
    def from_stage_stats(cls, stage_stats: Mapping[str, Any] | None, stages: Sequence[str]) -> StageValues | None:
        """The bundle's table, or None when it has none (a bundle trained before it existed, or before the table
        counted the chase): the scorer then values responses by the win model's re-score."""
        raw = (stage_stats or {}).get("_stage_values") or {}
        rows = raw.get("rows") or []
        if not rows or any("chase" not in r for r in rows):
            return None
        pos = {s: i for i, s in enumerate(stages)}
        col = {b: j for j, b in enumerate(SILENCE_BUCKETS)}
        chase = {c: k for k, c in enumerate(CHASE_BUCKETS)}
        n = np.zeros((len(stages), len(SILENCE_BUCKETS), len(CHASE_BUCKETS)))
        w = np.zeros_like(n)
        for r in rows:
            i, j, k = pos.get(r["stage"]), col.get(r["silence"]), chase.get(r["chase"])
            if i is not None and j is not None and k is not None:
                n[i, j, k], w[i, j, k] = float(r["snapshots"]), float(r["won"])
        overall = (w.sum() + 1.0) / (n.sum() + 2.0)
        stage_rate = (w.sum(axis=(1, 2)) + PRIOR_SNAPSHOTS * overall) / (n.sum(axis=(1, 2)) + PRIOR_SNAPSHOTS)
        silence_rate = ((w.sum(axis=2) + PRIOR_SNAPSHOTS * stage_rate[:, None])
                        / (n.sum(axis=2) + PRIOR_SNAPSHOTS))
        rates = (w + PRIOR_SNAPSHOTS * silence_rate[:, :, None]) / (n + PRIOR_SNAPSHOTS)
        return cls(rates=rates, stages=tuple(stages), silence_rates=silence_rate, snapshots=n)

    def summary(self) -> dict[str, Any]:
        """What a manager reads on the model page: the smoothed win rate per real stage and customer silence
        (every chase together), the chase's own effect, and the past snapshots each figure rests on.

        The same numbers the next-best actions are priced with, so a suggestion's
        "in the state a response leads to Y%" can be looked up here.
        """
        if self.silence_rates is None or self.snapshots is None:
            return {}
        n = self.snapshots
        by_stage = [{"stage": st, "snapshots": int(n[i].sum()),
                     "win_rates": {b: float(self.silence_rates[i, j]) for j, b in enumerate(SILENCE_BUCKETS)},
                     "snapshots_by_silence": {b: int(n[i, j].sum()) for j, b in enumerate(SILENCE_BUCKETS)}}
                    for i, st in enumerate(self.stages)]
        # the chase over every stage and silence, each cell's smoothed rate weighted by its snapshots
        weight = n.sum(axis=(0, 1))
        chase_rate = (self.rates * n).sum(axis=(0, 1)) / np.where(weight > 0, weight, 1.0)
        by_chase = [{"chase": c, "snapshots": int(weight[k]), "win_rate": float(chase_rate[k]) if weight[k] else None}
                    for k, c in enumerate(CHASE_BUCKETS)]
        return {"silence_buckets": list(SILENCE_BUCKETS), "stages": by_stage, "chase": by_chase,
                "prior_snapshots": PRIOR_SNAPSHOTS, "reading": _reading(by_stage, by_chase)}

    def value(self, stage_proba: np.ndarray, silence: np.ndarray, chase: np.ndarray) -> np.ndarray:
        """Σ_s P(stage s) · V(s, silence, chase) per row (bucket indices, see ``silence_bucket``/``chase_bucket``)."""
        proba = np.asarray(stage_proba, dtype=float)
        cells = self.rates[:, np.asarray(silence, dtype=np.int64), np.asarray(chase, dtype=np.int64)]
        return (proba * cells.T).sum(axis=1)

    def moved(self, p: np.ndarray, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        """Win probabilities ``p`` moved by the odds ratio of the state values ``after`` / ``before``."""
        return np.asarray(expit(_logit(p) + _logit(after) - _logit(before)), dtype=float)


def _reading(by_stage: list[dict[str, Any]], by_chase: list[dict[str, Any]]) -> list[str]:
    """Two plain sentences: where the customer's silence matters most, and what an unanswered chase says."""
    out = []
    seen = [r for r in by_stage if r["snapshots_by_silence"]["under_7d"] and r["snapshots_by_silence"]["over_30d"]]
    if seen:
        r = max(seen, key=lambda r: r["win_rates"]["under_7d"] - r["win_rates"]["over_30d"])
        out.append(f"Silence matters most in {r['stage']}: past deals there won {r['win_rates']['under_7d']:.0%} "
                   f"of the time when the customer had replied within the week, {r['win_rates']['over_30d']:.0%} "
                   f"after more than 30 days without a reply.")
    none = next((c for c in by_chase if c["chase"] == "none" and c["win_rate"] is not None), None)
    chased = [c for c in by_chase if c["chase"] != "none" and c["win_rate"] is not None and c["snapshots"]]
    if none is not None and chased:
        # a mid-length chase (the busier of 4–6 and 7–11) says most; without one, the shortest chase seen
        mid = [c for c in chased if c["chase"] in ("4_to_6", "7_to_11")]
        c = max(mid, key=lambda c: c["snapshots"]) if mid else chased[0]
        out.append(f"Unanswered touches in a row are a warning: with {c['chase'].replace('_to_', '–')} of them past "
                   f"deals won {c['win_rate']:.0%}, against {none['win_rate']:.0%} with none.")
    return out
