"""Who is selling what to whom: accounts, reps and their habits, deals and their latent qualities.

Latent qualities are drawn so that each one leaves an observable trace later on
(profile fields, replies and pace, decision-maker and champion contacts, number
of people engaged, the owner), because an outcome driven by something nothing in
the CRM reflects would teach a model nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dealscore.data.simulate.config import SEGMENTS, SimConfig
from dealscore.data.simulate.latent import Qualities, base_quality, champion_probs, dm_prob, extra_probs


def _choice(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a (n, k) probability matrix."""
    cum = np.cumsum(probs, axis=1)
    cum /= cum[:, -1:]
    u = rng.random(len(probs))
    return np.minimum((u[:, None] > cum).sum(axis=1), probs.shape[1] - 1)


def work_hours(t_days: np.ndarray, rng: np.random.Generator, origin_weekday: int) -> np.ndarray:
    """Move times onto weekday office hours (08:00-18:00) of the same or the previous workday.

    Real touchpoints cluster in office hours; the weekly rhythm this creates is
    something CRM data always shows and features should not be surprised by.
    """
    day = np.floor(t_days)
    wd = (origin_weekday + day.astype(np.int64)) % 7
    day = day - np.where(wd == 5, 1, 0) - np.where(wd == 6, 2, 0)
    hour = 8.0 + 10.0 * rng.random(len(t_days))
    return np.round((day + hour / 24.0) * 86400.0) / 86400.0


@dataclass
class Population:
    """Accounts, reps and deals with their profile and latent qualities (arrays over deals)."""

    accounts: pd.DataFrame
    reps: pd.DataFrame
    # deals (index = deal number)
    account: np.ndarray
    rep: np.ndarray
    created: np.ndarray  # days since origin
    segment: np.ndarray
    product: np.ndarray
    source: np.ndarray
    amount0: np.ndarray
    q: Qualities
    start_stage: np.ndarray
    lead_role: np.ndarray  # index into ROLE of the lead contact


LEAD_ROLES = ("influencer", "user", "other")


