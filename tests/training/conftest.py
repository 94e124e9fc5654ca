"""The small seed-5 history written as a folder, for the training tests that start from files (the history,
its trained bundle and the fast config are suite-wide: see ``tests/conftest.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dealscore.data.simulate import SimulatedCRM, write_simulation


@pytest.fixture(scope="session")
def small_history_dir(small_sim: SimulatedCRM, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small simulation written as a history folder (with its truth/ sub-folder)."""
    return write_simulation(small_sim, tmp_path_factory.mktemp("history") / "sim")
