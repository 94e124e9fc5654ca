"""The notebooks execute top to bottom on a small simulated history and a real MLflow run."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from dealscore.data.simulate import simulate, write_simulation
from dealscore.training.config import TrainConfig
from dealscore.training.run import run_training

pytestmark = pytest.mark.slow
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.fixture(scope="module")
def workspace(fast_config: TrainConfig, tmp_path_factory: pytest.TempPathFactory):
    """A small history and one training run in a private MLflow store."""
    root = tmp_path_factory.mktemp("nb")
    history = write_simulation(simulate(800, seed=7), root / "history")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.setenv("DEALSCORE_HISTORY", str(history))
        mp.setenv("MPLBACKEND", "Agg")
        mp.chdir(root)
        summary = run_training(history, fast_config)
        mp.setenv("DEALSCORE_RUN_ID", summary.run.run_id)
        yield root


def _run(name: str, cwd: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def _outputs(nb: nbformat.NotebookNode) -> str:
    text = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text.append(out.get("text", "") or str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(text)


def test_explore_history_notebook_runs(workspace):
    nb = _run("01_explore_history.ipynb", workspace)
    text = _outputs(nb)
    assert "deals:" in text and "won" in text
    assert "declared stage equals the real stage" in text


def test_explain_model_notebook_reads_the_run(workspace):
    nb = _run("02_explain_model.ipynb", workspace)
    text = _outputs(nb)
    assert "real-stage accuracy" in text and "log-odds" in text
    assert any(o.get("output_type") == "display_data" or "image/png" in o.get("data", {})
               for c in nb.cells for o in c.get("outputs", []))


def test_notebooks_define_nothing_reusable():
    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert "def " not in cell.source and "class " not in cell.source, path.name


def test_opened_from_the_notebooks_folder_it_finds_the_demos_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Jupyter starts a kernel in the notebook's folder: the default .dealscore/history was then looked for in
    notebooks/, and the README's "run make demo, then open them" failed on the first cell."""
    write_simulation(simulate(300, seed=3), tmp_path / ".dealscore" / "history")
    (tmp_path / "notebooks").mkdir()
    for name in ("DEALSCORE_HISTORY", "DEALSCORE_DATA_DIR", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    text = _outputs(_run("01_explore_history.ipynb", tmp_path / "notebooks"))
    assert "deals:" in text
