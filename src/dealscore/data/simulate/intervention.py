"""What a rep's action does to a simulated deal: the intervention oracle.

The latent process (:mod:`dealscore.data.simulate.latent`) already contains the
reps' habitual work: its transitions are what deals do under the usual effort,
and the touchpoints it leaves follow the deal's engagement and fit (better deals
get more meetings and replies, so naive correlations between a touchpoint and
winning overstate its effect, as in real data). An **intervention** is one extra
action attempted *now*, beyond that habit. Its causal effect, documented in
docs/simulator.md, acts on the latent state:

1. The customer responds with probability ``p_respond``:
   ``sigmoid(logit(base[state]) + 0.8 · engagement) · reachable(role)``, where
   ``base`` is 0.60 for an active deal, 0.35 for a stalled one and 0.15 for a
   quiet one (0.08 once it has already revived), and ``reachable`` says whether
   the person the action needs exists at the buyer: the decision maker only when
   the buyer has decision-maker access (``dm_access``), a champion fully when
   there is one (else 0.25), a new stakeholder fully when the buying group has
   extra stakeholders (else 0.3), anyone else always.
2. An unanswered attempt changes nothing in the latent process.
3. A response moves the latent state, and the clock of the new state starts at 0:
   - a **quiet** deal revives: active in the same stage, one revival more;
   - a **stalled** deal resumes: active in the same stage;
   - an **active** deal whose action is the key step of its real stage advances to
     the next stage (won after negotiation). Key steps: any reply (prospecting),
     a meeting (qualification), the decision maker (discovery), a demo (solution),
     a proposal (proposal), the contract (negotiation);
   - any other response on an active deal refreshes it: active in the same stage
     with the clock back at 0 (time already spent in a state is what makes the
     slow exits, stall, silence and loss, more likely).

The true change is then exact, from the closed form of the win probability
(:func:`~dealscore.data.simulate.latent.win_probability`)::

    change_if_responds = P(win | new state, 0) − P(win | state now, τ)
    expected_change    = p_respond · change_if_responds     (+ 0 if unanswered)

Vectorised over any number of (deal, time, action) items; ``tests/data`` checks
the closed form against re-simulating the process from the new state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dealscore.data.simulate.config import ACTIVE, LOST, N_STAGES, QUIET, STALLED, WON
from dealscore.data.simulate.core import SimulatedCRM
from dealscore.data.simulate.latent import LatentLaw, win_probability
from dealscore.data.simulate.oracle import latent_state_at, load_truth

#: P(customer responds) at engagement 0, by latent state (quiet: first spell, after a revival).
RESPOND_BASE = {ACTIVE: 0.60, STALLED: 0.35, QUIET: 0.15}
RESPOND_QUIET_REVIVED = 0.08
RESPOND_ENGAGEMENT = 0.8
#: reachability when the person the action needs may not exist at the buyer
NO_CHAMPION_REACH = 0.25
NO_EXTRA_REACH = 0.3
#: the key step of each real stage: (activity types, contact role); None matches anything
KEY_STEPS: tuple[tuple[frozenset[str] | None, str | None], ...] = (
    (None, None),  # prospecting: any reply qualifies the lead
    (frozenset({"meeting"}), None),  # qualification: a first real meeting
    (None, "decision_maker"),  # discovery: the decision maker engaged
    (frozenset({"demo"}), None),  # solution: the demo
    (frozenset({"proposal"}), None),  # proposal: the proposal itself
    (frozenset({"contract"}), None),  # negotiation: the contract
)
EFFECTS = ("none", "revive", "resume", "advance", "refresh")


@dataclass(frozen=True)
class Intervention:
    """An action as the simulator sees it: the touch types it involves and the role it needs.

    ``types`` holds the rep's attempt and the customer's answer (e.g. a proposal
    sent and a call about it); ``role`` is the contact who must respond;
    ``new_contact`` asks for someone not yet involved (multi-threading).
    """

    types: frozenset[str]
    role: str | None = None
    new_contact: bool = False


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def respond_probability(kind: np.ndarray, rev: np.ndarray, engagement: np.ndarray, reach: np.ndarray) -> np.ndarray:
    """P(the customer responds to an attempt now) given the latent state (see module docstring)."""
    base = np.select([kind == ACTIVE, kind == STALLED, (kind == QUIET) & (rev == 0), kind == QUIET],
                     [RESPOND_BASE[ACTIVE], RESPOND_BASE[STALLED], RESPOND_BASE[QUIET], RESPOND_QUIET_REVIVED],
                     default=0.0)
    with np.errstate(divide="ignore"):
        logit = np.log(base) - np.log1p(-base)
    return np.where(base > 0, _sigmoid(logit + RESPOND_ENGAGEMENT * engagement), 0.0) * reach


def reachability(action: Intervention, dm_access: np.ndarray, champion: np.ndarray, extra: np.ndarray,
                 ) -> np.ndarray:
    """How likely the person the action needs exists at the buyer (1 = always)."""
    n = len(dm_access)
    if action.role == "decision_maker":
        return np.asarray(dm_access, dtype=float)
    if action.role == "champion":
        return np.where(np.asarray(champion) >= 1, 1.0, NO_CHAMPION_REACH)
    if action.new_contact:
        return np.where(np.asarray(extra) >= 1, 1.0, NO_EXTRA_REACH)
    return np.ones(n)


def is_key_step(action: Intervention, stage: np.ndarray) -> np.ndarray:
    """Whether the action is the key step of each deal's real stage (it then advances the deal)."""
    out = np.zeros(len(stage), dtype=bool)
    for j, (types, role) in enumerate(KEY_STEPS):
        ok = (types is None or bool(types & action.types)) and (role is None or action.role == role)
        out |= ok & (stage == j)
    return out


