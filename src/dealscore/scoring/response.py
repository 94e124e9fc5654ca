"""P(the customer takes up an action | deals like this one now), from the training slice's outreach.

``bundle.stage_stats["_response_rates"]`` (learned by
:func:`dealscore.training.response_rates.learn_response_rates`) counts attempts
and answers per (declared stage, silence bucket, role group). A cell with few
attempts borrows from the broader one: the estimate is a Beta posterior mean
with ``PRIOR_ATTEMPTS`` pseudo-attempts at the rate of the same stage and role
over all silences (which itself leans on the role's overall rate). ``deals`` is
how many past deals the cell rests on; the action's expected change is shrunk
toward 0 by ``deals / (deals + SHRINK_DEALS)`` so that thin evidence promises little.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dealscore.playbook import SILENCE_BUCKETS, role_group, silence_bucket

PRIOR_ATTEMPTS = 10.0
SHRINK_DEALS = 10.0
#: used when the bundle holds no response table (trained before it existed): 1 in 3, resting on nothing
UNKNOWN_RATE = 1.0 / 3.0


@dataclass(frozen=True)
class Response:
    """The chance an attempt is taken up, its 80% credible interval and the deals it rests on."""

    p: float
    low: float
    high: float
    deals: int


@dataclass
class ResponseRates:
    """Lookup of :class:`Response` by (stage, days since the customer's last inbound touch, role)."""

    cells: Mapping[tuple[str, str, str, bool], tuple[float, float, int]] = field(default_factory=dict)
    _memo: dict[tuple[str | None, int, str, bool], Response] = field(default_factory=dict, repr=False)

    @classmethod
    def from_stage_stats(cls, stage_stats: Mapping[str, Any] | None) -> ResponseRates:
        raw = (stage_stats or {}).get("_response_rates") or {}
        cells = {(r["stage"], r["silence"], r["role"], bool(r.get("new", False))):
                 (float(r["attempts"]), float(r["answered"]), int(r["deals"])) for r in raw.get("rows") or []}
        return cls(cells=cells)

    def _sum(self, stage: str | None, silence: str | None, role: str | None, new: bool | None,
             ) -> tuple[float, float, int]:
        n = a = 0.0
        d = 0
        for (s, b, r, w), (x, y, k) in self.cells.items():
            if ((stage is None or s == stage) and (silence is None or b == silence) and (role is None or r == role)
                    and (new is None or w == new)):
                n, a, d = n + x, a + y, d + k
        return n, a, d

    def lookup(self, stage: str | None, days_since_inbound: float, role: str | None, new: bool = False) -> Response:
        """P(answered) for deals like this, shrunk toward the broader cells when this one is thin.

        ``new``: the action needs a decision maker or champion who has not engaged in the deal yet.
        """
        return self.rate(stage, int(silence_bucket(np.array([days_since_inbound]))[0]), role, new)

    def rate(self, stage: str | None, bucket: int, role: str | None, new: bool = False) -> Response:
        """:meth:`lookup` with the silence bucket already known (``silence_bucket`` of a whole block at once)."""
        grp = role_group(role)
        new = bool(new) and grp != "other"
        key = (stage, bucket, grp, new)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        if not self.cells:
            out = Response(UNKNOWN_RATE, 0.1, 0.6, 0)
        else:
            silence = SILENCE_BUCKETS[bucket]
            n_all, a_all, _ = self._sum(None, silence, grp, new)
            if n_all == 0:
                n_all, a_all, _ = self._sum(None, None, grp, new)
            if n_all == 0:
                n_all, a_all, _ = self._sum(None, silence, None, None)
            base = (a_all + 1.0) / (n_all + 2.0)
            n, a, deals = self._sum(stage, silence, grp, new)
            p = (a + PRIOR_ATTEMPTS * base) / (n + PRIOR_ATTEMPTS)
            # 80% interval of the Beta posterior over past *deals* (attempts of one deal are not independent)
            k = max(float(deals), 1.0) + PRIOR_ATTEMPTS
            sd = float(np.sqrt(p * (1 - p) / (k + 1)))
            out = Response(float(p), max(0.0, p - 1.2816 * sd), min(1.0, p + 1.2816 * sd), deals)
        self._memo[key] = out
        return out


def shrink(deals: int) -> float:
    """The factor an expected change is multiplied by: small when few similar past deals back it."""
    return deals / (deals + SHRINK_DEALS)


#: uncertainty of an action's estimated changes (estimates from past deals, not measured effects): a band of
#: ``MODEL_SPREAD`` times their weighted size plus ``MODEL_FLOOR_POINTS`` (a response valued at 0 may still be the
#: step that moves the deal), both shrunk like the expected change. Set to hold 80% on one simulated company (mixed
#: preset, 5,000 training deals, seed 5: 79%) against the intervention oracle; docs/scoring.md gives every preset
MODEL_SPREAD = 1.0
MODEL_FLOOR_POINTS = 1.0


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