def draw_population(cfg: SimConfig, n_deals: int, rng: np.random.Generator, origin_weekday: int) -> Population:
    """Draw accounts, reps and deals with profiles and latent qualities."""
    n_acc = max(1, int(np.ceil(n_deals / cfg.deals_per_account)))
    region = rng.choice(len(cfg.regions), size=n_acc, p=np.asarray(cfg.region_weights))
    industry = rng.choice(len(cfg.industries), size=n_acc, p=np.asarray(cfg.industry_weights))
    employees = np.clip(np.round(cfg.employees_median * np.exp(cfg.employees_sigma * rng.standard_normal(n_acc))),
                        5, 250_000).astype(np.int64)
    seg_acc = np.searchsorted(np.asarray(cfg.segment_bounds), employees, side="right")
    revenue = employees * np.asarray(cfg.revenue_per_employee_k)[industry] * 1000.0 * np.exp(
        0.35 * rng.standard_normal(n_acc))
    revenue = np.round(revenue, -3)

    # deals: larger accounts buy more often
    w = employees.astype(float) ** 0.25
    account = rng.choice(n_acc, size=n_deals, p=w / w.sum())
    segment = seg_acc[account]
    created = cfg.span_days * rng.power(1.25, size=n_deals)  # pipeline grows over time
    created = np.clip(work_hours(created, rng, origin_weekday), 0.0, cfg.span_days - 1.0 / 24)

    # reps: per team (region x segment), enough to carry its deals
    team_of_deal = region[account] * len(SEGMENTS) + segment
    n_teams = len(cfg.regions) * len(SEGMENTS)
    deals_per_team = np.bincount(team_of_deal, minlength=n_teams)
    reps_per_team = np.where(deals_per_team > 0, np.maximum(2, np.round(deals_per_team / cfg.deals_per_rep)), 0)
    reps_per_team = reps_per_team.astype(np.int64)
    rep_team = np.repeat(np.arange(n_teams), reps_per_team)
    n_reps = len(rep_team)
    team_names = np.array([f"{r} {s}" for r in cfg.regions for s in SEGMENTS], dtype=object)
    skill = cfg.rep_skill_sigma * rng.standard_normal(n_reps)
    reps = pd.DataFrame({
        "rep_id": [f"R{i + 1:04d}" for i in range(n_reps)],
        "team": team_names[rep_team],
        "skill": skill,
        "lag_median_days": cfg.lag_median_days * np.exp(cfg.lag_sigma * rng.standard_normal(n_reps)),
        "optimism": rng.beta(*cfg.optimism_beta, size=n_reps),
        "skip": rng.beta(*cfg.skip_beta, size=n_reps),
        "regress": rng.beta(*cfg.regress_beta, size=n_reps),
        "start_qualified": rng.beta(*cfg.start_qualified_beta, size=n_reps),
        "logging": rng.beta(*cfg.logging_beta, size=n_reps),
        "late_logging": rng.beta(*cfg.late_logging_beta, size=n_reps),
        "close_estimate": rng.uniform(*cfg.close_estimate_range, size=n_reps),
        "pace": np.exp(cfg.rep_pace_sigma * rng.standard_normal(n_reps)),
    })
    first_rep = np.concatenate([[0], np.cumsum(reps_per_team)[:-1]])
    capacity = rng.uniform(0.6, 1.4, size=n_reps)
    # owner: a rep of the deal's team, busier reps more often
    u = rng.random(n_deals)
    rep = np.empty(n_deals, dtype=np.int64)
    for team in np.unique(team_of_deal):
        sel = team_of_deal == team
        lo, k = first_rep[team], reps_per_team[team]
        cum = np.cumsum(capacity[lo:lo + k])
        rep[sel] = lo + np.minimum(np.searchsorted(cum / cum[-1], u[sel], side="right"), k - 1)

    # accounts exist before their first deal
    first_deal = np.full(n_acc, cfg.span_days)
    np.minimum.at(first_deal, account, created)
    acc_created = first_deal - rng.uniform(5.0, 500.0, size=n_acc)
    acc_created = np.round(acc_created * 86400.0) / 86400.0
    accounts = pd.DataFrame({
        "account_idx": np.arange(n_acc),
        "industry_idx": industry, "region_idx": region, "employees": employees,
        "annual_revenue": revenue, "segment_idx": seg_acc, "created": acc_created,
    })

    prod_p = np.asarray(cfg.product_by_segment)[segment]
    product = _choice(rng, prod_p)
    source = rng.choice(len(cfg.sources), size=n_deals, p=np.asarray(cfg.source_weights))
    lo, hi = np.asarray(cfg.price_bands)[product].T
    size_pos = np.clip((np.log(employees[account]) - np.log(20.0)) / (np.log(50_000.0) - np.log(20.0)), 0.0, 1.0)
    pos = np.clip(0.15 + 0.7 * size_pos + 0.12 * rng.standard_normal(n_deals), 0.0, 1.0)
    amount0 = np.round(lo * (hi / lo) ** pos, -2)

    # latent qualities
    affinity = cfg.affinity()
    seg_match = np.where(prod_p[np.arange(n_deals), product] >= 0.3, 0.3, -0.15)
    profile = affinity[industry[account], product] + seg_match + np.asarray(cfg.source_fit)[source]
    fit = profile + cfg.fit_noise * rng.standard_normal(n_deals)
    engagement = 0.3 * fit + np.asarray(cfg.source_engagement)[source] + cfg.engagement_noise * rng.standard_normal(
        n_deals)
    competition = _choice(rng, np.asarray(cfg.competition_probs)[segment])
    rep_skill = skill[rep]
    base = Qualities(fit=fit, engagement=engagement, skill=rep_skill, segment=segment, competition=competition,
                     speed=np.ones(n_deals), champion=np.zeros(n_deals, np.int64),
                     dm_access=np.zeros(n_deals, np.int64), extra=np.zeros(n_deals, np.int64))
    # drawn now, but revealed (and used) only once the deal reaches qualification / discovery
    champion = _choice(rng, champion_probs(cfg, base))
    dm_access = (rng.random(n_deals) < dm_prob(cfg, base, champion)).astype(np.int64)
    extra = _choice(rng, extra_probs(cfg, base, champion))
    speed = (np.asarray(cfg.segment_speed)[segment] * np.exp(cfg.speed_z * base_quality(cfg, base))
             * reps["pace"].to_numpy()[rep])
    qualities = Qualities(fit=fit, engagement=engagement, skill=rep_skill, segment=segment, competition=competition,
                          speed=speed, champion=champion, dm_access=dm_access, extra=extra)
    start_stage = (rng.random(n_deals) < np.asarray(cfg.source_starts_qualified)[source]).astype(np.int64)
    lead_role = rng.choice(len(LEAD_ROLES), size=n_deals, p=[0.45, 0.35, 0.2])
    return Population(
        accounts=accounts, reps=reps, account=account, rep=rep, created=created, segment=segment,
        product=product, source=source, amount0=amount0, q=qualities, start_stage=start_stage, lead_role=lead_role,
    )
