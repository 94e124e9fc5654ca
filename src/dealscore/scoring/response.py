"""P(the customer takes up an action | deals like this one now), from the training slice's outreach.

``bundle.stage_stats["_response_rates"]`` (learned by
:func:`dealscore.training.response_rates.learn_response_rates`) counts attempts
and answers per (declared stage, episode, role group, first engagement), the
episode being the episode model's reading of the touch pattern just before the
attempt. A deal's chance is the episode cells' rates weighed by its own episode
probabilities now. A cell with few attempts borrows from the broader one: each
rate is a Beta posterior mean with ``PRIOR_ATTEMPTS`` pseudo-attempts at the rate
of the same episode and role over all stages. ``deals`` is how many past deals
the cells rest on; the action's expected change is shrunk toward 0 by
``deals / (deals + SHRINK_DEALS)`` so that thin evidence promises little.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dealscore.models.episodes import EPISODES
from dealscore.playbook import role_group

PRIOR_ATTEMPTS = 10.0
SHRINK_DEALS = 10.0
#: used when the bundle holds no response table (trained before it existed): 1 in 3, resting on nothing
UNKNOWN_RATE = 1.0 / 3.0

_Cell = tuple[str | None, str, str, bool]  # (stage, episode, role group, first engagement)


@dataclass(frozen=True)
class Response:
    """The chance an attempt is taken up, its 80% credible interval and the deals it rests on."""

    p: float
    low: float
    high: float
    deals: int


@dataclass
class ResponseRates:
    """Lookup of :class:`Response` by (stage, episode probabilities, role, first engagement)."""

    cells: Mapping[_Cell, tuple[float, float, int]] = field(default_factory=dict)
    _memo: dict[_Cell, tuple[float, float]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_stage_stats(cls, stage_stats: Mapping[str, Any] | None) -> ResponseRates:
        """The bundle's table. Rows counted before the table had episodes (per silence instead) count for every
        episode alike, so an older bundle still gives each deal its stage's and role's rate."""
        raw = (stage_stats or {}).get("_response_rates") or {}
        cells: dict[_Cell, tuple[float, float, int]] = {}
        for r in raw.get("rows") or []:
            for e in ([r["episode"]] if "episode" in r else EPISODES):
                key = (r["stage"], e, r["role"], bool(r.get("new", False)))
                n, a, d = cells.get(key, (0.0, 0.0, 0))
                cells[key] = (n + float(r["attempts"]), a + float(r["answered"]), d + int(r["deals"]))
        return cls(cells=cells)

    def _sum(self, stage: str | None, episode: str | None, role: str | None, new: bool | None
             ) -> tuple[float, float, int]:
        n = a = 0.0
        d = 0
        for (s, e, r, w), (x, y, k) in self.cells.items():
            if ((stage is None or s == stage) and (episode is None or e == episode) and (role is None or r == role)
                    and (new is None or w == new)):
                n, a, d = n + x, a + y, d + k
        return n, a, d

    def _cell(self, stage: str | None, episode: str, grp: str, new: bool) -> tuple[float, float]:
        """(rate, deals) of one episode's cell, shrunk toward the same episode and role over all stages."""
        key = (stage, episode, grp, new)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        n_all, a_all, _ = self._sum(None, episode, grp, new)
        if n_all == 0:
            n_all, a_all, _ = self._sum(None, None, grp, new)
        if n_all == 0:
            n_all, a_all, _ = self._sum(None, episode, None, None)
        base = (a_all + 1.0) / (n_all + 2.0)
        n, a, deals = self._sum(stage, episode, grp, new)
        out = ((a + PRIOR_ATTEMPTS * base) / (n + PRIOR_ATTEMPTS), float(deals))
        self._memo[key] = out
        return out

    def rate(self, stage: str | None, episodes: np.ndarray, role: str | None, new: bool = False) -> Response:
        """P(answered) for deals like this: the episode cells' rates weighed by the deal's episode probabilities
        (``episodes``, one row of :func:`~dealscore.models.episodes.episode_weights`).

        ``new``: the action needs a decision maker or champion who has not engaged in the deal yet.
        """
        grp = role_group(role)
        new = bool(new) and grp != "other"
        if not self.cells:
            return Response(UNKNOWN_RATE, 0.1, 0.6, 0)
        p = deals_w = 0.0
        for e, w in zip(EPISODES, np.asarray(episodes, dtype=float).tolist(), strict=True):
            if w > 0:
                q, d = self._cell(stage, e, grp, new)
                p, deals_w = p + w * q, deals_w + w * d
        deals = round(deals_w)
        # 80% interval of the Beta posterior over past *deals* (attempts of one deal are not independent)
        k = max(float(deals), 1.0) + PRIOR_ATTEMPTS
        sd = float(np.sqrt(p * (1 - p) / (k + 1)))
        return Response(float(p), max(0.0, p - 1.2816 * sd), min(1.0, p + 1.2816 * sd), deals)


def shrink(deals: int) -> float:
    """The factor an expected change is multiplied by: small when few similar past deals back it."""
    return deals / (deals + SHRINK_DEALS)


#: uncertainty of an action's estimated changes (estimates from past deals, not measured effects): a band of
#: ``MODEL_SPREAD`` times their weighted size plus ``MODEL_FLOOR_POINTS`` (a response valued at 0 may still be the
#: step that moves the deal), both shrunk like the expected change. Set to hold 80% on one simulated company (mixed
#: preset, 5,000 training deals, seed 5: the smallest floor in steps of 0.25 that does, 81%; 78% at 1.0) against the
#: intervention oracle; docs/scoring.md gives every preset
MODEL_SPREAD = 1.0
MODEL_FLOOR_POINTS = 1.5


def action_interval(r: Response, factor: float, if_responds: float, if_unanswered: float) -> tuple[float, float]:
    """80% interval of an expected change: the response rate's interval, widened by the changes' own uncertainty.

    The expected change is linear in the response rate, so its ends come from the
    rate's ends; the changes themselves are estimates from past deals, so a band of
    ``MODEL_SPREAD`` times their weighted size plus ``MODEL_FLOOR_POINTS`` is added
    on both sides (docs/scoring.md says how it was set and how often it held).
    """
    ends = [factor * (q * if_responds + (1.0 - q) * if_unanswered) for q in (r.low, r.high)]
    band = factor * (MODEL_SPREAD * (r.p * abs(if_responds) + (1.0 - r.p) * abs(if_unanswered)) + MODEL_FLOOR_POINTS)
    return float(min(ends) - band), float(max(ends) + band)
