"""Touchpoints produced by the real (latent) state of each deal.

Every latent episode emits touchpoints at rates set by its state and stage:
outreach while prospecting (no replies: that is what prospecting means), replies,
calls and meetings once the buyer engages, demos, proposals and contracts in
their stages, a thin trickle while stalled, and unanswered follow-ups while the
deal goes quiet. Entering a real stage comes with its defining evidence (first
reply, discovery meeting with several people, demo, proposal, contract). Who
takes part depends on the buying group: decision maker and champion appear only
if the deal has them, single-threaded deals talk to one person.

Everything is vectorised over episodes and touches; there is no per-activity
Python work.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dealscore.data.simulate.config import (
    ACTIVE,
    LOST,
    N_SLOTS,
    QUIET,
    SLOT_CHAMPION,
    SLOT_DM,
    SLOT_INFLUENCER,
    SLOT_LEAD,
    SLOT_PROCUREMENT,
    SLOT_USER,
    STALLED,
    WON,
    SimConfig,
)
from dealscore.data.simulate.latent import LatentPaths
from dealscore.data.simulate.population import Population, work_hours

TYPES: tuple[str, ...] = ("email", "call", "meeting", "demo", "proposal", "contract", "note")
EMAIL, CALL, MEETING, DEMO, PROPOSAL, CONTRACT, NOTE = range(len(TYPES))
DIRECTIONS: tuple[str | None, ...] = (None, "inbound", "outbound")
NODIR, INBOUND, OUTBOUND = 0, 1, 2
MANUAL_TYPES = (CALL, MEETING, DEMO, NOTE)  # logged by hand; e-mails, proposals and contracts are synced

# who a touch of each channel involves (lead, decision maker, champion, influencer, user, procurement)
_W_OUT = (1.0, 0.5, 0.8, 0.4, 0.3, 0.4)
_W_IN = (1.0, 0.5, 1.4, 0.5, 0.4, 0.5)
_W_MEET = (1.0, 0.9, 1.0, 0.7, 0.6, 0.3)
_W_DEMO = (1.0, 0.5, 1.0, 0.8, 1.0, 0.0)
_W_PAPER = (0.3, 1.0, 0.6, 0.0, 0.0, 1.0)


@dataclass
class Touches:
    """Activities as parallel arrays (times in days since the origin; ``recorded`` NaN when equal)."""

    deal: np.ndarray
    t: np.ndarray
    type: np.ndarray
    direction: np.ndarray
    slot: np.ndarray  # -1 = no contact
    recorded: np.ndarray


def first_entries(paths: LatentPaths, n_deals: int, n_stages: int) -> np.ndarray:
    """(n_deals, n_stages) time each real stage was first entered (inf if never)."""
    T = np.full((n_deals, n_stages), np.inf)
    live = (paths.kind != WON) & (paths.kind != LOST)
    np.minimum.at(T, (paths.deal[live], paths.stage[live]), paths.start[live])
    return T


def join_times(pop: Population, T: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n_deals, 6) when each member of the buying group starts taking part (inf = never)."""
    n = len(pop.created)
    q = pop.q
    J = np.full((n, N_SLOTS), np.inf)
    J[:, SLOT_LEAD] = pop.created
    J[:, SLOT_DM] = np.where(q.dm_access == 1, T[:, 2] + rng.uniform(0, 3, n), np.inf)
    late_dm = (q.dm_access == 0) & (rng.random(n) < 0.4)  # a signer shows up for the contract
    J[:, SLOT_DM] = np.where(late_dm, T[:, 5] + rng.uniform(0, 4, n), J[:, SLOT_DM])
    J[:, SLOT_CHAMPION] = np.where(q.champion >= 1, T[:, 1] + rng.uniform(0, 3, n), np.inf)
    J[:, SLOT_INFLUENCER] = np.where(q.extra >= 1, T[:, 2] + rng.uniform(0, 7, n), np.inf)
    J[:, SLOT_USER] = np.where(q.extra >= 2, T[:, 3] + rng.uniform(0, 5, n), np.inf)
    J[:, SLOT_PROCUREMENT] = np.where((q.segment >= 1) & (rng.random(n) < 0.7), T[:, 5] + rng.uniform(0, 5, n),
                                      np.inf)
    return J


