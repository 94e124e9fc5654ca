"""Suite-wide fixtures: the one fast training config, the small seed-5 history and its one trained bundle.

Every test that trains a model takes its settings from :data:`FAST_TRAINING` (through ``fast_config`` or
``fast_dict``): one statement of "fast enough for a test, real enough to check behaviour", so a change in
the training pipeline is paid for once, not in six slightly different configs. Tests train on their own
histories only where the history itself is under test (two years for the forecast, a partitioned store
for the cluster, the service's and the UI's small stores); the 1,200-deal seed-5 history and the bundle
trained on it are shared by the training and the scoring tests and built once per session.
"""

from __future__ import annotations

import copy
import gc
import os
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

from dealscore.data.history import DealHistory
from dealscore.data.simulate import SimulatedCRM, simulate
from dealscore.data.validate import validate_history
from dealscore.training.config import TrainConfig
from dealscore.training.pipeline import TrainingResult, train_models

#: The fast training settings (a :class:`TrainConfig` as a YAML-ready dict), each chosen for a reason:
#:
#: - snapshots: the shipped weekly ones, not sparser. The episode warnings' thresholds are learned from the
#:   training snapshots; at every 14 days the seed-5 bundle's ``stalled_in_stage`` fired 2.2 times as often
#:   on truly stalled snapshots as on the others (2.97 times weekly), barely above the 2x that
#:   ``tests/scoring/test_warning_quality.py`` asks for. Weekly costs ~2 s per training (7.9 s vs 5.9 s).
#: - ``win``: at most 80 rounds at learning rate 0.1 with early stopping after 15 (the shipped model: 2,000
#:   at 0.05): a few hundred training deals carry no more signal than that; model selection
#:   still runs (rolling CV origins) but over two candidates, the shipped booster and a small one whose
#:   ``min_data_in_leaf`` (100, not the shipped 500) fits a fold of a small history, and one blend weight
#:   instead of 4 x 3; 50 bootstrap replicates instead of 200 still give every metric an interval.
#: - ``stage``: at most 40 rounds (shipped: 500) with early stopping after 10: the stage is learned quickly.
#: - ``num_threads: 1``: the same trees on every run whatever else the machine is doing (the cluster tests
#:   compare a single-machine and a cluster training of the same rows). At this size it costs nothing measurable
#:   (seed-5 training with 14-day snapshots: 5.8 s on one thread, 5.7 s on two).
FAST_TRAINING: dict[str, Any] = {
    "win": {"num_boost_round": 80, "early_stopping_rounds": 15, "params": {"learning_rate": 0.1},
            "search": {"base": {}, "small": {"num_leaves": 7, "min_data_in_leaf": 100}}, "blends": [0.5],
            "bootstrap_replicates": 50},
    "stage": {"num_boost_round": 40, "early_stopping_rounds": 10, "params": {"learning_rate": 0.15}},
    "num_threads": 1,
}


@pytest.fixture(autouse=True)
def _unfrozen_heap() -> Iterator[None]:
    """A service app started in a test with ``freeze_heap`` on (the default; the test apps turn it off) freezes
    the heap (``dealscore_service.heap``); undo it after the test, so that what one test leaves behind stays
    collectable in a suite that starts many apps."""
    yield
    gc.unfreeze()


@pytest.fixture(scope="session")
def fast_dict() -> dict[str, Any]:
    """:data:`FAST_TRAINING` as a fresh dict (to write a YAML config file, or to derive a variant from)."""
    return copy.deepcopy(FAST_TRAINING)


@pytest.fixture(scope="session")
def fast_config() -> TrainConfig:
    """:data:`FAST_TRAINING` as a :class:`TrainConfig`: seconds, not minutes (derive variants with
    ``dataclasses.replace``; never change it in place, the whole session shares it)."""
    return TrainConfig.from_dict(copy.deepcopy(FAST_TRAINING))


@pytest.fixture(scope="session")
def small_sim() -> SimulatedCRM:
    """~1,200 simulated deals (seed 5): enough won and lost ones for every slice of the time split."""
    return simulate(1200, seed=5)


@pytest.fixture(scope="session")
def small_history(small_sim: SimulatedCRM) -> DealHistory:
    """The small simulation's history, validated (what the loader hands to training and scoring)."""
    history, _ = validate_history(small_sim.history)
    return history


@pytest.fixture(scope="session")
def trained(small_sim: SimulatedCRM, small_history: DealHistory, fast_config: TrainConfig) -> TrainingResult:
    """The one training on the small history (no MLflow; the simulator's truth gives the oracle ceiling),
    shared by the training and the scoring tests. Its bundle is shared too: copy it before changing it."""
    return train_models(small_history, fast_config, truth=small_sim)
