"""Small simulated histories and a fast training config shared by the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from dealscore.data.simulate import SimulatedCRM, simulate, write_simulation
from dealscore.data.validate import validate_history
from dealscore.training.config import TrainConfig

FAST = {
    "snapshots": {"every_days": 14},
    "win": {"num_boost_round": 80, "early_stopping_rounds": 15, "params": {"learning_rate": 0.1},
            "search": {"base": {}, "small": {"num_leaves": 7, "min_data_in_leaf": 100}}, "blends": [0.5],
            "bootstrap_replicates": 50},
    "stage": {"num_boost_round": 40, "early_stopping_rounds": 10, "params": {"learning_rate": 0.15}},
    "num_threads": 2,
}


@pytest.fixture(scope="session")
def fast_dict() -> dict:
    """The fast settings as a YAML-ready dict (for config files)."""
    return FAST


@pytest.fixture(scope="session")
def fast_config() -> TrainConfig:
    """Few boosting rounds and sparse snapshots: seconds, not minutes."""
    return TrainConfig.from_dict(FAST)


@pytest.fixture(scope="session")
def small_sim() -> SimulatedCRM:
    """~1,200 simulated deals: enough won and lost ones for every slice."""
    return simulate(1200, seed=5)


@pytest.fixture(scope="session")
def small_history_dir(small_sim: SimulatedCRM, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small simulation written as a history folder (with its truth/ sub-folder)."""
    return write_simulation(small_sim, tmp_path_factory.mktemp("history") / "sim")


@pytest.fixture(scope="session")
def trained(small_sim: SimulatedCRM, fast_config: TrainConfig):
    """One training on the small history (no MLflow)."""
    from dealscore.training.pipeline import train_models

    history, _ = validate_history(small_sim.history)
    return train_models(history, fast_config, truth=small_sim)
