"""Every number the simulator uses, in one frozen dataclass.

The figures are deliberately plain (probabilities, medians in days, price bands)
so that the documentation in docs/simulator.md can quote them, and the oracle can
rebuild the exact latent process of a written simulation from ``truth/params.json``
without re-running the generator.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dealscore.errors import ConfigError

STAGES: tuple[str, ...] = ("prospecting", "qualification", "discovery", "solution", "proposal", "negotiation")
N_STAGES = len(STAGES)

# latent state kinds (``kind`` column of truth/latent_path.csv)
ACTIVE, STALLED, QUIET, WON, LOST = 0, 1, 2, 3, 4
KIND_NAMES: tuple[str, ...] = ("active", "stalled", "quiet", "won", "lost")

# transitions out of each kind (column order of the probability arrays)
A_TRANSITIONS: tuple[str, ...] = ("advance", "stall", "quiet", "loss")
S_TRANSITIONS: tuple[str, ...] = ("advance", "quiet")
Q_TRANSITIONS: tuple[str, ...] = ("revive", "loss")

SEGMENTS: tuple[str, ...] = ("SMB", "Mid-Market", "Enterprise")

# contact slots of a deal's buying group and the role each plays in activities
SLOT_LEAD, SLOT_DM, SLOT_CHAMPION, SLOT_INFLUENCER, SLOT_USER, SLOT_PROCUREMENT = range(6)
N_SLOTS = 6


def _tuple2(rows: list[list[float]]) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in r) for r in rows)


@dataclass(frozen=True)
class SimConfig:
    """Parameters of the synthetic pipeline (defaults give the documented figures)."""

    cut_date: str = "2025-06-30"
    span_days: float = 730.0
    deals_per_account: float = 1.6
    deals_per_rep: float = 180.0

    regions: tuple[str, ...] = ("North America", "EMEA", "APAC", "LATAM")
    region_weights: tuple[float, ...] = (0.45, 0.30, 0.15, 0.10)
    industries: tuple[str, ...] = (
        "software", "financial services", "healthcare", "manufacturing", "retail",
        "logistics", "education", "public sector", "telecom", "energy",
    )
    industry_weights: tuple[float, ...] = (0.18, 0.14, 0.11, 0.12, 0.1, 0.08, 0.06, 0.07, 0.07, 0.07)
    # revenue per employee (thousands) by industry, for annual_revenue
    revenue_per_employee_k: tuple[float, ...] = (260, 420, 180, 230, 160, 200, 90, 110, 380, 520)
    employees_median: float = 320.0
    employees_sigma: float = 1.7
    segment_bounds: tuple[float, float] = (200.0, 2000.0)

    products: tuple[str, ...] = ("Starter", "Growth", "Enterprise Suite", "Analytics Add-on", "Professional Services")
    # price band (low, high) per product; amounts scale with account size inside the band
    price_bands: tuple[tuple[float, float], ...] = (
        (4_000, 18_000), (15_000, 70_000), (60_000, 400_000), (8_000, 45_000), (10_000, 150_000),
    )
    # P(product | segment): rows SMB, Mid-Market, Enterprise
    product_by_segment: tuple[tuple[float, ...], ...] = _tuple2([
        [0.55, 0.20, 0.00, 0.15, 0.10],
        [0.10, 0.50, 0.12, 0.15, 0.13],
        [0.00, 0.18, 0.52, 0.12, 0.18],
    ])
    sources: tuple[str, ...] = ("outbound", "inbound", "referral", "partner", "event")
    source_weights: tuple[float, ...] = (0.40, 0.25, 0.12, 0.13, 0.10)
    source_engagement: tuple[float, ...] = (-0.35, 0.35, 0.5, 0.15, 0.0)
    source_fit: tuple[float, ...] = (-0.1, 0.1, 0.35, 0.25, 0.0)
    # inbound and referral leads have already replied: the real process starts at qualification
    source_starts_qualified: tuple[float, ...] = (0.0, 0.85, 0.7, 0.4, 0.3)
    competition_probs: tuple[tuple[float, ...], ...] = _tuple2([  # none, competitive, incumbent; by segment
        [0.55, 0.38, 0.07], [0.40, 0.45, 0.15], [0.28, 0.50, 0.22],
    ])
    affinity_seed: int = 20240611  # fixed industry x product affinity (a property of the market, not of the run)
    affinity_industry_sd: float = 0.55
    affinity_interaction_sd: float = 0.25

    # ---- latent qualities known at creation: fit = profile fit + noise; engagement leans on fit and source
    fit_noise: float = 0.4
    engagement_noise: float = 0.5

    # ---- latent qualities revealed as the deal advances
    # champion level (none / weak / strong), revealed at qualification: ordered logit
    champion_engagement: float = 0.7
    champion_fit: float = 0.4
    champion_offset: float = -0.2
    champion_strong_gap: float = 1.3
    champion_values: tuple[float, ...] = (0.0, 0.7, 1.4)
    # decision-maker access and extra stakeholders (0-2), revealed at discovery
    dm_fit: float = 0.9
    dm_champion: float = 0.6
    dm_engagement: float = 0.3
    dm_offset: float = -0.2
    extra_base: float = 0.45
    extra_segment: float = 0.45
    extra_champion: float = 0.3
    extra_fit: float = 0.3

    # ---- the latent quality index z: a weighted sum of the qualities known so far
    w_fit: float = 0.55
    w_engagement: float = 0.55
    w_champion: float = 0.45
    w_dm_access: float = 0.40
    w_breadth: float = 0.15
    w_skill: float = 0.40
    z_center: float = 0.2
    # how much z matters per stage (evidence of engagement accumulates, so early stages lean on it less)
    z_stage_scale: tuple[float, ...] = (0.55, 0.8, 1.0, 1.0, 1.0, 1.0)

    # ---- latent process: base transition probabilities out of an active stage at z=0 (advance, stall, quiet, loss)
    # prospecting has no stall or quiet: with no reply yet, either the lead answers or the rep gives up
    a_base: tuple[tuple[float, ...], ...] = _tuple2([
        [0.58, 0.0, 0.0, 0.42],
        [0.70, 0.08, 0.16, 0.06],
        [0.74, 0.09, 0.12, 0.05],
        [0.76, 0.08, 0.10, 0.06],
        [0.74, 0.09, 0.09, 0.08],
        [0.80, 0.07, 0.06, 0.07],
    ])
    # log-odds slope on z per transition (advance up, the rest down)
    a_z: tuple[float, ...] = (0.9, -0.3, -0.8, -0.4)
    # competition (0, 1, 2) raises abrupt loss and stalls from solution on
    a_competition: tuple[float, ...] = (0.0, 0.25, 0.0, 0.35)
    competition_from_stage: int = 3
    # single-threaded deals (one contact only) struggle from discovery on
    a_single_threaded: tuple[float, ...] = (-0.5, 0.2, 0.4, 0.0)
    # stalled deals resume (advance) or go quiet
    s_resume_base: float = 0.42
    s_resume_z: float = 0.8
    # quiet deals revive once at most
    q_revive_base: float = 0.14
    q_revive_z: float = 0.5

    # Weibull medians (days, before the deal's speed factor) of the time to each transition
    a_median_days: tuple[tuple[float, ...], ...] = _tuple2([
        [6, 12, 7, 30],
        [9, 15, 11, 18],
        [13, 17, 14, 16],
        [12, 17, 14, 17],
        [10, 15, 13, 14],
        [13, 18, 15, 17],
    ])
    a_shape: tuple[float, ...] = (1.9, 1.5, 1.5, 2.0)
    s_median_days: tuple[float, ...] = (30.0, 26.0)
    s_shape: tuple[float, ...] = (1.6, 1.6)
    q_median_days: tuple[float, ...] = (20.0, 35.0)
    q_shape: tuple[float, ...] = (2.0, 2.0)
    segment_speed: tuple[float, ...] = (0.7, 1.0, 1.45)
    speed_z: float = -0.12
    rep_pace_sigma: float = 0.15

    # ---- touchpoint rates per day by stage (active) and by stalled / quiet state
    out_email_rate: tuple[float, ...] = (0.10, 0.20, 0.13, 0.12, 0.15, 0.17)
    out_call_rate: tuple[float, ...] = (0.04, 0.08, 0.05, 0.05, 0.06, 0.08)
    in_email_rate: tuple[float, ...] = (0.0, 0.13, 0.11, 0.11, 0.12, 0.15)
    in_call_rate: tuple[float, ...] = (0.0, 0.03, 0.03, 0.03, 0.04, 0.06)
    meeting_rate: tuple[float, ...] = (0.0, 0.03, 0.08, 0.06, 0.05, 0.06)
    note_rate: float = 0.03
    # stage evidence lands a little after the stage starts (mean days, times the deal's speed) ...
    evidence_delay_days: float = 1.5
    # ... and sometimes early: a demo while still in discovery, a budgetary quote while in solution
    early_demo_prob: float = 0.12
    early_quote_prob: float = 0.08
    stalled_out_factor: float = 0.22
    stalled_in_factor: float = 0.12
    quiet_out_rate: float = 0.35
    engagement_rate_slope: float = 0.9
    engagement_rate_cap: float = 2.0
    meeting_fit_slope: float = 0.5
    rate_speed_exponent: float = 0.7

    # ---- rep CRM habits (population distributions)
    rep_skill_sigma: float = 0.6
    lag_median_days: float = 12.0
    lag_sigma: float = 0.6
    optimism_beta: tuple[float, float] = (2.4, 2.4)
    skip_beta: tuple[float, float] = (1.0, 9.0)
    regress_beta: tuple[float, float] = (1.2, 4.0)
    start_qualified_beta: tuple[float, float] = (2.0, 3.0)
    logging_beta: tuple[float, float] = (9.0, 1.5)
    late_logging_beta: tuple[float, float] = (1.2, 3.5)
    backdate_prob: float = 0.08
    close_estimate_range: tuple[float, float] = (0.45, 0.95)

    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form written to truth/params.json."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SimConfig:
        """Rebuild from truth/params.json (lists back to tuples)."""
        known = {f.name for f in dataclasses.fields(cls)}

        def tup(v: Any) -> Any:
            return tuple(tup(x) for x in v) if isinstance(v, list) else v

        return cls(**{k: (v if k == "extra" else tup(v)) for k, v in raw.items() if k in known})

    def affinity(self) -> np.ndarray:
        """Industry x product fit (fixed for the market, independent of the run's seed).

        Mostly an industry effect (some industries need the product more), plus a
        smaller industry-by-product interaction.
        """
        rng = np.random.default_rng(self.affinity_seed)
        industry = rng.normal(0.0, self.affinity_industry_sd, size=(len(self.industries), 1))
        interaction = rng.normal(0.0, self.affinity_interaction_sd, size=(len(self.industries), len(self.products)))
        return np.round(industry + interaction, 3)


# ---- company presets: how a company's reps record and what evidence its selling leaves.
# Each preset is a set of SimConfig overrides (data, not code), so a preset's history
# can be rebuilt from truth/params.json like any other. ``mixed`` is the default config
# unchanged (byte-identical output); docs/simulator.md gives each preset's measured
# declared-stage accuracy against the real stage.
DEFAULT_PROFILE = "mixed"
PROFILES: dict[str, dict[str, Any]] = {
    # the default: median 12-day lag, about half the stages typed in before their evidence
    "mixed": {},
    # reps update within a day or two, almost never ahead, rarely skip, move stalled deals back
    "disciplined": {
        "lag_median_days": 0.7, "lag_sigma": 0.3,
        "optimism_beta": (1.0, 30.0), "skip_beta": (1.0, 60.0), "regress_beta": (6.0, 1.5),
        "start_qualified_beta": (1.0, 25.0),
    },
    # reps record weeks late and seldom ahead: the declared stage trails the real one
    "laggy": {
        "lag_median_days": 35.0, "lag_sigma": 0.45,
        "optimism_beta": (1.0, 12.0), "skip_beta": (1.5, 6.0), "regress_beta": (1.0, 8.0),
    },
    # stages typed in before their evidence, seldom moved back: the declared stage runs ahead
    "optimistic": {
        "lag_median_days": 6.0,
        "optimism_beta": (8.0, 1.5), "skip_beta": (1.0, 12.0), "regress_beta": (1.0, 12.0),
        "start_qualified_beta": (4.0, 2.0),
    },
    # evidence habits change: few manual touches logged (meetings, calls, demos, notes), demos
    # and quotes often given early, fewer meetings held; recording habits as in ``mixed``
    "sparse_evidence": {
        "logging_beta": (2.5, 3.5),
        "meeting_rate": (0.0, 0.015, 0.04, 0.03, 0.025, 0.03),
        "early_demo_prob": 0.45, "early_quote_prob": 0.3,
    },
}


def profile_names() -> tuple[str, ...]:
    """The simulator's company presets, default first (for CLIs, benchmarks and tests)."""
    return tuple(PROFILES)


def profile_config(profile: str = DEFAULT_PROFILE, base: SimConfig | None = None) -> SimConfig:
    """``base`` (default config) with the preset's overrides applied; unknown names raise ConfigError."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown simulator profile {profile!r}; choose one of: {', '.join(PROFILES)}")
    cfg = base or SimConfig()
    overrides = PROFILES[profile]
    return dataclasses.replace(cfg, **overrides) if overrides else cfg
