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
probability of the destination state (a backward recursion over stages). Some
qualities are revealed only when the deal reaches a stage (the champion at
qualification, the buying group at discovery); before that neither the process
nor ``W`` uses them (``W`` averages over what the reveal may bring). Nothing that
happened earlier matters beyond the current state, so this is *the* oracle: no
model can beat it on average, which is what evaluations compare against.
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
class Qualities:
    """A deal's latent qualities: what the law of its process is built from.

    ``fit``, ``engagement``, ``skill`` (the owner's), ``segment``, ``competition``
    and ``speed`` are fixed when the deal is created. The champion level (0 none,
    1 weak, 2 strong) is revealed when the deal reaches qualification, the buying
    group (decision-maker access, extra stakeholders 0-2) when it reaches
    discovery: before that, neither the process nor the oracle depends on them.
    """

    fit: np.ndarray
    engagement: np.ndarray
    skill: np.ndarray
    segment: np.ndarray
    competition: np.ndarray
    speed: np.ndarray
    champion: np.ndarray
    dm_access: np.ndarray
    extra: np.ndarray


def base_quality(cfg: SimConfig, q: Qualities) -> np.ndarray:
    """z before anything is revealed: fit, buyer engagement, the owner's skill."""
    return cfg.w_fit * q.fit + cfg.w_engagement * q.engagement + cfg.w_skill * q.skill - cfg.z_center


def champion_probs(cfg: SimConfig, q: Qualities) -> np.ndarray:
    """(n, 3) P(champion level none / weak / strong): an ordered logit on engagement and fit."""
    eta = cfg.champion_engagement * q.engagement + cfg.champion_fit * q.fit + cfg.champion_offset
    p1 = _sigmoid(eta)
    p2 = _sigmoid(eta - cfg.champion_strong_gap)
    return np.stack([1.0 - p1, p1 - p2, p2], axis=1)


def dm_prob(cfg: SimConfig, q: Qualities, champion: np.ndarray) -> np.ndarray:
    """P(the decision maker engages) given the champion level."""
    return _sigmoid(cfg.dm_fit * q.fit + cfg.dm_champion * (champion >= 1) + cfg.dm_engagement * q.engagement
                    + cfg.dm_offset)


def extra_probs(cfg: SimConfig, q: Qualities, champion: np.ndarray) -> np.ndarray:
    """(n, 3) P(0, 1, 2+ extra stakeholders): Poisson, capped at 2; larger accounts involve more people."""
    lam = np.maximum(cfg.extra_base + cfg.extra_segment * q.segment + cfg.extra_champion * (champion >= 1)
                     + cfg.extra_fit * q.fit, 0.05)
    p0 = np.exp(-lam)
    p1 = lam * p0
    return np.stack([p0, p1, 1.0 - p0 - p1], axis=1)


