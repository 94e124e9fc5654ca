"""An imported CRM export scored from the CLI: names, currency and close dates shown, and one warning
that the model was trained on another history (here: the simulator's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dealscore.data.history import write_history
from dealscore.data.importers.csv_mapping import import_csv
from dealscore.data.simulate import simulate
from dealscore.training.pipeline import TrainingResult
from tests.cli.conftest import Run

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def demo_model(trained: TrainingResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained on the simulator (the suite's one, ``tests/conftest.py``), saved as a bundle folder: the
    demo model's situation."""
    return trained.bundle.save(tmp_path_factory.mktemp("bundle") / "demo")


@pytest.fixture(scope="module")
def hubspot_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_history(import_csv(FIXTURES / "hubspot", "hubspot").history, tmp_path_factory.mktemp("h") / "hs")


def test_at_risk_shows_names_currency_and_close_date(run: Run, demo_model: Path, hubspot_history: Path) -> None:
    code, out, err = run("at-risk", str(hubspot_history), "--model", str(demo_model), "--top", "5")
    assert code == 0, err
    assert "Initech rollout · Initech" in out and "9003" in out
    assert "30,000 EUR" in out and "2024-06-28" in out
    assert "Dana Rep" in out


def test_scoring_another_history_warns_once_naming_the_differences(
    run: Run, demo_model: Path, hubspot_history: Path,
) -> None:
    code, _out, err = run("at-risk", str(hubspot_history), "--model", str(demo_model))
    assert code == 0
    assert err.count("warning:") == 1
    for needle in ("trained on a different history", "'dealscore simulator'", "'hubspot'", "industry:",
                   "'Computer Software'"):
        assert needle in err, needle


def test_the_model_own_kind_of_history_gets_no_warning(run: Run, demo_model: Path, tmp_path: Path) -> None:
    folder = write_history(simulate(300, seed=12).history, tmp_path / "sim")
    code, _out, err = run("at-risk", str(folder), "--model", str(demo_model), "--top", "3")
    assert code == 0
    assert "warning:" not in err