def _pick_slots(rng: np.random.Generator, deal: np.ndarray, t: np.ndarray, J: np.ndarray, weights: tuple[float, ...],
                champ_level: np.ndarray) -> np.ndarray:
    w = np.broadcast_to(np.asarray(weights), (len(deal), N_SLOTS)).copy()
    w[:, SLOT_CHAMPION] *= 0.5 + 0.5 * champ_level[deal]
    w *= J[deal] <= t[:, None]
    w[:, SLOT_LEAD] += 1e-9  # the lead is always reachable
    cum = np.cumsum(w, axis=1)
    u = rng.random(len(deal)) * cum[:, -1]
    return np.minimum((u[:, None] > cum).sum(axis=1), N_SLOTS - 1)


class _Builder:
    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []

    def add(self, deal: np.ndarray, t: np.ndarray, typ: int, direction: int, slot: np.ndarray | int) -> None:
        m = len(deal)
        if m == 0:
            return
        self.parts.append((deal, t, np.full(m, typ, np.int8), np.full(m, direction, np.int8),
                           np.broadcast_to(np.asarray(slot, dtype=np.int8), (m,)).copy()))

    def concat(self) -> tuple[np.ndarray, ...]:
        return tuple(np.concatenate([p[i] for p in self.parts]) for i in range(5))


def generate_touches(cfg: SimConfig, pop: Population, paths: LatentPaths, T: np.ndarray, J: np.ndarray,
                     rng: np.random.Generator, origin_weekday: int) -> Touches:
    """All touchpoints of all deals over their whole (latent) life."""
    live = (paths.kind != WON) & (paths.kind != LOST)
    e_deal, e_kind, e_stage = paths.deal[live], paths.kind[live], paths.stage[live]
    e_start, e_end = paths.start[live], paths.end[live]
    dur = e_end - e_start
    # engaged buyers (and champions) write and meet more; slow, large deals spread their touches thinner
    # (the champion only counts once revealed, from qualification on)
    tempo = pop.q.speed ** -cfg.rate_speed_exponent
    em = np.exp(cfg.engagement_rate_slope * pop.q.engagement) * tempo
    pace = pop.reps["pace"].to_numpy()[pop.rep] * tempo
    champ_boost = np.where(e_stage >= 1, 1.0 + 0.25 * pop.q.champion[e_deal], 1.0)
    em_e = np.minimum(em[e_deal] * champ_boost, cfg.engagement_rate_cap)
    pace_e = pace[e_deal]
    comp_e = pop.q.competition[e_deal]
    fit_e = np.minimum(np.exp(cfg.meeting_fit_slope * pop.q.fit[e_deal]), 1.7)  # a good fit gets more meetings
    a, s, q = e_kind == ACTIVE, e_kind == STALLED, e_kind == QUIET

    def rate(active_rates: tuple[float, ...] | float, in_stalled: float, in_quiet: float) -> np.ndarray:
        base = np.asarray(active_rates, dtype=float)
        r_active = base[e_stage] if base.ndim else np.full(len(e_stage), float(base))
        # while prospecting nobody has replied yet, so "quiet" looks like the outreach it continues
        r_quiet = np.where(e_stage == 0, r_active, in_quiet)
        return np.where(a, r_active, 0.0) + np.where(s, r_active * in_stalled, 0.0) + np.where(q, r_quiet, 0.0)

    out = _Builder()
    sf_out, sf_in = cfg.stalled_out_factor, cfg.stalled_in_factor
    channels: list[tuple[int, int, np.ndarray, tuple[float, ...] | None]] = [
        (EMAIL, OUTBOUND, rate(cfg.out_email_rate, sf_out, cfg.quiet_out_rate) * pace_e, _W_OUT),
        (CALL, OUTBOUND, rate(cfg.out_call_rate, sf_out, 0.3 * cfg.quiet_out_rate) * pace_e, _W_OUT),
        (EMAIL, INBOUND, rate(cfg.in_email_rate, sf_in, 0.0) * em_e, _W_IN),
        (CALL, INBOUND, rate(cfg.in_call_rate, sf_in, 0.0) * em_e, _W_IN),
        (MEETING, NODIR, rate(cfg.meeting_rate, sf_in, 0.0) * np.sqrt(em_e) * fit_e, _W_MEET),
        (NOTE, NODIR, rate(cfg.note_rate, 0.7, 0.7 * cfg.note_rate), None),
        (DEMO, NODIR, np.where(a & (e_stage == 3), 0.02 + 0.025 * comp_e, 0.0), _W_DEMO),
        (PROPOSAL, OUTBOUND, np.where(a & (e_stage == 4), 0.015 + 0.02 * comp_e, 0.0), _W_PAPER),
        (CONTRACT, OUTBOUND, np.where(a & (e_stage == 5), 0.03 + 0.01 * comp_e, 0.0), _W_PAPER),
    ]
    for typ, direction, r, weights in channels:
        counts = rng.poisson(r * dur)
        idx = np.repeat(np.arange(len(e_deal)), counts)
        if len(idx) == 0:
            continue
        raw = e_start[idx] + rng.random(len(idx)) * dur[idx]
        snapped = work_hours(raw, rng, origin_weekday)
        t = np.where((snapped >= e_start[idx]) & (snapped <= e_end[idx]), snapped, np.round(raw * 86400) / 86400)
        deal = e_deal[idx]
        slot = -1 if weights is None else _pick_slots(rng, deal, t, J, weights, pop.q.champion)
        out.add(deal, t, typ, direction, slot)

    _outreach_sequence(out, pop, paths, T, rng, origin_weekday)
    _key_touches(cfg, out, pop, paths, T, J, rng)
    deal, t, typ, direction, slot = out.concat()

    # rep CRM habits: some manual touches are never logged, some are logged days later, some ahead (scheduled)
    rep = pop.rep[deal]
    manual = np.isin(typ, MANUAL_TYPES)
    logged = ~manual | (rng.random(len(deal)) < pop.reps["logging"].to_numpy()[rep])
    deal, t, typ, direction, slot, rep, manual = (x[logged] for x in (deal, t, typ, direction, slot, rep, manual))
    late = manual & (rng.random(len(deal)) < pop.reps["late_logging"].to_numpy()[rep])
    delay = 1.5 * np.exp(0.8 * rng.standard_normal(len(deal)))
    recorded = np.where(late, np.round((t + delay) * 86400) / 86400, np.nan)
    scheduled = np.isin(typ, (MEETING, DEMO)) & ~late & (rng.random(len(deal)) < 0.2)
    ahead = np.maximum(t - rng.uniform(1.0, 7.0, len(deal)), pop.created[deal])
    recorded = np.where(scheduled, np.round(ahead * 86400) / 86400, recorded)
    order = np.lexsort((typ, t, deal))
    return Touches(deal[order], t[order], typ[order], direction[order], slot[order], recorded[order])


