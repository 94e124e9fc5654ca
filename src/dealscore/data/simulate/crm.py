"""What reps type into the CRM: declared stages, amounts and expected close dates.

The declared stage is the real one seen through each rep's habits: recorded days
to weeks late, sometimes ahead of the evidence (optimism), sometimes not at all
(skipped stages), sometimes moved back when a deal stalls (regressions). The
expected close date starts optimistic and is pushed when it passes while the
deal is still open. Each stage-history row carries the amount and close date as
they stood then; ``deals`` holds the current values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dealscore.data.simulate.config import N_STAGES, QUIET, STALLED, SimConfig
from dealscore.data.simulate.latent import LatentPaths
from dealscore.data.simulate.population import Population

_SHIFT = np.int64(2) ** 40  # seconds: offsets deal keys so one searchsorted serves all deals


@dataclass
class CrmRecords:
    """Stage-history rows (times in days since the origin) and current deal values."""

    deal: np.ndarray
    t: np.ndarray
    recorded: np.ndarray
    stage: np.ndarray
    amount: np.ndarray
    close_date: np.ndarray  # days since origin, whole days
    is_push: np.ndarray  # row exists because the close date was pushed


def _lookup(key_deal: np.ndarray, key_t: np.ndarray, q_deal: np.ndarray, q_t: np.ndarray) -> np.ndarray:
    """Index of the last key row of the same deal at or before each query time (-1 if none).

    Keys must be sorted by (deal, t).
    """
    keys = key_deal.astype(np.int64) * _SHIFT + np.round(key_t * 86400.0).astype(np.int64)
    q_keys = np.asarray(q_deal).astype(np.int64) * _SHIFT + np.round(np.asarray(q_t) * 86400.0).astype(np.int64)
    pos = np.searchsorted(keys, q_keys, side="right") - 1
    ok = (pos >= 0) & (key_deal[np.maximum(pos, 0)] == q_deal)
    return np.where(ok, pos, -1)


def _sec(t: np.ndarray) -> np.ndarray:
    return np.round(t * 86400.0) / 86400.0


def declared_stages(cfg: SimConfig, pop: Population, paths: LatentPaths, T: np.ndarray,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Declared stage changes (deal, time, stage), sorted, consecutive repeats removed."""
    n = len(pop.created)
    reps = pop.reps
    rep = pop.rep
    closed = paths.closed
    lag_med = reps["lag_median_days"].to_numpy()[rep]
    optimism = reps["optimism"].to_numpy()[rep]
    skip = reps["skip"].to_numpy()[rep]
    regress = reps["regress"].to_numpy()[rep]
    start_q = reps["start_qualified"].to_numpy()[rep]

    first = np.where((pop.start_stage == 0) & (rng.random(n) < start_q), 1, pop.start_stage)
    lag = lag_med[:, None] * np.exp(0.7 * rng.standard_normal((n, N_STAGES)))
    R = T + lag  # regular record: some time after the evidence
    # optimism: the next stage is typed in soon after this one, before its evidence exists
    typical = np.asarray(cfg.a_median_days)[:, 0] * np.asarray(cfg.segment_speed)[pop.segment][:, None]
    rec_prev = np.where(np.isfinite(R), R, np.inf)
    rec_prev[np.arange(n), pop.start_stage] = pop.created
    opt_t = np.full((n, N_STAGES), np.inf)
    opt_t[:, 1:] = rec_prev[:, :-1] + rng.random((n, N_STAGES - 1)) * 0.6 * typical[:, :-1]
    optimistic = rng.random((n, N_STAGES)) < optimism[:, None]
    typed_at = np.where(optimistic, np.minimum(R, opt_t), R)
    typed_at[:, : 1] = np.inf
    typed_at = np.where(np.arange(N_STAGES)[None, :] <= first[:, None], np.inf, typed_at)
    typed_at = np.where(rng.random((n, N_STAGES)) < skip[:, None], np.inf, typed_at)
    # a stage recorded after a later one was already recorded never gets typed in
    suffix_min = np.minimum.accumulate(typed_at[:, ::-1], axis=1)[:, ::-1]
    later_min = np.concatenate([suffix_min[:, 1:], np.full((n, 1), np.inf)], axis=1)
    typed_at = np.where(typed_at < later_min, typed_at, np.inf)
    typed_at = np.where(typed_at < closed[:, None], typed_at, np.inf)

    ev_d = [np.arange(n)]
    ev_t = [pop.created]
    ev_s = [first]
    dd, jj = np.nonzero(np.isfinite(typed_at))
    ev_d.append(dd)
    ev_t.append(_sec(typed_at[dd, jj]))
    ev_s.append(jj)
    deal, t, stage = (np.concatenate(x) for x in (ev_d, ev_t, ev_s))
    order = np.lexsort((stage, t, deal))
    deal, t, stage = deal[order], t[order], stage[order]

    # regressions: when a deal stalls or goes quiet while declared ahead of reality, some reps move it back
    ep = np.isin(paths.kind, (STALLED, QUIET))
    e_deal, e_t, e_stage = paths.deal[ep], paths.start[ep], paths.stage[ep]
    pos = _lookup(deal, t, e_deal, e_t)
    declared_then = np.where(pos >= 0, stage[np.maximum(pos, 0)], 0)
    back_t = _sec(e_t + lag_med[e_deal] * np.exp(0.5 * rng.standard_normal(len(e_deal))))
    back = (declared_then > e_stage) & (rng.random(len(e_deal)) < regress[e_deal]) & (back_t < closed[e_deal])
    r_deal, r_t, r_stage = e_deal[back], back_t[back], e_stage[back]
    # ... and type the real stage again once the deal moves on
    nxt = np.minimum(r_stage + 1, N_STAGES - 1)
    re_t = np.maximum(T[r_deal, nxt], r_t) + lag_med[r_deal] * np.exp(0.5 * rng.standard_normal(len(r_deal)))
    re = (r_stage + 1 < N_STAGES) & np.isfinite(T[r_deal, nxt]) & (re_t < closed[r_deal])
    deal = np.concatenate([deal, r_deal, r_deal[re]])
    t = np.concatenate([t, r_t, _sec(re_t[re])])
    stage = np.concatenate([stage, r_stage, nxt[re]])
    order = np.lexsort((stage, t, deal))
    deal, t, stage = deal[order], t[order], stage[order]
    same_deal = np.r_[False, deal[1:] == deal[:-1]]
    repeat = same_deal & np.r_[False, stage[1:] == stage[:-1]]
    return deal[~repeat], t[~repeat], stage[~repeat]