def next_state(action: Intervention, kind: np.ndarray, stage: np.ndarray, rev: np.ndarray,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The latent state after the customer responds: (kind, stage, revivals, effect code index)."""
    kind, stage, rev = (np.asarray(v).astype(np.int64) for v in (kind, stage, rev))
    live = (kind != WON) & (kind != LOST)
    key = is_key_step(action, stage)
    advance = live & (kind == ACTIVE) & key
    nk = np.where(live, ACTIVE, kind)
    ns = np.where(advance, stage + 1, stage)
    nk = np.where(advance & (ns >= N_STAGES), WON, nk)
    ns = np.minimum(ns, N_STAGES - 1)
    nr = np.where(live & (kind == QUIET), np.minimum(rev + 1, 1), rev)
    effect = np.select([~live, kind == QUIET, kind == STALLED, advance], [0, 1, 2, 3], default=4)
    return nk, ns, nr, effect


def intervention_effect(sim_or_truth_dir: SimulatedCRM | str, snapshots: pd.DataFrame,
                        actions: Sequence[Intervention]) -> pd.DataFrame:
    """The true effect of attempting ``actions[i]`` on snapshot row ``i`` ``(deal_id, as_of)`` now vs not.

    Returns one row per snapshot: ``p_respond``, ``change_if_responds`` and
    ``expected_change`` (probability points, the oracle's truth), the ``effect``
    a response has (none, revive, resume, advance, refresh), and the win
    probability before (``p_now``). Deals closed at ``as_of`` get effect "none".
    """
    if len(actions) != len(snapshots):
        raise ValueError(f"one action per snapshot: {len(actions)} actions for {len(snapshots)} snapshots")
    law, truth, state = _state(sim_or_truth_dir, snapshots)
    idx, kind, stage, rev, tau, ok = state
    n = len(snapshots)
    p_now = np.full(n, np.nan)
    p_now[ok] = win_probability(law, idx[ok], kind[ok], stage[ok], rev[ok], tau[ok])
    p_resp, change = np.zeros(n), np.zeros(n)
    effect = np.zeros(n, dtype=np.int64)
    eng = truth["engagement"].to_numpy(float)[idx]
    dm = truth["dm_access"].to_numpy(np.int64)[idx]
    champ = truth["champion"].to_numpy(np.int64)[idx]
    extra = truth["extra_contacts"].to_numpy(np.int64)[idx]
    # group the items by action: every step below is one array operation per distinct action
    for action in set(actions):
        rows = np.flatnonzero(np.array([a == action for a in actions]) & ok)
        if not len(rows):
            continue
        nk, ns, nr, eff = next_state(action, kind[rows], stage[rows], rev[rows])
        after = _after(law, idx[rows], nk, ns, nr)
        reach = reachability(action, dm[rows], champ[rows], extra[rows])
        live = eff > 0
        p_resp[rows] = np.where(live, respond_probability(kind[rows], rev[rows], eng[rows], reach), 0.0)
        change[rows] = np.where(live, 100.0 * (after - p_now[rows]), 0.0)
        effect[rows] = eff
    return pd.DataFrame({
        "deal_id": snapshots["deal_id"].to_numpy(), "as_of": snapshots["as_of"].to_numpy(),
        "p_now": p_now, "p_respond": p_resp, "change_if_responds": change,
        "expected_change": p_resp * change, "effect": np.asarray(EFFECTS, dtype=object)[effect],
    })


def _after(law: LatentLaw, idx: np.ndarray, kind: np.ndarray, stage: np.ndarray, rev: np.ndarray) -> np.ndarray:
    """Win probability of the new states, entered just now."""
    return win_probability(law, idx, kind, stage, rev, np.zeros(len(idx)))


def _state(sim_or_truth_dir: SimulatedCRM | str, snapshots: pd.DataFrame) -> tuple[LatentLaw, pd.DataFrame, tuple]:
    law, ids, origin, path, truth = load_truth(sim_or_truth_dir)
    return law, truth, latent_state_at(ids, origin, path, snapshots)
