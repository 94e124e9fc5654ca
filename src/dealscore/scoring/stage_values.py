"""The change a customer's response makes to a deal, valued by the state it moves the deal to.

``bundle.stage_stats["_stage_values"]`` (learned by
:func:`dealscore.training.stage_values.learn_stage_values`) counts, per (real
stage, episode, silence, chase) cell, the training snapshots and how many of them
went on to win. The *episode* is the episode model's reading of the touch pattern
(active, slow, stalled, quiet, or no reply yet: :data:`dealscore.models.episodes.EPISODES`);
*silence* is the days since the customer's last inbound touch (the response
rates' buckets); *chase* is how many outbound touches in a row went unanswered
(:data:`dealscore.playbook.CHASE_BUCKETS`): a customer who stopped answering while
the rep keeps writing is in another state than one who is merely between meetings.
:class:`StageValues` smooths the rates down a hierarchy (``PRIOR_SNAPSHOTS``
pseudo-snapshots at the rate of the cell's (stage, episode, silence), which leans
on its (stage, episode), which leans on the stage's, which leans on the overall
rate) and values a response as the move it makes:

    v_now    = Σ_s Σ_e P(s | deal now) P(e | deal now)           · V(s, e, silence, chase)
    v_after  = Σ_s Σ_e P(s | deal + response) P(e | after reply) · V(s, e, silence, chase)
    p_after  = sigmoid(logit(p_win) + logit(v_after) − logit(v_now))

The stage probabilities are the real-stage model's on the deal and on its what-if
(the response added now), so a response that completes the real stage's key step
moves the deal along; the episode probabilities after a response are the episode
filter's with the reply added (:meth:`dealscore.models.episodes.EpisodeModel.after_reply`:
a quiet deal that answers is most likely active again). Silence and chase stay as
they were: they tell how this customer has behaved so far, which one answer does not
undo, so the move is priced among past deals that had behaved alike. The deal's own
win probability carries everything else the win model knows about it (a 3% deal
does not jump to its stage's average): the move is applied as a change of odds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit, logit

from dealscore.models.episodes import EPISODES
from dealscore.playbook import CHASE_BUCKETS, SILENCE_BUCKETS

#: pseudo-snapshots at the broader rate added to each cell: a thin cell says little
PRIOR_SNAPSHOTS = 20.0

#: probabilities are kept this far from 0 and 1 before taking log-odds
EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    return logit(np.clip(np.asarray(p, dtype=float), EPS, 1.0 - EPS))


@dataclass(frozen=True)
class StageValues:
    """Smoothed win rate per (real stage, episode, silence bucket, chase bucket): stages in the taxonomy's order,
    episodes as :data:`~dealscore.models.episodes.EPISODES`."""

    rates: np.ndarray  # (stages, len(EPISODES), len(SILENCE_BUCKETS), len(CHASE_BUCKETS))
    stages: tuple[str, ...] = ()
    silence_rates: np.ndarray | None = None  # (stages, len(SILENCE_BUCKETS)): every episode and chase together
    episode_rates: np.ndarray | None = None  # (stages, len(EPISODES)): every silence and chase together
    snapshots: np.ndarray | None = None  # raw (weighted) counts behind ``rates``

    @classmethod
    def from_stage_stats(cls, stage_stats: Mapping[str, Any] | None, stages: Sequence[str]) -> StageValues | None:
        """The bundle's table, or None when it has none (a bundle trained before it existed, or before the table
        counted the chase and the episode): the scorer then values responses by the win model's re-score."""
        raw = (stage_stats or {}).get("_stage_values") or {}
        rows = raw.get("rows") or []
        if not rows or any("chase" not in r or "episode" not in r for r in rows):
            return None
        pos = {s: i for i, s in enumerate(stages)}
        ep = {e: m for m, e in enumerate(EPISODES)}
        col = {b: j for j, b in enumerate(SILENCE_BUCKETS)}
        chase = {c: k for k, c in enumerate(CHASE_BUCKETS)}
        n = np.zeros((len(stages), len(EPISODES), len(SILENCE_BUCKETS), len(CHASE_BUCKETS)))
        w = np.zeros_like(n)
        for r in rows:
            i, m, j, k = pos.get(r["stage"]), ep.get(r["episode"]), col.get(r["silence"]), chase.get(r["chase"])
            if i is not None and m is not None and j is not None and k is not None:
                n[i, m, j, k], w[i, m, j, k] = float(r["snapshots"]), float(r["won"])
        overall = (w.sum() + 1.0) / (n.sum() + 2.0)
        stage_rate = _smoothed(w.sum(axis=(1, 2, 3)), n.sum(axis=(1, 2, 3)), overall)
        episode_rate = _smoothed(w.sum(axis=(2, 3)), n.sum(axis=(2, 3)), stage_rate[:, None])
        episode_silence = _smoothed(w.sum(axis=3), n.sum(axis=3), episode_rate[:, :, None])
        rates = _smoothed(w, n, episode_silence[:, :, :, None])
        silence_rate = _smoothed(w.sum(axis=(1, 3)), n.sum(axis=(1, 3)), stage_rate[:, None])
        return cls(rates=rates, stages=tuple(stages), silence_rates=silence_rate, episode_rates=episode_rate,
                   snapshots=n)

    def summary(self) -> dict[str, Any]:
        """What a manager reads on the model page: the smoothed win rate per real stage and customer silence
        (every chase together), the chase's own effect, and the past snapshots each figure rests on.

        The same numbers the next-best actions are priced with, so a suggestion's
        "in the state a response leads to Y%" can be looked up here.
        """
        if self.silence_rates is None or self.snapshots is None:
            return {}
        n = self.snapshots
        episodes = self.episode_rates if self.episode_rates is not None else np.zeros((len(self.stages), 0))
        by_stage = [{"stage": st, "snapshots": round(float(n[i].sum())),
                     "win_rates": {b: float(self.silence_rates[i, j]) for j, b in enumerate(SILENCE_BUCKETS)},
                     "snapshots_by_silence": {b: round(float(n[i, :, j].sum())) for j, b in enumerate(SILENCE_BUCKETS)},
                     "win_rates_by_episode": {e: float(r) for e, r in zip(EPISODES, episodes[i], strict=False)},
                     "snapshots_by_episode": {e: round(float(n[i, m].sum())) for m, e in enumerate(EPISODES)}}
                    for i, st in enumerate(self.stages)]
        # the chase over every stage, episode and silence, each cell's smoothed rate weighted by its snapshots
        weight = n.sum(axis=(0, 1, 2))
        chase_rate = (self.rates * n).sum(axis=(0, 1, 2)) / np.where(weight > 0, weight, 1.0)
        by_chase = [{"chase": c, "snapshots": round(float(weight[k])),
                     "win_rate": float(chase_rate[k]) if weight[k] else None}
                    for k, c in enumerate(CHASE_BUCKETS)]
        return {"silence_buckets": list(SILENCE_BUCKETS), "stages": by_stage, "chase": by_chase,
                "prior_snapshots": PRIOR_SNAPSHOTS, "reading": _reading(by_stage, by_chase)}

    def value(self, stage_proba: np.ndarray, episodes: np.ndarray, silence: np.ndarray, chase: np.ndarray
              ) -> np.ndarray:
        """Σ_s Σ_e P(stage s) P(episode e) · V(s, e, silence, chase) per row (bucket indices, see
        ``silence_bucket``/``chase_bucket``; episode weights as :func:`~dealscore.models.episodes.episode_weights`)."""
        cells = self.rates[:, :, np.asarray(silence, dtype=np.int64), np.asarray(chase, dtype=np.int64)]
        return np.einsum("ns,ne,sen->n", np.asarray(stage_proba, dtype=float), np.asarray(episodes, dtype=float),
                         cells)

    def moved(self, p: np.ndarray, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        """Win probabilities ``p`` moved by the odds ratio of the state values ``after`` / ``before``."""
        return np.asarray(expit(_logit(p) + _logit(after) - _logit(before)), dtype=float)


def _smoothed(won: np.ndarray, snapshots: np.ndarray, prior: np.ndarray | float) -> np.ndarray:
    """Win rates with ``PRIOR_SNAPSHOTS`` pseudo-snapshots at the broader ``prior`` rate."""
    return (won + PRIOR_SNAPSHOTS * prior) / (snapshots + PRIOR_SNAPSHOTS)


def _reading(by_stage: list[dict[str, Any]], by_chase: list[dict[str, Any]]) -> list[str]:
    """Plain sentences: where the customer's silence matters most, what an unanswered chase says, and what a
    deal gone quiet is worth against an active one."""
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
    both = [r for r in by_stage if r.get("snapshots_by_episode", {}).get("active")
            and r.get("snapshots_by_episode", {}).get("quiet")]
    if both:
        r = max(both, key=lambda r: r["win_rates_by_episode"]["active"] - r["win_rates_by_episode"]["quiet"])
        out.append(f"A deal gone quiet is worth far less than an active one: in {r['stage']} past deals won "
                   f"{r['win_rates_by_episode']['active']:.0%} of the time while active, "
                   f"{r['win_rates_by_episode']['quiet']:.0%} once the customer had gone quiet; a reply that "
                   f"revives it is what the actions are priced on.")
    return out