def crm_records(cfg: SimConfig, pop: Population, paths: LatentPaths, T: np.ndarray,
                rng: np.random.Generator) -> CrmRecords:
    """Declared stage rows plus close-date pushes, each with the amount and close date as recorded then."""
    n = len(pop.created)
    closed = paths.closed
    s_deal, s_t, s_stage = declared_stages(cfg, pop, paths, T, rng)
    rep = pop.rep
    seg_speed = np.asarray(cfg.segment_speed)[pop.segment]

    # expected close date: optimistic at creation, pushed (a few days late) each time it passes
    cycle = np.asarray(cfg.a_median_days)[:, 0].sum() * seg_speed
    est = pop.reps["close_estimate"].to_numpy()[rep]
    ecd = np.ceil(pop.created + est * cycle * np.exp(0.2 * rng.standard_normal(n)))
    p_deal, p_t, p_ecd = [np.arange(n)], [pop.created], [ecd]
    cur, active = ecd.copy(), np.arange(n)
    lag_med = pop.reps["lag_median_days"].to_numpy()[rep]
    for _ in range(60):
        push_t = cur[active] + lag_med[active] * np.exp(0.5 * rng.standard_normal(len(active)))
        go = push_t < closed[active]
        active, push_t = active[go], _sec(push_t[go])
        if len(active) == 0:
            break
        new = np.ceil(push_t + rng.uniform(14.0, 45.0, len(active)) * seg_speed[active])
        cur[active] = new
        p_deal.append(active)
        p_t.append(push_t)
        p_ecd.append(new)
    pd_, pt_, pe_ = (np.concatenate(x) for x in (p_deal, p_t, p_ecd))
    o = np.lexsort((pt_, pd_))
    pd_, pt_, pe_ = pd_[o], pt_[o], pe_[o]

    # amount: the quote at proposal, a discount in negotiation (more under competition)
    quote = np.round(pop.amount0 * rng.uniform(0.85, 1.25, n), -2)
    discount = rng.uniform(0.0, 0.06, n) + 0.05 * pop.q.competition
    a_deal = np.concatenate([np.arange(n), s_deal[s_stage == 4], s_deal[s_stage == 5]])
    a_t = np.concatenate([pop.created, s_t[s_stage == 4], s_t[s_stage == 5]])
    a_kind = np.concatenate([np.zeros(n, np.int8), np.ones((s_stage == 4).sum(), np.int8),
                             np.full((s_stage == 5).sum(), 2, np.int8)])
    o = np.lexsort((a_kind, a_t, a_deal))
    a_deal, a_t, a_kind = a_deal[o], a_t[o], a_kind[o]
    # the amount after each change: quote once a proposal is declared, discounted once negotiation is
    seen_prop = np.zeros(len(a_deal), dtype=bool)
    seen_neg = np.zeros(len(a_deal), dtype=bool)
    starts = np.r_[True, a_deal[1:] != a_deal[:-1]]
    grp = np.cumsum(starts) - 1
    for kind, arr in ((1, seen_prop), (2, seen_neg)):
        hit = (a_kind == kind).astype(np.int64)
        c = np.cumsum(hit)
        base = (c - hit)[starts][grp]
        arr[:] = (c - base) > 0
    a_val = np.where(seen_prop | seen_neg, quote[a_deal], pop.amount0[a_deal])
    a_val = np.where(seen_neg, np.round(a_val * (1.0 - discount[a_deal]), -2), a_val)

    # merge: stage rows and push rows, each with the values current at its time
    is_push = np.r_[np.zeros(len(s_deal), bool), np.ones(len(pd_) - n, bool)]
    push_rows = np.r_[False, pd_[1:] == pd_[:-1]]  # drop the creation entries (already a stage row)
    deal = np.concatenate([s_deal, pd_[push_rows]])
    t = np.concatenate([s_t, pt_[push_rows]])
    pos = _lookup(s_deal, s_t, deal, t)
    stage = s_stage[np.maximum(pos, 0)]
    order = np.lexsort((is_push, t, deal))
    deal, t, stage, is_push = deal[order], t[order], stage[order], is_push[order]
    close_date = pe_[_lookup(pd_, pt_, deal, t)]
    amount = a_val[_lookup(a_deal, a_t, deal, t)]
    # some changes are typed in days after the date they are entered with (never the creation row)
    first_row = np.r_[True, deal[1:] != deal[:-1]]
    backdated = ~first_row & (rng.random(len(deal)) < cfg.backdate_prob)
    recorded = np.where(backdated, _sec(t + rng.uniform(0.5, 6.0, len(deal))), np.nan)
    return CrmRecords(deal, t, recorded, stage, amount, close_date, is_push)
