"""The latent real-stage process and its exact win probability.

Each deal moves through the six real stages as a semi-Markov process over
latent states: *active* in stage j, *stalled* in stage j, *quiet* in stage j
(going dark, heading for a loss), and the absorbing *won* / *lost*. On entering a
state the deal's next transition is drawn from probabilities that depend on its
latent qualities (the quality index ``z``, competition, single-threading), and
the time to it from a Weibull law whose scale depends on the transition, the
stage and the deal's speed. A quiet deal may revive once.

Because the transition is drawn on entry and the time given the transition, the
true win probability at any moment follows in closed form from the current
state, the time already spent in it and the deal's latent qualities:

    P(win | state, tau) = sum_x pi_x S_x(tau) W(dest_x) / sum_x pi_x S_x(tau)

where ``S_x`` is the Weibull survival of transition x and ``W`` the absorption
probability of the destination state (a backward recursion over stages). Nothing
that happened earlier matters beyond the current state, so this is *the* oracle:
no model can beat it on average, which is what evaluations compare against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dealscore.data.simulate.config import ACTIVE, LOST, N_STAGES, QUIET, STALLED, WON, SimConfig

MIN_GAP_DAYS = 1.0 / 24.0  # every latent state lasts at least an hour (part of the law, so the oracle stays exact)
LN2 = float(np.log(2.0))


def _softmax(logits: np.ndarray) -> np.ndarray:
    m = logits.max(axis=-1, keepdims=True)
    e = np.exp(logits - m)
    return e / e.sum(axis=-1, keepdims=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: float) -> float:
    return float(np.log(p / (1.0 - p)))


@dataclass(frozen=True)
class LatentLaw:
    """Per-deal transition probabilities, Weibull scales/shapes and absorption (win) probabilities.

    Arrays are indexed ``[deal, stage, transition]`` (and ``[deal, stage, revivals]``
    for the win probabilities ``wa``, ``ws``, ``wq``; ``wa[:, 6]`` is 1 = won).
    """

    pa: np.ndarray  # (n, 6, 4) active: advance, stall, quiet, loss
    ps: np.ndarray  # (n, 6, 2) stalled: advance, quiet
    pq: np.ndarray  # (n, 2, 2) quiet by revivals so far: revive, loss
    a_scale: np.ndarray  # (n, 6, 4) Weibull scales (days)
    s_scale: np.ndarray  # (n, 2)
    q_scale: np.ndarray  # (n, 2)
    a_shape: np.ndarray  # (4,)
    s_shape: np.ndarray  # (2,)
    q_shape: np.ndarray  # (2,)
    wa: np.ndarray  # (n, 7, 2)
    ws: np.ndarray  # (n, 6, 2)
    wq: np.ndarray  # (n, 6, 2)


def build_law(cfg: SimConfig, z: np.ndarray, competition: np.ndarray, single: np.ndarray,
              speed: np.ndarray) -> LatentLaw:
    """The full latent law of each deal from its latent qualities (vectorised over deals)."""
    z = np.asarray(z, dtype=float)
    comp = np.asarray(competition, dtype=float)
    single = np.asarray(single, dtype=float)
    speed = np.asarray(speed, dtype=float)
    n = len(z)
    stages = np.arange(N_STAGES)
    with np.errstate(divide="ignore"):
        base = np.log(np.asarray(cfg.a_base))  # (6, 4); a zero probability is a transition that cannot happen
    zs = np.asarray(cfg.z_stage_scale)[None, :, None] * z[:, None, None] * np.asarray(cfg.a_z)[None, None, :]
    comp_on = (stages >= cfg.competition_from_stage).astype(float)
    cs = comp[:, None, None] * comp_on[None, :, None] * np.asarray(cfg.a_competition)[None, None, :]
    single_on = (stages >= 2).astype(float)
    ss = single[:, None, None] * single_on[None, :, None] * np.asarray(cfg.a_single_threaded)[None, None, :]
    pa = _softmax(base[None] + zs + cs + ss)

    resume = _sigmoid(_logit(cfg.s_resume_base) + cfg.s_resume_z * z)
    ps = np.empty((n, N_STAGES, 2))
    ps[:, :, 0] = resume[:, None]
    ps[:, :, 1] = 1.0 - resume[:, None]
    revive = _sigmoid(_logit(cfg.q_revive_base) + cfg.q_revive_z * z)
    pq = np.zeros((n, 2, 2))
    pq[:, 0, 0] = revive
    pq[:, 0, 1] = 1.0 - revive
    pq[:, 1, 1] = 1.0

    a_shape = np.asarray(cfg.a_shape, dtype=float)
    s_shape = np.asarray(cfg.s_shape, dtype=float)
    q_shape = np.asarray(cfg.q_shape, dtype=float)
    a_scale = np.asarray(cfg.a_median_days)[None] / LN2 ** (1.0 / a_shape)[None, None, :] * speed[:, None, None]
    s_scale = (np.asarray(cfg.s_median_days) / LN2 ** (1.0 / s_shape))[None, :] * speed[:, None]
    q_scale = (np.asarray(cfg.q_median_days) / LN2 ** (1.0 / q_shape))[None, :] * speed[:, None]

    wa = np.zeros((n, N_STAGES + 1, 2))
    ws = np.zeros((n, N_STAGES, 2))
    wq = np.zeros((n, N_STAGES, 2))
    wa[:, N_STAGES, :] = 1.0
    for rev in (1, 0):
        for j in range(N_STAGES - 1, -1, -1):
            wq[:, j, rev] = pq[:, rev, 0] * (wa[:, j, rev + 1] if rev == 0 else 0.0)
            ws[:, j, rev] = ps[:, j, 0] * wa[:, j + 1, rev] + ps[:, j, 1] * wq[:, j, rev]
            wa[:, j, rev] = pa[:, j, 0] * wa[:, j + 1, rev] + pa[:, j, 1] * ws[:, j, rev] + pa[:, j, 2] * wq[:, j, rev]
    return LatentLaw(pa, ps, pq, a_scale, s_scale, q_scale, a_shape, s_shape, q_shape, wa, ws, wq)


def _state_arrays(law: LatentLaw, idx: np.ndarray, kind: np.ndarray, stage: np.ndarray, rev: np.ndarray,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For deals in given non-terminal states: (probs, scales, shapes, destination win probs), each (m, 4).

    Unused transition columns get probability 0.
    """
    m = len(idx)
    probs = np.zeros((m, 4))
    scales = np.ones((m, 4))
    shapes = np.ones((m, 4))
    dest = np.zeros((m, 4))
    j = stage
    nxt = np.minimum(j + 1, N_STAGES)
    a = kind == ACTIVE
    if a.any():
        ia, ja, ra = idx[a], j[a], rev[a]
        probs[a] = law.pa[ia, ja]
        scales[a] = law.a_scale[ia, ja]
        shapes[a] = law.a_shape[None, :]
        dest[a, 0] = law.wa[ia, nxt[a], ra]
        dest[a, 1] = law.ws[ia, ja, ra]
        dest[a, 2] = law.wq[ia, ja, ra]
    s = kind == STALLED
    if s.any():
        is_, js, rs = idx[s], j[s], rev[s]
        probs[s, :2] = law.ps[is_, js]
        scales[s, :2] = law.s_scale[is_]
        shapes[s, :2] = law.s_shape[None, :]
        dest[s, 0] = law.wa[is_, nxt[s], rs]
        dest[s, 1] = law.wq[is_, js, rs]
    q = kind == QUIET
    if q.any():
        iq, jq, rq = idx[q], j[q], rev[q]
        probs[q, :2] = law.pq[iq, np.minimum(rq, 1)]
        scales[q, :2] = law.q_scale[iq]
        shapes[q, :2] = law.q_shape[None, :]
        dest[q, 0] = np.where(rq == 0, law.wa[iq, jq, np.minimum(rq + 1, 1)], 0.0)
    return probs, scales, shapes, dest


