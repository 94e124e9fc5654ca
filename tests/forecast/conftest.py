"""One small simulated history and a bundle trained on it (the suite's fast settings), shared by the forecast
tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dealscore.data.history import DealHistory
from dealscore.data.simulate import simulate, write_simulation
from dealscore.data.validate import validate_history
from dealscore.training.config import TrainConfig


@dataclass
class Trained:
    history: DealHistory
    bundle: Any
    report: dict[str, Any]
    folder: Path
    bundle_dir: Path


@pytest.fixture(scope="package")
def trained(fast_config: TrainConfig, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """1,200 simulated deals over two years (seed 7: its own history, for the forecast's windows), trained once
    with the suite's fast settings."""
    from dealscore.training.pipeline import train_models

    sim = simulate(1200, seed=7)
    folder = write_simulation(sim, tmp_path_factory.mktemp("forecast") / "sim")
    history, _ = validate_history(sim.history)
    result = train_models(history, fast_config)
    bundle_dir = result.bundle.save(tmp_path_factory.mktemp("forecast") / "bundle")
    return Trained(history=history, bundle=result.bundle, report=result.report, folder=folder, bundle_dir=bundle_dir)