def stage_z(cfg: SimConfig, q: Qualities, champion: np.ndarray, dm: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """(n, 6) the quality index each stage's transitions use (more of it is revealed as the deal advances)."""
    z0 = base_quality(cfg, q)
    z1 = z0 + cfg.w_champion * np.asarray(cfg.champion_values)[champion]
    z2 = z1 + cfg.w_dm_access * dm + cfg.w_breadth * extra
    return np.column_stack([z0, z1] + [z2] * (N_STAGES - 2))


def is_single(champion: np.ndarray, dm: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """Single-threaded: no champion, no decision maker, nobody else: one contact carries the deal."""
    return (champion == 0) & (dm == 0) & (extra == 0)


@dataclass(frozen=True)
class LatentLaw:
    """Per-deal transition probabilities, Weibull scales/shapes and win probabilities.

    Probability arrays are indexed ``[deal, stage, transition]``; the win
    probabilities ``wa``, ``ws``, ``wq`` (active, stalled, quiet) ``[deal, stage,
    revivals]`` hold what is known *in* that stage (qualities not yet revealed are
    averaged over), and ``wadv[deal, stage, revivals]`` is the value of advancing
    out of the stage, seen from inside it.
    """

    pa: np.ndarray  # (n, 6, 4) active: advance, stall, quiet, loss
    ps: np.ndarray  # (n, 6, 2) stalled: advance, quiet
    pr: np.ndarray  # (n, 6) quiet: P(revive) on the first quiet spell (0 afterwards)
    a_scale: np.ndarray  # (n, 6, 4) Weibull scales (days)
    s_scale: np.ndarray  # (n, 2)
    q_scale: np.ndarray  # (n, 2)
    a_shape: np.ndarray  # (4,)
    s_shape: np.ndarray  # (2,)
    q_shape: np.ndarray  # (2,)
    wa: np.ndarray  # (n, 6, 2)
    ws: np.ndarray  # (n, 6, 2)
    wq: np.ndarray  # (n, 6, 2)
    wadv: np.ndarray  # (n, 6, 2)


def _probs(cfg: SimConfig, z: np.ndarray, comp: np.ndarray, single: np.ndarray,
           stages: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transition probabilities for a (n, k) matrix of qualities of the given stages (default all six)."""
    stages = np.arange(N_STAGES) if stages is None else np.asarray(stages)
    with np.errstate(divide="ignore"):
        base = np.log(np.asarray(cfg.a_base))[stages]  # (k, 4); a zero probability is a transition that cannot happen
    logits = (np.asarray(cfg.z_stage_scale)[stages][None, :] * z)[:, :, None] * np.asarray(cfg.a_z)[None, None, :]
    logits += base[None]
    comp_on = (stages >= cfg.competition_from_stage).astype(float)
    logits += comp[:, None, None] * comp_on[None, :, None] * np.asarray(cfg.a_competition)[None, None, :]
    single_on = (stages >= 2).astype(float)
    logits += single[:, None, None] * single_on[None, :, None] * np.asarray(cfg.a_single_threaded)[None, None, :]
    pa = _softmax(logits)
    resume = _sigmoid(_logit(cfg.s_resume_base) + cfg.s_resume_z * z)
    ps = np.stack([resume, 1.0 - resume], axis=2)
    pr = _sigmoid(_logit(cfg.q_revive_base) + cfg.q_revive_z * z)
    return pa, ps, pr


def _stage_values(pa: np.ndarray, ps: np.ndarray, pr: np.ndarray, nxt: np.ndarray,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Win probability of active / stalled / quiet in one stage, given the value of advancing ``nxt`` (n, 2).

    Columns are revivals so far (0, 1); a quiet deal revives at most once.
    """
    wa, ws, wq = (np.zeros((len(pa), 2)) for _ in range(3))
    ws[:, 1] = ps[:, 0] * nxt[:, 1]
    wa[:, 1] = pa[:, 0] * nxt[:, 1] + pa[:, 1] * ws[:, 1]
    wq[:, 0] = pr * wa[:, 1]
    ws[:, 0] = ps[:, 0] * nxt[:, 0] + ps[:, 1] * wq[:, 0]
    wa[:, 0] = pa[:, 0] * nxt[:, 0] + pa[:, 1] * ws[:, 0] + pa[:, 2] * wq[:, 0]
    return wa, ws, wq


def build_law(cfg: SimConfig, q: Qualities) -> LatentLaw:
    """The latent law of each deal (vectorised over deals), with its exact win probabilities.

    The process itself uses the realised qualities stage by stage. The win
    probabilities of stages before a reveal average over what the reveal may
    bring (3 champion levels x 2 decision-maker outcomes x 3 group sizes), which
    is what makes them the true conditional probabilities at that time.
    """
    n = len(q.fit)
    comp = np.asarray(q.competition, dtype=float)
    champ, dm, extra = (np.asarray(v).astype(np.int64) for v in (q.champion, q.dm_access, q.extra))
    z_real = stage_z(cfg, q, champ, dm, extra)
    pa, ps, pr = _probs(cfg, z_real, comp, is_single(champ, dm, extra).astype(float))

    wa, ws, wq, wadv = (np.zeros((n, N_STAGES, 2)) for _ in range(4))
    ones = np.ones((n, 2))
    pc = champion_probs(cfg, q)
    late = np.arange(2, N_STAGES)  # stages that know the whole buying group
    w1 = np.zeros((n, 3, 2))  # value of entering qualification, per champion level
    for c in range(3):
        cv = np.full(n, c)
        pm1 = dm_prob(cfg, q, cv)
        pe = extra_probs(cfg, q, cv)
        nxt1 = np.zeros((n, 2))
        for m in range(2):
            for e in range(3):
                mv, ev = np.full(n, m), np.full(n, e)
                zv = stage_z(cfg, q, cv, mv, ev)[:, late]
                pav, psv, prv = _probs(cfg, zv, comp, is_single(cv, mv, ev).astype(float), late)
                real = (champ == c) & (dm == m) & (extra == e)
                nxt = ones
                for j in range(N_STAGES - 1, 1, -1):
                    a_, s_, q_ = _stage_values(pav[:, j - 2], psv[:, j - 2], prv[:, j - 2], nxt)
                    for arr, val in ((wa, a_), (ws, s_), (wq, q_), (wadv, nxt)):
                        arr[real, j] = val[real]
                    nxt = a_
                weight = (pm1 if m else 1.0 - pm1) * pe[:, e]
                nxt1 += weight[:, None] * nxt
        # qualification: the champion level is known, the buying group not yet (stage 1 does not use it)
        zero = np.zeros(n, dtype=np.int64)
        z1 = stage_z(cfg, q, cv, zero, zero)[:, 1:2]
        pa1, ps1, pr1 = _probs(cfg, z1, comp, np.zeros(n), np.array([1]))
        a_, s_, q_ = _stage_values(pa1[:, 0], ps1[:, 0], pr1[:, 0], nxt1)
        real = champ == c
        for arr, val in ((wa, a_), (ws, s_), (wq, q_), (wadv, nxt1)):
            arr[real, 1] = val[real]
        w1[:, c] = a_
    nxt0 = (pc[:, :, None] * w1).sum(axis=1)
    a_, s_, q_ = _stage_values(pa[:, 0], ps[:, 0], pr[:, 0], nxt0)
    wa[:, 0], ws[:, 0], wq[:, 0], wadv[:, 0] = a_, s_, q_, nxt0

    a_shape = np.asarray(cfg.a_shape, dtype=float)
    s_shape = np.asarray(cfg.s_shape, dtype=float)
    q_shape = np.asarray(cfg.q_shape, dtype=float)
    speed = np.asarray(q.speed, dtype=float)
    a_scale = np.asarray(cfg.a_median_days)[None] / LN2 ** (1.0 / a_shape)[None, None, :] * speed[:, None, None]
    s_scale = (np.asarray(cfg.s_median_days) / LN2 ** (1.0 / s_shape))[None, :] * speed[:, None]
    q_scale = (np.asarray(cfg.q_median_days) / LN2 ** (1.0 / q_shape))[None, :] * speed[:, None]
    return LatentLaw(pa, ps, pr, a_scale, s_scale, q_scale, a_shape, s_shape, q_shape, wa, ws, wq, wadv)


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
    a = kind == ACTIVE
    if a.any():
        ia, ja, ra = idx[a], j[a], rev[a]
        probs[a] = law.pa[ia, ja]
        scales[a] = law.a_scale[ia, ja]
        shapes[a] = law.a_shape[None, :]
        dest[a, 0] = law.wadv[ia, ja, ra]
        dest[a, 1] = law.ws[ia, ja, ra]
        dest[a, 2] = law.wq[ia, ja, ra]
    s = kind == STALLED
    if s.any():
        is_, js, rs = idx[s], j[s], rev[s]
        probs[s, :2] = law.ps[is_, js]
        scales[s, :2] = law.s_scale[is_]
        shapes[s, :2] = law.s_shape[None, :]
        dest[s, 0] = law.wadv[is_, js, rs]
        dest[s, 1] = law.wq[is_, js, rs]
    q = kind == QUIET
    if q.any():
        iq, jq, rq = idx[q], j[q], rev[q]
        revive = np.where(rq == 0, law.pr[iq, jq], 0.0)
        probs[q, 0], probs[q, 1] = revive, 1.0 - revive
        scales[q, :2] = law.q_scale[iq]
        shapes[q, :2] = law.q_shape[None, :]
        dest[q, 0] = np.where(rq == 0, law.wa[iq, jq, 1], 0.0)
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