def win_probability(law: LatentLaw, idx: np.ndarray, kind: np.ndarray, stage: np.ndarray, rev: np.ndarray,
                    tau_days: np.ndarray) -> np.ndarray:
    """Exact P(win) of deals in latent states (kind, stage, revivals) entered ``tau_days`` ago."""
    idx = np.asarray(idx)
    kind = np.asarray(kind)
    out = np.where(kind == WON, 1.0, 0.0)
    live = (kind != WON) & (kind != LOST)
    if not live.any():
        return out
    probs, scales, shapes, dest = _state_arrays(law, idx[live], kind[live], np.asarray(stage)[live],
                                                np.asarray(rev)[live])
    tau = np.maximum(np.asarray(tau_days, dtype=float)[live] - MIN_GAP_DAYS, 0.0)
    with np.errstate(divide="ignore"):
        logw = np.log(probs) - (tau[:, None] / scales) ** shapes
    logw -= logw.max(axis=1, keepdims=True)
    w = np.exp(logw)
    out[live] = (w * dest).sum(axis=1) / w.sum(axis=1)
    return out


@dataclass(frozen=True)
class LatentPaths:
    """Simulated latent episodes, long format (one row per state entered, terminal included)."""

    deal: np.ndarray  # deal index
    kind: np.ndarray
    stage: np.ndarray
    revivals: np.ndarray
    start: np.ndarray  # days since the simulation origin
    end: np.ndarray  # start of the next state (= start for terminal rows)
    won: np.ndarray  # per deal
    closed: np.ndarray  # per deal: time of absorption


