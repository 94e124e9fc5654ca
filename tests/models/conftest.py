"""Synthetic feature frames for model tests: documented columns, known signal, no features code needed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

STAGES = ["prospecting", "qualification", "discovery", "solution", "proposal", "negotiation"]


def make_frame(n_deals: int, seed: int, snaps_per_deal: int = 4) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Feature rows (deal_id, as_of, declared_stage category, numerics), win labels and real stages.

    The real stage drives both the evidence columns and the win chance; the
    declared stage is the real one shifted at random ("stage creep").
    """
    rng = np.random.default_rng(seed)
    deal = np.repeat(np.arange(n_deals), snaps_per_deal)
    n = len(deal)
    real = np.clip(rng.integers(0, 6, n_deals)[deal] + rng.integers(0, 2, n), 0, 5)
    declared = np.clip(real + rng.choice([-1, 0, 0, 1, 2], n), 0, 5)
    quality = rng.normal(size=n_deals)[deal]
    touch = rng.poisson(2 + real, n).astype(float)
    silence = rng.exponential(10 - real, n) - 3 * quality
    has_demo = (real >= 3).astype(float) * (rng.random(n) < 0.9)
    amount = rng.lognormal(10, 1, n)
    amount[rng.random(n) < 0.05] = np.nan
    logit = -1.5 + 0.45 * real + 1.0 * quality - 0.05 * silence
    won = (rng.random(n_deals)[deal] < 1 / (1 + np.exp(-logit))).astype(float)
    # one outcome per deal: use the first snapshot's draw for all of them
    won = pd.Series(won).groupby(deal).transform("first").to_numpy()
    frame = pd.DataFrame({
        "deal_id": [f"D{d:05d}" for d in deal],
        "as_of": pd.Timestamp("2024-01-01") + pd.to_timedelta(deal * 3 + np.tile(np.arange(snaps_per_deal), n_deals),
                                                              unit="D"),
        "declared_stage": pd.Categorical(np.asarray(STAGES, dtype=object)[declared], categories=STAGES),
        "n_touches_30d": touch,
        "days_since_last_touch": silence,
        "has_demo": has_demo,
        "amount": amount,
        "industry": pd.Categorical(rng.choice(["tech", "retail", "finance"], n_deals)[deal],
                                   categories=["tech", "retail", "finance", "health"]),
    })
    return frame, won, np.asarray(STAGES, dtype=object)[real]


@pytest.fixture(scope="package")
def synthetic() -> dict[str, tuple[pd.DataFrame, np.ndarray, np.ndarray]]:
    """Four time-ordered slices of a synthetic history (train, validation, calibration, test)."""
    frame, won, real = make_frame(1600, seed=3)
    deal_idx = frame["deal_id"].str[1:].astype(int).to_numpy()
    bounds = {"train": (0, 900), "validation": (900, 1100), "calibration": (1100, 1300), "test": (1300, 1600)}
    out = {}
    for name, (lo, hi) in bounds.items():
        m = (deal_idx >= lo) & (deal_idx < hi)
        out[name] = (frame[m].reset_index(drop=True), won[m], real[m])
    return out