# an outbound prospecting sequence: day offsets and channel of each step
SEQUENCE_DAYS = (0.0, 1.0, 3.0, 6.0, 9.0, 13.0, 18.0, 24.0)
SEQUENCE_TYPES = (EMAIL, CALL, EMAIL, EMAIL, CALL, EMAIL, CALL, EMAIL)


def _outreach_sequence(out: _Builder, pop: Population, paths: LatentPaths, T: np.ndarray,
                       rng: np.random.Generator, origin_weekday: int) -> None:
    """Reps prospect with a cadence of e-mails and calls until the lead replies (or the deal is dropped)."""
    d = np.nonzero(pop.start_stage == 0)[0]
    stop = np.minimum(T[d, 1], paths.closed[d])
    for k, (off, typ) in enumerate(zip(SEQUENCE_DAYS, SEQUENCE_TYPES, strict=True)):
        raw = pop.created[d] + off * rng.uniform(0.8, 1.25, len(d))
        t = work_hours(raw, rng, origin_weekday) if k else pop.created[d]
        t = np.where(t >= pop.created[d], t, np.round(raw * 86400) / 86400)
        m = t < stop
        out.add(d[m], t[m], typ, OUTBOUND, SLOT_LEAD)


def _key_touches(cfg: SimConfig, out: _Builder, pop: Population, paths: LatentPaths, T: np.ndarray,
                 J: np.ndarray, rng: np.random.Generator) -> None:
    """The evidence that defines each real stage, at the moment the stage is entered, plus closing touches."""
    n = len(pop.created)
    closed = paths.closed
    ids = np.arange(n)
    # end of the first active spell in each stage: evidence belongs to an active deal
    active_end = np.full(T.shape, np.inf)
    first_spell = (paths.kind == ACTIVE) & (paths.start == T[paths.deal, paths.stage])
    active_end[paths.deal[first_spell], paths.stage[first_spell]] = paths.end[first_spell]

    def within(d: np.ndarray, j: int, t: np.ndarray) -> np.ndarray:
        """Clip times into the first active spell of stage j (whole seconds)."""
        limit = active_end[d, j] - 1.0 / 1440
        return np.round(np.maximum(np.minimum(t, limit), T[d, j]) * 86400) / 86400

    def at(j: int) -> tuple[np.ndarray, np.ndarray]:
        """Deals that reached stage j, and when its evidence happened (soon after entering it)."""
        d = ids[np.isfinite(T[:, j])]
        if j <= 1:  # the reply that *is* qualification happens exactly then
            return d, T[d, j]
        delay = rng.exponential(cfg.evidence_delay_days, len(d)) * pop.q.speed[d]
        return d, within(d, j, T[d, j] + delay)

    def joined(d: np.ndarray, t: np.ndarray, slot: int) -> np.ndarray:
        return J[d, slot] <= t

    # qualification: the first reply (or the inbound enquiry), then a first call
    d, t = at(1)
    out.add(d, t, EMAIL, INBOUND, SLOT_LEAD)
    out.add(d, within(d, 1, t + rng.uniform(0.3, 3.0, len(d))), CALL, OUTBOUND, SLOT_LEAD)
    # discovery: a meeting with everyone engaged so far (several contacts when the group is broad)
    d, t = at(2)
    out.add(d, t, MEETING, NODIR, SLOT_LEAD)
    for slot in (SLOT_DM, SLOT_CHAMPION, SLOT_INFLUENCER):
        m = joined(d, t + 3.0, slot)  # those joining within days are invited
        out.add(d[m], t[m], MEETING, NODIR, slot)
    # solution: the demo
    d, t = at(3)
    host = np.where(joined(d, t, SLOT_CHAMPION), SLOT_CHAMPION, SLOT_LEAD)
    out.add(d, t, DEMO, NODIR, host)
    for slot in (SLOT_DM, SLOT_USER):
        m = joined(d, t + 2.0, slot)
        out.add(d[m], t[m], DEMO, NODIR, slot)
    # proposal: the offer goes to the decision maker, else the champion, else the lead
    d, t = at(4)
    to = np.where(joined(d, t, SLOT_DM), SLOT_DM, np.where(joined(d, t, SLOT_CHAMPION), SLOT_CHAMPION, SLOT_LEAD))
    out.add(d, t, PROPOSAL, OUTBOUND, to)
    # negotiation: the contract, and procurement joins
    d, t = at(5)
    out.add(d, t, CONTRACT, OUTBOUND, to_signer(d, t, J))
    m = joined(d, t + 5.0, SLOT_PROCUREMENT)
    out.add(d[m], within(d[m], 5, t[m] + rng.uniform(0.5, 5.0, int(m.sum()))), CALL, INBOUND, SLOT_PROCUREMENT)
    # misleading evidence: an early demo in discovery, a budgetary quote in solution
    for j, typ, p_early, direction in ((2, DEMO, cfg.early_demo_prob, NODIR), (3, PROPOSAL, cfg.early_quote_prob,
                                                                               OUTBOUND)):
        d = ids[np.isfinite(T[:, j]) & (rng.random(n) < p_early)]
        t = T[d, j] + rng.random(len(d)) * np.minimum(active_end[d, j] - T[d, j], 30.0)
        out.add(d, within(d, j, t), typ, direction, SLOT_LEAD)
    # revivals: the buyer comes back
    prev_quiet = np.zeros(len(paths.kind), dtype=bool)
    prev_quiet[1:] = (paths.kind[:-1] == QUIET) & (paths.deal[:-1] == paths.deal[1:])
    rv = prev_quiet & (paths.kind == ACTIVE)
    d = paths.deal[rv]
    out.add(d, paths.start[rv], EMAIL, INBOUND, np.where(joined(d, paths.start[rv], SLOT_CHAMPION), SLOT_CHAMPION,
                                                         SLOT_LEAD))
    # closing: the signed contract, or (often) an explicit "no" when the loss was abrupt
    won = ids[paths.won]
    out.add(won, closed[won], CONTRACT, INBOUND, to_signer(won, closed[won], J))
    term = paths.kind == LOST
    prev_active = np.zeros(len(paths.kind), dtype=bool)
    prev_active[1:] = (paths.kind[:-1] == ACTIVE) & (paths.stage[:-1] >= 1)  # a prospect that never replied won't
    abrupt = paths.deal[term & prev_active]
    said_no = abrupt[rng.random(len(abrupt)) < 0.7]
    out.add(said_no, closed[said_no], EMAIL, INBOUND, to_signer(said_no, closed[said_no], J))


def to_signer(d: np.ndarray, t: np.ndarray, J: np.ndarray) -> np.ndarray:
    """The most senior engaged contact: decision maker, else champion, else the lead."""
    return np.where(J[d, SLOT_DM] <= t, SLOT_DM, np.where(J[d, SLOT_CHAMPION] <= t, SLOT_CHAMPION, SLOT_LEAD))