def simulate_paths(law: LatentLaw, rng: np.random.Generator, start_stage: np.ndarray,
                   created: np.ndarray) -> LatentPaths:
    """Run every deal's latent process to absorption, one vectorised step per transition."""
    n = len(created)
    kind = np.full(n, ACTIVE)
    stage = np.asarray(start_stage).astype(np.int64).copy()
    rev = np.zeros(n, dtype=np.int64)
    t = np.asarray(created, dtype=float).copy()
    alive = np.arange(n)
    rec: list[tuple[np.ndarray, ...]] = []
    won = np.zeros(n, dtype=bool)
    closed = np.zeros(n)
    while len(alive):
        k, j, r = kind[alive], stage[alive], rev[alive]
        probs, scales, shapes, _ = _state_arrays(law, alive, k, j, r)
        u = rng.random(len(alive))
        cum = np.cumsum(probs, axis=1)
        x = np.minimum((u[:, None] > cum).sum(axis=1), 3)
        x = np.where(probs[np.arange(len(alive)), x] > 0, x, np.argmax(probs, axis=1))
        lam = scales[np.arange(len(alive)), x]
        shp = shapes[np.arange(len(alive)), x]
        e = rng.standard_exponential(len(alive))
        dur = MIN_GAP_DAYS + lam * e ** (1.0 / shp)
        t0 = t[alive]
        t1 = np.round((t0 + dur) * 86400.0) / 86400.0
        rec.append((alive, k, j, r, t0, t1))
        # next state
        nk, nj, nr = k.copy(), j.copy(), r.copy()
        adv = ((k == ACTIVE) | (k == STALLED)) & (x == 0)
        nj = np.where(adv, j + 1, nj)
        nk = np.where(adv, np.where(j + 1 >= N_STAGES, WON, ACTIVE), nk)
        nk = np.where((k == ACTIVE) & (x == 1), STALLED, nk)
        nk = np.where(((k == ACTIVE) & (x == 2)) | ((k == STALLED) & (x == 1)), QUIET, nk)
        nk = np.where(((k == ACTIVE) & (x == 3)) | ((k == QUIET) & (x == 1)), LOST, nk)
        revive = (k == QUIET) & (x == 0)
        nk = np.where(revive, ACTIVE, nk)
        nr = np.where(revive, r + 1, nr)
        kind[alive], stage[alive], rev[alive], t[alive] = nk, np.minimum(nj, N_STAGES - 1), nr, t1
        done = (nk == WON) | (nk == LOST)
        if done.any():
            d = alive[done]
            won[d] = nk[done] == WON
            closed[d] = t1[done]
            rec.append((d, nk[done], np.minimum(nj[done], N_STAGES - 1), nr[done], t1[done], t1[done]))
        alive = alive[~done]
    cols = [np.concatenate([r[i] for r in rec]) for i in range(6)]
    # every state lasts at least an hour, so (deal, start) orders the rows; terminal kinds last on ties anyway
    order = np.lexsort((cols[1] >= WON, cols[4], cols[0]))
    deal, kk, jj, rr, st, en = (c[order] for c in cols)
    return LatentPaths(deal, kk, jj, rr, st, en, won, closed)
